"""An org admin disables a model on the Models page, by keyboard; the gateway's next report
for it is refused with 403 and counts nothing. The page passes axe at three widths."""

import json
import urllib.error
import urllib.request

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.factories import PlatformModelFactory, used
from tokens.services import api_keys as api_key_services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def catalogue(db):
    return [
        PlatformModelFactory(name="gpt-4o", display_name="GPT-4o"),
        PlatformModelFactory(name="o1", display_name="o1 Reasoning"),
    ]


def report(live_server, key: str, model: str, idem: str) -> tuple[int, dict]:
    payload = {"user": "bob@example.com", "kind": "inference", "tokens": 500, "model": model}
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/usage",
        data=json.dumps(payload).encode(),
        headers={
            "Authorization": f"Bearer {key}",
            "Idempotency-Key": idem,
            "Content-Type": "application/json",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def test_an_admin_disables_a_model_and_the_next_report_is_refused(
    page, live_server, login, alice, bob, org_a, catalogue
):
    key = api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway")[1]
    assert report(live_server, key, "o1", "before")[0] == 200
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    page.get_by_role("navigation", name="Admin Panel").get_by_role("link", name="Models").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Models")
    expect(page.get_by_role("heading", name="Every model is allowed")).to_be_visible()
    row = page.get_by_role("row", name="o1 Reasoning")
    expect(row).to_contain_text("Everyone")

    # By keyboard: open the row's form, choose "Nobody", save.
    row.get_by_text("Change who may use o1 Reasoning").focus()
    page.keyboard.press("Enter")
    nobody = row.get_by_role("radio", name="Nobody (disabled)")
    nobody.focus()
    page.keyboard.press("Space")
    expect(nobody).to_be_checked()
    row.get_by_role("button", name="Save for o1 Reasoning").focus()
    page.keyboard.press("Enter")

    expect(
        page.get_by_role("status").filter(has_text="o1 may now be used by: Nobody.")
    ).to_be_visible()
    expect(page.get_by_role("heading", name="Only the enabled models")).to_be_visible()
    expect(page.get_by_role("row", name="o1 Reasoning")).to_contain_text("Nobody")
    expect(page.get_by_role("row", name="GPT-4o")).to_contain_text("Everyone")

    status, body = report(live_server, key, "o1", "after")
    assert (status, body["error"]) == (403, "model_not_allowed")
    assert report(live_server, key, "gpt-4o", "other")[0] == 200
    assert used(bob) == 1_000  # the first o1 report and gpt-4o: nothing for the refused one


def test_a_refused_choice_is_shown_beside_the_form(page, live_server, login, alice, catalogue):
    page.set_viewport_size({"width": 1000, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/models/")
    row = page.get_by_role("row", name="o1 Reasoning")
    row.get_by_text("Change who may use o1 Reasoning").click()
    row.get_by_role("radio", name="Only some roles").check()
    row.get_by_role("button", name="Save for o1 Reasoning").click()
    expect(page.get_by_role("status").filter(has_text="Choose at least one role.")).to_be_visible()
    # The form stays open for another try.
    expect(
        page.get_by_role("row", name="o1 Reasoning").get_by_role("checkbox", name="Admins")
    ).to_be_visible()


@pytest.mark.parametrize("width", [1400, 1000, 390])
def test_the_models_page_has_no_serious_axe_violations(
    page, live_server, login, alice, catalogue, width
):
    page.set_viewport_size({"width": width, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/models/")
    page.get_by_role("row", name="o1 Reasoning").get_by_text(
        "Change who may use o1 Reasoning"
    ).click()
    results = Axe().run(page)
    serious = [
        f"{v['id']}: {v['help']}"
        for v in results.response["violations"]
        if v["impact"] in {"serious", "critical"}
    ]
    assert serious == []
