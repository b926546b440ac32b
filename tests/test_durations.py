"""Durations in words, as the lockout page and the second-factor page show them."""

import pytest

from asksage_admin.lib.durations import in_words


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "1 second"),
        (0.2, "1 second"),
        (1, "1 second"),
        (15.4, "16 seconds"),  # rounded up: never tell someone to retry too early
        (32, "32 seconds"),
        (60, "1 minute"),
        (15 * 60, "15 minutes"),
        (3_600 + 4 * 60, "1 hour 4 minutes"),
        (3 * 86_400 + 2 * 3_600 + 59, "3 days 2 hours"),
    ],
)
def test_a_duration_reads_in_its_two_largest_units(seconds, words):
    assert in_words(seconds) == words
