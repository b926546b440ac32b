"""WCAG 2.5.8 target size: small links that wrap onto several lines on a phone stay at least
24px tall, so a finger hits the one it means (Lighthouse flagged the distribution page's)."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_distribution_section_links_are_at_least_24px_tall_on_a_phone(
    page, live_server, login, alice
):
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/distribution/")
    heights = page.eval_on_selector_all(
        "nav.dist-jump a", "links => links.map(a => a.getBoundingClientRect().height)"
    )
    assert heights and min(heights) >= 24
