"""Bad input at every edge of the panel and the sales admin: a clear 4xx with words, never a
500, nothing changed, the same answer on SQLite and PostgreSQL (security review, issue 13,
items 7 and 9). The usage API's own cases are in tests/tokens/test_usage_api*.py."""

import pytest

from accounts.models import Organization
from audit.models import AuditLog
from tests.accounts.staff_forms import (
    PROVISION_URL,
    add_purchase_row,
    form_data,
    org_url,
    provision_data,
)
from tokens import selectors
from tokens.models import ApiKey, PendingEdit, Purchase, PurchaseRequest, TokenRequest
from tokens.services import requests as request_services

pytestmark = pytest.mark.django_db

HUGE_ID = 2**64  # past SQLite's INTEGER (2**63 − 1): OverflowError, a 500, before
DIGITS_5000 = "9" * 5_000  # int() refuses more than 4,300 digits: ValueError, a 500, before
HEADER_LINE_LIMIT = 8 * 1024  # nginx's default large_client_header_buffers line


def cell_url(user, column="max_inference_tokens") -> str:
    return f"/panel/users/{user.pk}/cells/{column}/"


# ---------------------------------------------------------------- numbers


def test_a_superscript_digit_in_the_seen_field_is_refused_with_422(alice_client, bob):
    # "²".isdigit() is True and int("²") raises: the view crashed.
    response = alice_client.post(cell_url(bob), {"value": "300k", "seen": "²"})
    assert response.status_code == 422
    assert "The value shown must be a whole number" in response.content.decode()
    assert not PendingEdit.objects.exists()


def test_an_amount_of_5000_digits_is_refused_with_a_message(alice_client, bob):
    response = alice_client.post(cell_url(bob), {"value": DIGITS_5000})
    assert response.status_code == 422
    assert "is too long for an amount" in response.content.decode()
    assert not PendingEdit.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("idle_days", DIGITS_5000),
        ("idle_days", "³"),
    ],
)
def test_a_reclaim_with_a_huge_or_superscript_number_of_days_is_refused_with_422(
    alice_client, bob, field, value
):
    response = alice_client.post(
        "/panel/distribution/reclaim/", {"kind": "inference", field: value}
    )
    assert response.status_code == 422
    assert "Idle days: enter a whole number from 1 to 366." in response.content.decode()


def test_distribution_options_with_5000_digit_numbers_are_refused_with_422(alice_client, bob):
    before = AuditLog.objects.count()
    response = alice_client.post(
        "/panel/distribution/options/",
        {
            "thresholds": DIGITS_5000,
            "low_unallocated": DIGITS_5000,
            "auto_approve_max": DIGITS_5000,
            "auto_approve_below_percent": DIGITS_5000,
            "reclaim_idle_days": DIGITS_5000,
        },
    )
    assert response.status_code == 422
    assert "enter a whole number" in response.content.decode()
    assert AuditLog.objects.count() == before


@pytest.mark.parametrize("user_id", ["²", str(2**64), "-1", "0", DIGITS_5000])
def test_a_bulk_edit_with_an_invalid_user_id_is_refused_with_a_message(alice_client, bob, user_id):
    response = alice_client.post(
        "/panel/users/bulk/",
        {"users": [user_id], "column": "max_inference_tokens", "mode": "set", "amount": "5"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422  # a refusal: the save bar shows the error (it swaps)
    assert "The selection is not valid" in response.content.decode()
    assert not PendingEdit.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/panel/users/{id}/cells/max_inference_tokens/edit/"),
        ("post", "/panel/users/{id}/cells/max_inference_tokens/"),
        ("post", "/panel/users/{id}/flags/paid/"),
        ("post", "/panel/requests/{id}/approve/"),
        ("post", "/panel/requests/{id}/deny/"),
        ("post", "/panel/api-keys/{id}/revoke/"),
        ("get", "/panel/activity/users/{id}/"),
    ],
)
def test_an_id_above_2_63_in_a_path_is_a_404_on_both_databases(alice_client, bob, method, path):
    response = getattr(alice_client, method)(path.format(id=HUGE_ID), {"value": "5"})
    assert response.status_code == 404


def test_the_largest_database_id_still_reaches_the_view(alice_client, bob):
    response = alice_client.get(f"/panel/activity/users/{2**63 - 1}/")
    assert response.status_code == 404  # no such member: the view's own 404, no overflow


def test_the_staff_purchase_inline_refuses_an_amount_of_5000_digits(staff_client, alice, bob):
    org = alice.membership.organization
    data = form_data(staff_client.get(org_url(org)))
    add_purchase_row(data, tokens_per_month=DIGITS_5000)
    response = staff_client.post(org_url(org), data)
    assert response.status_code == 200
    formset = next(
        i.formset
        for i in response.context["inline_admin_formsets"]
        if i.formset.prefix == "purchases-2"
    )
    assert "is too long for an amount" in formset.errors[-1]["tokens_per_month"][0]
    assert not Purchase.objects.filter(start_month="2031-01-01").exists()


