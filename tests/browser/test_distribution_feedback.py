"""Token Distribution answers where the admin is looking (issue 16, item 2): after every
action, success or refusal, its message (or its preview) is on screen, at 1400 and 390 px."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_accessibility import serious_violations
from tests.factories import max_of
from tokens.models import MemberOverride, PurchaseRequest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_page(page, live_server, login, user, width):
    page.set_viewport_size({"width": width, "height": 800})
    login(page, user)
    page.goto(f"{live_server.url}/panel/distribution/")
    return page


def said(section, text):
    """The section's message containing `text`: on screen and focused (read out)."""
    message = section.locator("[data-feedback] .message").filter(has_text=text)
    expect(message).to_be_in_viewport()
    expect(message).to_be_focused()
    return message


@pytest.mark.parametrize("width", [1400, 390])
def test_every_distribution_action_answers_in_view(page, live_server, login, alice, bob, width):
    page = open_page(page, live_server, login, alice, width)
    presets = page.get_by_role("region", name="Allocation presets")

    # A refused custom setting: the refusal, in view.
    presets.get_by_label("Custom", exact=True).check()
    presets.get_by_label("Trigger (% used)").fill("0")
    presets.get_by_role("button", name="Preview changes").click()
    said(presets, "from 1 to 100")
    expect(presets.get_by_role("alert")).to_be_visible()

    # A preset: its preview, then its confirmation, in view.
    presets.get_by_label("Standard", exact=True).check()
    presets.get_by_role("button", name="Preview changes").click()
    expect(presets.get_by_role("region", name="Preset preview")).to_be_in_viewport()
    presets.get_by_role("button", name="Apply Standard preset").click()
    said(presets, "Standard preset is now active")
    expect(page.locator("[data-active-preset]")).to_have_text("Standard")  # the status too

    # Distribute: the preview, then the result.
    actions = page.get_by_role("region", name="Distribution actions")
    actions.get_by_role("button", name="Preview", exact=True).click()
    preview = page.get_by_role("region", name="Preview: Split the unallocated pool equally")
    expect(preview).to_be_in_viewport()
    preview.get_by_role("button", name="Apply to 2 users").click()
    said(actions, "Applied to 2 users")
    assert max_of(bob) > 200_000

    # Reclaim (nobody has used anything: both are idle): the preview, then the result.
    reclaim = page.get_by_role("region", name="Reclamation")
    reclaim.get_by_label("Idle for (days)").fill("1")
    reclaim.get_by_role("button", name="Preview reclamation").click()
    reclaim_preview = page.get_by_role("region", name="Preview: Reclaim idle allocations")
    expect(reclaim_preview.or_(reclaim.get_by_role("alert"))).to_be_in_viewport()
    reclaim_apply = reclaim_preview.get_by_role("button", name="Apply to")
    if reclaim_apply.count():  # who counts as idle depends on logins: apply if anyone is
        reclaim_apply.click()
        said(reclaim, "Reclaimed")

    # Overrides: a refusal, a save, a removal.
    overrides = page.get_by_role("region", name="Per-user overrides")
    overrides.get_by_label("User email").fill("nobody@example.com")
    overrides.get_by_role("button", name="Save override").click()
    said(overrides, "No member of")
    overrides.get_by_label("User email").fill(bob.email)
    overrides.get_by_label("Pinned").check()
    overrides.get_by_role("button", name="Save override").click()
    said(overrides, f"Saved the override for {bob.email}")
    assert MemberOverride.objects.filter(user=bob, pinned=True).exists()
    overrides.get_by_role("button", name=f"Remove the override of {bob.email}").click()
    said(overrides, f"Removed the override for {bob.email}")

    # Options and a purchase request.
    options = page.get_by_role("region", name="Alerts and auto-approval")
    options.get_by_role("button", name="Save settings").click()
    said(options, "settings saved")
    purchase = page.get_by_role("region", name="Ask sales for more tokens")
    purchase.get_by_label("Note for sales").fill("Q3")
    purchase.get_by_role("button", name="Send purchase request").click()
    said(purchase, "Sent to sales: 2,000,000 more inference tokens a month.")
    assert PurchaseRequest.objects.count() == 1


def test_without_javascript_a_saved_setting_lands_on_its_section_with_its_message(
    browser, live_server, login, alice, bob
):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 800})
    page = context.new_page()
    login(page, alice)
    page.goto(f"{live_server.url}/panel/distribution/")
    options = page.get_by_role("region", name="Alerts and auto-approval")
    options.get_by_role("button", name="Save settings").click()
    page.wait_for_url("**/panel/distribution/#dist-options")
    expect(options.get_by_role("status").filter(has_text="settings saved")).to_be_in_viewport()
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_distribution_page_with_its_messages_has_no_serious_axe_violations(
    page, live_server, login, alice, bob, scheme
):
    page.emulate_media(color_scheme=scheme)
    page = open_page(page, live_server, login, alice, 1400)
    overrides = page.get_by_role("region", name="Per-user overrides")
    overrides.get_by_role("button", name="Save override").click()  # refused: no email
    said(overrides, "")
    options = page.get_by_role("region", name="Alerts and auto-approval")
    options.get_by_role("button", name="Save settings").click()
    said(options, "settings saved")
    assert serious_violations(page) == []


def test_a_slow_answer_shows_the_busy_bar_dims_its_section_and_disables_its_button(
    page, live_server, login, alice, bob
):
    page = open_page(page, live_server, login, alice, 1400)
    held = []
    page.route("**/panel/distribution/options/", lambda route: held.append(route))  # held
    options = page.get_by_role("region", name="Alerts and auto-approval")
    button = options.get_by_role("button", name="Save settings")
    button.click()
    expect(page.locator("#busy")).to_have_class(re.compile(r"\bhtmx-request\b"))
    expect(options).to_have_attribute("aria-busy", "true")
    expect(button).to_be_disabled()  # a second click cannot send it twice
    page.wait_for_timeout(300)  # past the 200 ms delay: the bar and the dimming show
    assert page.locator("#busy").evaluate("e => getComputedStyle(e).opacity") == "1"
    assert options.evaluate("e => getComputedStyle(e).opacity") == "0.6"
    held[0].continue_()
    said(options, "settings saved")
    expect(page.locator("#busy")).not_to_have_class(re.compile(r"\bhtmx-request\b"))
    expect(options).not_to_have_attribute("aria-busy", "true")
