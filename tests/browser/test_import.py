"""Importing allocations as an admin does it: choose a file, preview, add as pending edits,
Save Changes for each column, Undo; and a 5,000-row file saved as two column batches."""

import re
import time

import pytest
from playwright.sync_api import expect

from accounts.models import Membership, User
from tests.factories import PurchaseFactory, max_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

INF, EMB = "max_inference_tokens", "max_embedding_tokens"


@pytest.fixture
def admin_page(page, live_server, login, alice, bob):
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    return page


def choose(page, tmp_path, text: str, name: str = "limits.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    page.get_by_label("CSV or Excel file").set_input_files(str(path))


def test_upload_preview_apply_save_each_column_and_undo(admin_page, tmp_path, bob):
    page = admin_page
    page.get_by_role("link", name="Import CSV/XLSX").click()
    expect(page.get_by_role("heading", name="Import allocations")).to_be_visible()
    choose(
        page,
        tmp_path,
        "email;max_inference_tokens;max_embedding_tokens\n"
        "bob@example.com;300k;100k\nnobody@example.com;1M;\n",
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="Will change (1)")).to_be_visible()
    expect(page.get_by_role("heading", name="Unknown emails (1), left out")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="semicolon separated")).to_be_visible()
    page.get_by_role("button", name="Add 1 row as pending edits").click()
    page.wait_for_url(re.compile(r"/panel/users/$"))
    expect(page.get_by_text("Imported limits.csv: 2 pending changes")).to_be_visible()
    inference = page.get_by_role("button", name="Save Changes — Max Inference Tokens (1)")
    embedding = page.get_by_role("button", name="Save Changes — Max Embedding Tokens (1)")
    expect(inference).to_be_visible()
    inference.click()
    expect(
        page.get_by_role("status").filter(has_text="Saved 1 change to Max Inference")
    ).to_be_visible()
    assert max_of(bob) == 300_000 and max_of(bob, EMB) == 0
    embedding.click()
    expect(
        page.get_by_role("status").filter(has_text="Saved 1 change to Max Embedding")
    ).to_be_visible()
    assert max_of(bob, EMB) == 100_000
    page.get_by_role("button", name="Undo").click()
    expect(
        page.get_by_role("status").filter(has_text="Undone: 1 cell of Max Embedding")
    ).to_be_visible()
    assert max_of(bob, EMB) == 0 and max_of(bob) == 300_000


def test_a_refused_file_says_why_by_keyboard(admin_page, live_server, tmp_path):
    page = admin_page
    page.goto(f"{live_server.url}/panel/users/import/")
    choose(page, tmp_path, "name,amount\nbob,300k\n")
    page.get_by_role("button", name="Preview").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("The first row must name the columns")
    # The form swapped itself (it is its own target): the chosen file is still there.
    assert page.get_by_label("CSV or Excel file").evaluate("input => input.files.length") == 1


def _members(org, n: int) -> list[str]:
    User.objects.bulk_create(
        User(email=f"bulk{i:05d}@example.com", name=f"Bulk {i:05d}") for i in range(n)
    )
    users = list(User.objects.filter(email__startswith="bulk").order_by("email"))
    Membership.objects.bulk_create(
        Membership(user=u, organization=org, max_inference_tokens=200_000) for u in users
    )
    return [u.email for u in users]


def test_five_thousand_rows_import_and_save_as_two_batches(
    admin_page, live_server, tmp_path, org_a
):
    page = admin_page
    emails = _members(org_a, 5000)
    PurchaseFactory(organization=org_a, kind="inference", tokens_per_month=1_300_000_000)
    PurchaseFactory(organization=org_a, kind="embedding", tokens_per_month=20_000_000)
    text = "email,max_inference_tokens,max_embedding_tokens\n" + "".join(
        f"{email},250k,{1000 + n}\n" for n, email in enumerate(emails)
    )
    page.goto(f"{live_server.url}/panel/users/import/")
    choose(page, tmp_path, text, "5000.csv")
    start = time.perf_counter()
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="Will change (5,000)")).to_be_visible(timeout=60_000)
    print(f"5,000-row preview in Chromium: {(time.perf_counter() - start) * 1000:.0f} ms")
    page.get_by_role("button", name="Add 5,000 rows as pending edits").click()
    page.wait_for_url(re.compile(r"/panel/users/$"), timeout=60_000)
    for label in ("Max Inference Tokens", "Max Embedding Tokens"):
        page.get_by_role("button", name=f"Save Changes — {label} (5000)").click()
        saved = page.get_by_role("status").filter(has_text=f"Saved 5000 changes to {label}")
        expect(saved).to_be_visible(timeout=120_000)
    assert (
        Membership.objects.filter(organization=org_a, max_inference_tokens=250_000).count() == 5000
    )
    assert Membership.objects.filter(organization=org_a, max_embedding_tokens__gt=0).count() == 5000
