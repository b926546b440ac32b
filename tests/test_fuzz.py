"""Property-based tests (hypothesis): the amount parser and the batch save never break rules."""

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accounts.models import Membership
from asksage_admin.lib.amounts import MAX_TOKENS, AmountError, format_tokens, parse_tokens
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.inputs import (
    MAX_ID,
    InputError,
    header_text,
    parse_id,
    parse_whole,
    text_problem,
)
from tests.factories import MembershipFactory
from tokens.models import PendingEdit
from tokens.selectors import allocated, pools
from tokens.services import allocations as allocation_services


@settings(max_examples=500)
@given(st.integers(min_value=0, max_value=MAX_TOKENS))
def test_formatted_amounts_parse_back_to_themselves(value):
    assert parse_tokens(format_tokens(value)) == value
    assert parse_tokens(str(value)) == value
    assert parse_tokens(f"{value:,}".replace(",", " ")) == value


# What broke the edges (issue 13): NUL, unpaired surrogates, digits int() refuses (more than
# 4,300) or that only str.isdigit() calls digits (superscripts, other scripts), huge ids.
NASTY_CHARACTERS = ["\x00", "\ud800", "\udfff", "²", "³", "¹", "٣", "߀", "\u00a0", "0", "9", "@"]
nasty_text = st.text(alphabet=st.sampled_from(NASTY_CHARACTERS), max_size=12)
long_digits = st.integers(min_value=4_290, max_value=6_000).map(lambda n: "9" * n)
huge_numbers = st.integers(min_value=MAX_ID - 2, max_value=2**80).map(str)
edge_text = st.text(max_size=40) | nasty_text | long_digits | huge_numbers


@settings(max_examples=1000)
@given(edge_text)
def test_any_text_parses_or_raises_the_domain_error_only(text):
    try:
        value = parse_tokens(text)
    except AmountError as exc:
        assert str(exc)  # always a message a person can read
    else:
        assert isinstance(value, int) and 0 <= value <= MAX_TOKENS


@settings(max_examples=300)
@given(st.decimals(min_value=0, max_value=9_000_000, places=3), st.sampled_from("kKmM"))
def test_suffixed_amounts_are_whole_or_refused(number, suffix):
    try:
        value = parse_tokens(f"{number}{suffix}")
    except AmountError:
        multiplier = 1_000 if suffix in "kK" else 1_000_000
        product = number * multiplier
        assert product != int(product) or product > MAX_TOKENS
    else:
        assert value >= 0


@pytest.fixture
def team(org_a, alice, bob):
    return [alice, bob, *(MembershipFactory(organization=org_a).user for _ in range(4))]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3_000_000)), min_size=1, max_size=6))
def test_random_batches_never_break_the_pool_or_the_floor(team, org_a, alice, edits):
    PendingEdit.objects.all().delete()
    before = dict(Membership.objects.values_list("user_id", "max_inference_tokens"))
    wanted = {}
    for index, value in edits:
        user = team[index]
        wanted[user.pk] = value
        PendingEdit.objects.update_or_create(
            admin=alice,
            target=user,
            column="max_inference_tokens",
            defaults={"organization": org_a, "old_value": before[user.pk], "new_value": value},
        )
    try:
        allocation_services.allocation_batch_save(
            admin=alice, org=org_a, column="max_inference_tokens"
        )
        saved = True
    except DomainError:
        saved = False
    after = dict(Membership.objects.values_list("user_id", "max_inference_tokens"))
    assert allocated(org_a)["inference"] <= max(pools(org_a)["inference"], sum(before.values()))
    assert all(v >= org_a.min_inference_tokens for v in after.values())
    if saved:
        assert all(after[uid] == value for uid, value in wanted.items())
    else:
        assert after == before  # all or nothing
    # Reset for the next example: Hypothesis reuses the function-scoped fixtures.
    for uid, value in before.items():
        Membership.objects.filter(user_id=uid).update(max_inference_tokens=value)


@settings(max_examples=500)
@given(edge_text | st.integers() | st.none() | st.booleans())
def test_whole_numbers_parse_in_range_or_raise_input_error_only(raw):
    try:
        value = parse_whole(raw, label="The number", low=0, high=1_000)
    except InputError as exc:
        assert str(exc).startswith("The number must be a whole number")
    else:
        assert 0 <= value <= 1_000
        if isinstance(raw, str):
            assert raw.strip().isascii() and raw.strip().isdigit()


@settings(max_examples=500)
@given(edge_text | st.integers())
def test_ids_are_between_1_and_2_63_minus_1_or_refused(raw):
    try:
        value = parse_id(raw)
    except InputError as exc:
        assert str(exc)
    else:
        assert 1 <= value <= MAX_ID


@settings(max_examples=500)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=30))
@example("\x00\ud800")  # both problems at once: hypothesis found it once
def test_text_is_refused_exactly_when_it_has_nul_or_unpaired_surrogates(text):
    # Both databases store what passes; PostgreSQL refuses NUL, and no UTF-8 has surrogates.
    problem = text_problem(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # With a NUL too, either reason is the right refusal (text_problem names the NUL first).
        assert problem and ("surrogate" in problem or "\x00" in text)
    else:
        assert (problem is not None) == ("\x00" in text)


@given(st.text(max_size=5_000))
def test_header_text_is_bounded(text):
    assert len(header_text(text)) <= 500
    assert header_text(text) == text or len(text) > 500
