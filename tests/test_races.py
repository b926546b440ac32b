"""Two requests racing for the same row: the loser gets a clear message, never a 500.

Each test pauses the first thread just before its insert (tests.concurrency) so the race
window is open on every run, not only when the scheduler happens to interleave.
"""

import threading

import pytest
from django.test import Client
from django.urls import reverse

from accounts import services as account_services
from accounts.models import User
from tests.concurrency import hold_first_thread, run_together
from tokens.models import PendingEdit
from tokens.services import allocations as allocation_services

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_same_cell_confirmed_twice_at_once_keeps_one_pending_edit(
    monkeypatch, org_a, alice, bob
):
    membership = bob.membership
    second_done = threading.Event()
    monkeypatch.setattr(
        PendingEdit.objects,
        "create",
        hold_first_thread(PendingEdit.objects, "create", until=second_done),
    )

    def confirm(value):
        return allocation_services.pending_edit_set(
            admin=alice,
            org=org_a,
            membership=membership,
            column="max_inference_tokens",
            value=value,
        )

    def confirm_then_signal():
        try:
            return confirm(300_000)
        finally:
            second_done.set()

    outcomes = run_together(lambda: confirm(400_000), confirm_then_signal)

    assert [o[0] for o in outcomes] == ["ok", "ok"], outcomes
    edit = PendingEdit.objects.get()
    assert (edit.target, edit.old_value) == (bob, 200_000)
    assert edit.new_value in {300_000, 400_000}


def test_the_same_email_registered_at_once_creates_one_account_and_refuses_the_rest(
    monkeypatch, db
):
    others_done = threading.Event()
    monkeypatch.setattr(
        User.objects,
        "create_user",
        hold_first_thread(User.objects, "create_user", until=others_done),
    )

    def register():
        return account_services.user_register(
            email="eve@example.com", name="Eve", password="a-long-pass-phrase", accepted_terms=True
        )

    def register_then_signal():
        try:
            return register()
        finally:
            others_done.set()

    outcomes = run_together(register, register_then_signal)

    assert sorted(o[0] for o in outcomes) == ["ok", "refused"], outcomes
    assert "already exists" in next(o[1] for o in outcomes if o[0] == "refused")
    assert User.objects.filter(email__iexact="eve@example.com").count() == 1


def test_six_registrations_of_one_email_at_once_answer_one_welcome_and_five_form_errors(
    db,
):
    url = reverse("accounts:register")
    data = {
        "email": "zed@example.com",
        "name": "Zed",
        "password": "a-long-pass-phrase-2026",
        "accept_terms": "on",
    }
    outcomes = run_together(*[lambda: Client().post(url, data).status_code] * 6)

    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    statuses = sorted(status for _, status in outcomes)
    assert statuses.count(302) == 1, statuses
    assert all(status == 200 for status in statuses if status != 302), statuses
    assert User.objects.filter(email__iexact="zed@example.com").count() == 1
