"""Token Distribution as an admin does it: choose a preset, preview and apply an equal split."""

import pytest
from playwright.sync_api import expect

from accounts.models import Membership
from tests.browser.test_accessibility import serious_violations
from tests.factories import MembershipFactory, OrganizationFactory, PurchaseFactory, max_of
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


def test_a_preset_the_small_pool_cannot_cover_is_refused_and_the_way_out_raises_everyone(
    page, live_server, login
):
    """Issue 20's trap: Aggressive (1,000,000 per user) on a 2,000,000 pool with 4 users."""
    org = OrganizationFactory(name="Small Pool")
    PurchaseFactory(organization=org, kind="inference", tokens_per_month=2_000_000)
    PurchaseFactory(organization=org, kind="embedding", tokens_per_month=8_000_000)
    admin = MembershipFactory(organization=org, role="admin", user__email="ada@example.com").user
    for n in range(3):
        MembershipFactory(organization=org, user__email=f"m{n}@example.com")
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, admin)
    page.goto(f"{live_server.url}/panel/distribution/")

    page.get_by_label("Aggressive", exact=True).check()
    page.get_by_role("button", name="Preview changes").click()
    preview = page.get_by_role("region", name="Preset preview")
    expect(preview.get_by_role("alert")).to_contain_text("cannot be applied as is")
    expect(preview).to_contain_text("2,000,000 missing")
    expect(preview.get_by_role("link", name="buy more tokens")).to_be_visible()
    expect(preview.get_by_role("button", name="Apply Aggressive preset")).to_have_count(0)
    assert serious_violations(page) == []

    page.get_by_label("Standard", exact=True).check()
    page.get_by_role("button", name="Preview changes").click()
    preview = page.get_by_role("region", name="Preset preview")
    preview.get_by_role(
        "button", name="Apply Standard preset and raise 4 users to the floor"
    ).click()
    expect(
        page.get_by_role("status").filter(has_text="4 users raised to its floor")
    ).to_be_visible()
    floor = type(org).objects.get(pk=org.pk).min_inference_tokens
    assert floor == 500_000
    assert not Membership.objects.filter(organization=org, max_inference_tokens__lt=floor).exists()