def test_provisioning_refuses_amounts_of_5000_digits_with_a_message(staff_client):
    response = staff_client.post(
        PROVISION_URL,
        provision_data(inference_tokens=DIGITS_5000, embedding_tokens=DIGITS_5000),
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "is too long for an amount" in errors["inference_tokens"][0]
    assert "is too long for an amount" in errors["embedding_tokens"][0]
    assert not Organization.objects.filter(name="Newco").exists()


# ---------------------------------------------------------------- text


def test_an_api_key_name_with_a_nul_is_refused_with_422(alice_client, alice):
    response = alice_client.post("/panel/api-keys/", {"name": "Gate\x00way"})
    assert response.status_code == 422
    assert "contains a NUL character" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_a_nul_in_the_override_email_is_refused_with_422(alice_client, bob):
    response = alice_client.post("/panel/distribution/override/", {"email": "bob\x00@example.com"})
    assert response.status_code == 422
    assert "The “email” field contains a NUL character." in response.content.decode()


def test_a_nul_in_the_distribution_users_is_refused_with_422(alice_client, bob):
    response = alice_client.post(
        "/panel/distribution/action/",
        {"kind": "inference", "action": "split", "amount": "5", "users": "bob\x00@example.com"},
    )
    assert response.status_code == 422
    assert "The “users” field contains a NUL character." in response.content.decode()


def test_a_nul_in_a_purchase_request_note_is_refused_with_422(alice_client, bob):
    response = alice_client.post(
        "/panel/distribution/purchase-request/",
        {"kind": "inference", "blocks": "1", "note": "more\x00please"},
    )
    assert response.status_code == 422
    assert "The “note” field contains a NUL character." in response.content.decode()
    assert not PurchaseRequest.objects.exists()


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_a_nul_in_a_decision_note_is_refused_with_a_message(alice_client, bob, decision):
    asked = request_services.token_request_create(
        user=bob, kind="inference", amount=5_000, reason="a run"
    )
    response = alice_client.post(
        f"/panel/requests/{asked.pk}/{decision}/", {"note": "no\x00"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422  # a refusal: the region shows the error at the row
    assert "The “note” field contains a NUL character." in response.content.decode()
    assert TokenRequest.objects.get(pk=asked.pk).status == TokenRequest.Status.PENDING


def test_a_nul_in_a_staff_purchase_note_is_refused(staff_client, alice, bob):
    # Django's form CharField refuses NUL already; kept so it stays that way.
    org = alice.membership.organization
    data = form_data(staff_client.get(org_url(org)))
    add_purchase_row(data, note="paid\x00")
    response = staff_client.post(org_url(org), data)
    assert response.status_code == 200
    assert not Purchase.objects.filter(start_month="2031-01-01").exists()


# ---------------------------------------------------------------- headers


def header_lines(response) -> list[str]:
    return [f"{name}: {value}" for name, value in response.headers.items()]


@pytest.mark.parametrize("htmx", [True, False])
def test_a_100000_character_users_field_keeps_every_header_line_under_8_kib(
    alice_client, bob, htmx
):
    # The "Not in …" error quoted the field, and the announce event (HX-Trigger) quoted the
    # error: a 100,047-byte header line, which a proxy refuses (the whole answer is lost).
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = alice_client.post(
        "/panel/distribution/action/",
        {"kind": "inference", "action": "split", "amount": "5", "users": "x" * 100_000},
        **extra,
    )
    assert response.status_code in {200, 422}
    assert all(len(line.encode()) < HEADER_LINE_LIMIT for line in header_lines(response))
    assert "Not in " in response.content.decode()
    if htmx:
        assert "announce" in response.headers["HX-Trigger"]


def test_a_100000_character_next_url_is_not_copied_into_the_location_header(alice_client, bob):
    target = "/panel/users/?q=" + "x" * 100_000
    response = alice_client.post(
        "/panel/users/bulk/", {"users": [str(bob.pk)], "column": "nope", "next": target}
    )
    assert response.status_code == 302
    assert response["Location"] == "/panel/users/"


def test_a_100000_character_api_key_name_answers_with_bounded_headers(alice_client, alice):
    response = alice_client.post("/panel/api-keys/", {"name": "k" * 100_000})
    assert response.status_code == 422
    assert all(len(line.encode()) < HEADER_LINE_LIMIT for line in header_lines(response))
    assert not selectors.api_keys_for(alice.membership.organization).exists()
