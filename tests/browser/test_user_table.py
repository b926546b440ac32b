"""User Management as an admin does it: double-click, type, Enter, Save Changes, reload."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import MembershipFactory, max_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin_page(page, live_server, login, alice, bob):
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    return page


def cell(page, user, column="Max Inference Tokens"):
    return page.get_by_role("button", name=re.compile(f"^{column} for {user.name}:"))


def editor(page, user, column="Max Inference Tokens"):
    return page.get_by_role("textbox", name=f"New {column} for {user.name}")


def test_double_click_type_enter_then_save(admin_page, bob):
    page = admin_page
    cell(page, bob).dblclick()
    box = editor(page, bob)
    expect(box).to_be_focused()
    expect(box).to_have_value("200000")
    assert (
        page.evaluate(
            "() => document.activeElement.selectionEnd - document.activeElement.selectionStart"
        )
        == 6
    )
    box.fill("300k")
    box.press("Enter")
    pending = cell(page, bob)
    expect(pending).to_have_text("300,000")
    expect(pending).to_have_attribute("title", "Was 200,000")
    expect(page.locator("#announcer")).to_contain_text("pending")
    save = page.get_by_role("button", name="Save Changes — Max Inference Tokens (1)")
    expect(save).to_be_visible()
    box_ = save.bounding_box()
    assert box_["x"] < 700 and box_["y"] > 700  # bottom-left corner
    expect(page.locator(".pool-after").first).to_contain_text("Available after saving")
    save.click()
    expect(page.get_by_role("status").filter(has_text="Saved 1 change")).to_be_visible()
    assert max_of(bob) == 300_000
    page.reload()
    expect(cell(page, bob)).to_have_text("300,000")
    expect(page.locator(".pool-card").first).to_contain_text("500,000")  # allocated 200K + 300K


def test_escape_cancels_and_click_outside_confirms(admin_page, bob):
    page = admin_page
    cell(page, bob).dblclick()
    editor(page, bob).fill("999k")
    editor(page, bob).press("Escape")
    expect(cell(page, bob)).to_have_text("200,000")
    expect(cell(page, bob)).to_be_focused()
    cell(page, bob).dblclick()
    editor(page, bob).fill("450k")
    page.get_by_role("heading", name="User Management").click()
    expect(cell(page, bob)).to_have_text("450,000")
    expect(page.get_by_role("button", name=re.compile("Save Changes"))).to_be_visible()


def test_an_invalid_value_shows_its_error_and_stays_editing(admin_page, bob):
    page = admin_page
    cell(page, bob).dblclick()
    editor(page, bob).fill("lots")
    editor(page, bob).press("Enter")
    expect(page.get_by_role("alert").filter(has_text="is not an amount")).to_be_visible()
    expect(editor(page, bob)).to_be_visible()
    expect(editor(page, bob)).to_be_focused()
    editor(page, bob).fill("250k")
    editor(page, bob).press("Enter")
    expect(cell(page, bob)).to_have_text("250,000")


def test_both_columns_are_saved_separately(admin_page, bob):
    page = admin_page
    cell(page, bob).dblclick()
    editor(page, bob).fill("300k")
    editor(page, bob).press("Enter")
    cell(page, bob, "Max Embedding Tokens").dblclick()
    editor(page, bob, "Max Embedding Tokens").fill("100k")
    editor(page, bob, "Max Embedding Tokens").press("Enter")
    page.get_by_role("button", name="Save Changes — Max Embedding Tokens (1)").click()
    expect(
        page.get_by_role("status").filter(has_text="Saved 1 change to Max Embedding")
    ).to_be_visible()
    assert (max_of(bob), max_of(bob, "max_embedding_tokens")) == (200_000, 100_000)
    expect(
        page.get_by_role("button", name="Save Changes — Max Inference Tokens (1)")
    ).to_be_visible()


def test_a_pool_overflow_is_refused_with_every_offending_cell_marked(admin_page, alice, bob):
    page = admin_page
    for user, value in ((bob, "2M"), (alice, "2.5M")):
        cell(page, user).dblclick()
        editor(page, user).fill(value)
        editor(page, user).press("Enter")
        expect(cell(page, user)).to_have_text(f"{int(float(value[:-1]) * 1_000_000):,}")
    expect(page.locator(".pool-after.is-over")).to_be_visible()
    page.get_by_role("button", name="Save Changes — Max Inference Tokens (2)").click()
    expect(page.get_by_role("alert").filter(has_text="Nothing was saved")).to_be_visible()
    expect(page.locator(".cell-error", has_text="Over the inference pool")).to_have_count(2)
    assert max_of(bob) == 200_000


def test_undo_puts_the_old_value_back(admin_page, bob):
    page = admin_page
    cell(page, bob).dblclick()
    editor(page, bob).fill("300k")
    editor(page, bob).press("Enter")
    page.get_by_role("button", name=re.compile("Save Changes")).click()
    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("status").filter(has_text="Undone")).to_be_visible()
    expect(cell(page, bob)).to_have_text("200,000")
    assert max_of(bob) == 200_000


def test_keyboard_only_editing(admin_page, alice, bob):
    page = admin_page
    cell(page, alice).focus()
    page.keyboard.press("ArrowDown")
    expect(cell(page, bob)).to_be_focused()
    page.keyboard.press("Enter")
    expect(editor(page, bob)).to_be_focused()
    page.keyboard.type("600k")
    page.keyboard.press("Enter")
    expect(cell(page, bob)).to_have_text("600,000")
    expect(cell(page, bob)).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(cell(page, bob, "Max Embedding Tokens")).to_be_focused()


def test_a_conflict_between_two_admins_is_reported_at_the_cell(
    admin_page, browser, live_server, login, org_a, bob
):
    other = MembershipFactory(organization=org_a, role="admin", user__name="Olga Other").user
    page = admin_page
    cell(page, bob).dblclick()
    editor(page, bob).fill("300k")
    editor(page, bob).press("Enter")
    expect(cell(page, bob)).to_have_text("300,000")

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    other_page = context.new_page()
    login(other_page, other)
    other_page.goto(f"{live_server.url}/panel/users/")
    cell(other_page, bob).dblclick()
    editor(other_page, bob).fill("400k")
    editor(other_page, bob).press("Enter")
    other_page.get_by_role("button", name=re.compile("Save Changes")).click()
    expect(other_page.get_by_role("status").filter(has_text="Saved 1 change")).to_be_visible()
    context.close()

    page.get_by_role("button", name=re.compile("Save Changes")).click()
    expect(page.get_by_role("alert").filter(has_text="Nothing was saved")).to_be_visible()
    # The cell names its error (red, "!", in its accessible description) and shows it as a
    # popover when pointed at or focused, instead of a wall of text inside the cell.
    expect(cell(page, bob)).to_have_accessible_description(
        re.compile("Changed by someone else to 400,000")
    )
    cell(page, bob).focus()
    expect(
        page.locator(".cell-error", has_text="Changed by someone else to 400,000")
    ).to_be_visible()
    assert max_of(bob) == 400_000


def test_banning_asks_to_confirm(admin_page, bob):
    page = admin_page
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("switch", name=f"Banned: {bob.name}").click()
    expect(page.get_by_role("switch", name=f"Banned: {bob.name}")).to_have_attribute(
        "aria-checked", "true"
    )
    bob.refresh_from_db()
    assert bob.is_banned


def test_a_ban_refreshes_the_members_max_cells_and_the_pool_without_a_reload(admin_page, bob):
    page = admin_page
    pool = page.locator("#pool-summary [data-kind=inference]")
    expect(pool).to_contain_text("3,600,000")  # 4M, alice and bob at 200K each
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("switch", name=f"Banned: {bob.name}").click()
    expect(cell(page, bob)).to_have_text("0")
    expect(cell(page, bob, "Max Embedding Tokens")).to_have_text("0")
    expect(pool).to_contain_text("3,800,000")  # bob's 200K back in the pool
    expect(page.locator("#pool-summary")).to_have_count(1)


def test_sorting_and_searching_swap_the_table_and_keep_the_url(admin_page, alice, bob):
    page = admin_page
    page.get_by_role("link", name="Max Inference Tokens").click()
    expect(page).to_have_url(re.compile(r"sort=max_inference_tokens"))
    page.get_by_label("Search").fill("bob")
    expect(page).to_have_url(re.compile(r"q=bob"))
    expect(page.locator("#users-grid tbody tr")).to_have_count(1)
    page.go_back()
    expect(page).to_have_url(re.compile(r"sort=max_inference_tokens$"))


def test_tab_moves_between_editable_cells_and_confirms_an_edit(admin_page, alice, bob):
    page = admin_page
    cell(page, alice).focus()
    page.keyboard.press("Tab")
    expect(cell(page, alice, "Max Embedding Tokens")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(cell(page, alice)).to_be_focused()
    page.keyboard.press("Enter")
    expect(editor(page, alice)).to_be_focused()
    page.keyboard.type("250k")
    page.keyboard.press("Tab")  # confirms, then continues in the next editable cell
    expect(cell(page, alice)).to_have_text("250,000")
    expect(cell(page, alice, "Max Embedding Tokens")).to_be_focused()
