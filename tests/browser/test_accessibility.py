"""axe-core (shipped inside axe-playwright-python, so it runs offline) on the panel pages."""

import pytest
from axe_playwright_python.sync_playwright import Axe

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SERIOUS = {"serious", "critical"}


def serious_violations(page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)"
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


@pytest.mark.parametrize("width", [1400, 1000])
def test_user_management_has_no_serious_axe_violations(page, live_server, login, alice, bob, width):
    page.set_viewport_size({"width": width, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    assert serious_violations(page) == []


def test_user_management_while_editing_has_no_serious_axe_violations(
    page, live_server, login, alice, bob
):
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    cell = page.get_by_role(
        "button", name="Max Inference Tokens for Bob Member: 200,000", exact=False
    )
    cell.dblclick()
    box = page.get_by_role("textbox", name="New Max Inference Tokens for Bob Member")
    box.fill("nope")
    box.press("Enter")
    page.get_by_role("alert").filter(has_text="is not an amount").wait_for()
    assert serious_violations(page) == []


def test_the_member_home_page_has_no_serious_axe_violations(page, live_server, login, bob):
    login(page, bob)
    assert serious_violations(page) == []
