"""Token Distribution as an admin does it: choose a preset, preview and apply an equal split."""

import pytest
from playwright.sync_api import expect

from tests.factories import max_of
from tokens.models import AllocationPolicy

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin_page(page, live_server, login, alice, bob):
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/distribution/")
    return page


def test_choosing_a_preset_previews_then_applies_it(admin_page, org_a):
    page = admin_page
    expect(page.locator("[data-active-preset]")).to_have_text("Manual (no auto-increase)")
    page.get_by_label("Standard", exact=True).check()
    page.get_by_role("button", name="Preview changes").click()
    preview = page.get_by_role("region", name="Preset preview")
    expect(preview).to_contain_text("5,000,000")
    expect(preview).to_contain_text("2 users below the new inference floor")
    assert not AllocationPolicy.objects.exists()
    page.get_by_role("button", name="Apply Standard preset").click()
    expect(
        page.get_by_role("status").filter(has_text="Standard preset is now active")
    ).to_be_visible()
    expect(page.locator("[data-active-preset]")).to_have_text("Standard")
    assert AllocationPolicy.objects.get(organization=org_a).preset == "standard"


def test_previewing_and_applying_an_equal_split(admin_page, alice, bob):
    page = admin_page
    actions = page.get_by_role("region", name="Distribution actions")
    actions.get_by_label("Action", exact=True).select_option("split")
    actions.get_by_label("Kind", exact=True).select_option("inference")
    actions.get_by_role("button", name="Preview", exact=True).click()
    preview = page.get_by_role("region", name="Preview: Split the unallocated pool equally")
    expect(preview).to_contain_text("3,600,000 → 0")
    expect(preview.get_by_role("table", name="Who gets what")).to_contain_text("2,000,000")
    assert max_of(bob) == 200_000  # a dry run
    page.get_by_role("button", name="Apply to 2 users").click()
    expect(page.get_by_role("status").filter(has_text="Applied to 2 users")).to_be_visible()
    assert max_of(bob) == 2_000_000
    assert max_of(alice) == 2_000_000


def test_the_distribution_page_with_a_preview_has_no_serious_axe_violations(admin_page):
    from tests.browser.test_accessibility import serious_violations

    page = admin_page
    page.get_by_label("Standard", exact=True).check()
    page.get_by_role("button", name="Preview changes").click()
    page.get_by_role("region", name="Preset preview").wait_for()
    assert serious_violations(page) == []
