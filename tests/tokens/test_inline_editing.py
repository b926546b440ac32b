"""Inline editing: pending edits per cell, per-column batches, save, discard, undo."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Membership
from audit.models import AuditLog
from tests.factories import MembershipFactory, PurchaseFactory, max_of, set_max
from tokens.models import AllocationBatch, PendingEdit
from tokens.selectors import pending_summary
from tokens.services import allocations as allocation_services

HX = {"HX-Request": "true"}
INF = "max_inference_tokens"
EMB = "max_embedding_tokens"


def cell_url(user, column=INF):
    return reverse("tokens:cell", args=[user.pk, column])


def save_url(column=INF):
    return reverse("tokens:batch_save", args=[column])


def edit(client, user, value, column=INF):
    return client.post(cell_url(user, column), {"value": value}, headers=HX)


# Confirming a cell ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("300000", 300_000),
        ("300,000", 300_000),
        ("300 000", 300_000),
        ("300k", 300_000),
        ("1.5M", 1_500_000),
        ("2m", 2_000_000),
    ],
)
def test_confirming_a_value_makes_it_pending_not_saved(alice_client, alice, bob, typed, stored):
    response = edit(alice_client, bob, typed)
    assert response.status_code == 200
    html = response.content.decode()
    assert "pending" in html and f"{stored:,}" in html
    assert max_of(bob) == 200_000  # nothing saved yet
    pending = PendingEdit.objects.get(admin=alice, target=bob, column=INF)
    assert (pending.old_value, pending.new_value) == (200_000, stored)
    assert "Save Changes — Max Inference Tokens (1)" in html  # the save bar, out of band
    assert "Available after saving" in html


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", "is not an amount"),
        ("-5", "cannot be negative"),
        ("1.5", "is not an amount"),
        ("9007199254740992", "cannot exceed"),
        ("", "Enter an amount"),
        ("١٢٣٤٥٦٧", "is not an amount"),
        ("100000", "At least 200,000"),
    ],
)
def test_bad_values_show_the_error_at_the_cell_and_change_nothing(
    alice_client, alice, bob, typed, message
):
    response = edit(alice_client, bob, typed)
    assert response.status_code == 422
    html = response.content.decode()
    assert message in html
    assert 'name="value"' in html and 'aria-invalid="true"' in html  # still editing
    assert not PendingEdit.objects.exists()
    assert max_of(bob) == 200_000


def test_typing_back_the_stored_value_clears_the_pending_edit(alice_client, alice, bob):
    edit(alice_client, bob, "300k")
    edit(alice_client, bob, "200,000")
    assert not PendingEdit.objects.exists()


def test_a_column_that_is_not_editable_is_refused(alice_client, alice, bob):
    response = alice_client.post(cell_url(bob, "is_staff"), {"value": "1"}, headers=HX)
    assert response.status_code == 400
    assert "not an editable column" in response.content.decode()
    assert not PendingEdit.objects.exists()


def test_another_organizations_user_is_not_found(alice_client, alice, dave):
    assert edit(alice_client, dave, "300k").status_code == 404
    assert alice_client.get(reverse("tokens:cell_edit", args=[dave.pk, INF])).status_code == 404
    assert not PendingEdit.objects.exists()


def test_carol_cannot_edit_org_a_cells(client, carol, bob):
    client.force_login(carol)
    assert edit(client, bob, "300k").status_code == 404
    assert max_of(bob) == 200_000


def test_a_post_without_csrf_token_is_refused(alice, bob):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(cell_url(bob), {"value": "300k"}, headers=HX)
    assert response.status_code == 403
    assert not PendingEdit.objects.exists()


def test_the_editor_opens_with_the_current_value(alice_client, alice, bob):
    response = alice_client.get(reverse("tokens:cell_edit", args=[bob.pk, INF]), headers=HX)
    html = response.content.decode()
    assert 'name="value"' in html and 'value="200000"' in html


def test_pending_edits_survive_reload_and_paging(alice_client, alice, bob):
    edit(alice_client, bob, "300k")
    html = alice_client.get(reverse("tokens:users"), {"sort": "-name", "page": 1}).content.decode()
    assert "is-pending" in html and "Was 200,000" in html
    assert "Save Changes — Max Inference Tokens (1)" in html


# Saving a batch ---------------------------------------------------------------------------


def test_saving_a_batch_applies_every_change_and_audits_each_cell(alice_client, alice, bob):
    edit(alice_client, bob, "300k")
    edit(alice_client, alice, "250k")
    response = alice_client.post(save_url(), headers=HX)
    assert response.status_code == 200
    assert "Saved 2 changes to Max Inference Tokens" in response.content.decode()
    assert "Undo" in response.content.decode()
    assert (max_of(bob), max_of(alice)) == (300_000, 250_000)
    rows = AuditLog.objects.filter(action="allocation.changed")
    assert rows.count() == 2
    assert len({r.batch_id for r in rows}) == 1
    bob_row = rows.get(target_user=bob)
    assert (bob_row.column, bob_row.old_value, bob_row.new_value) == (INF, "200000", "300000")
    assert bob_row.actor == alice
    assert not PendingEdit.objects.exists()


def test_columns_are_saved_separately(alice_client, alice, bob):
    edit(alice_client, bob, "300k")
    edit(alice_client, bob, "100k", column=EMB)
    alice_client.post(save_url(EMB), headers=HX)
    assert max_of(bob, EMB) == 100_000
    assert max_of(bob) == 200_000
    assert PendingEdit.objects.filter(column=INF).count() == 1


def test_a_batch_over_the_pool_saves_nothing_and_marks_every_offending_cell(
    alice_client, alice, bob
):
    # Org A has 4M inference; alice and bob hold 200K each.
    edit(alice_client, bob, "2M")
    edit(alice_client, alice, "2.5M")
    response = alice_client.post(save_url(), headers=HX)
    assert "Nothing was saved: 2 cells need attention" in response.content.decode()
    assert (max_of(bob), max_of(alice)) == (200_000, 200_000)
    errors = dict(PendingEdit.objects.values_list("target__email", "error"))
    assert all("Over the inference pool" in e for e in errors.values())
    assert not AuditLog.objects.filter(action="allocation.changed").exists()
    html = alice_client.get(reverse("tokens:users")).content.decode()
    # Each offending cell carries its error, described by it (a popover under the cell).
    marked = re.findall(
        r'<p class="cell-error" id="(cell-error-\d+-[a-z_]+)">Over the inference pool by', html
    )
    assert len(marked) == 2
    assert all(f'aria-describedby="{cell}"' in html for cell in marked)


def test_a_value_changed_by_another_admin_since_editing_is_a_conflict(
    alice_client, alice, bob, org_a
):
    other = MembershipFactory(organization=org_a, role="admin").user
    edit(alice_client, bob, "300k")
    other_client = Client()
    other_client.force_login(other)
    edit(other_client, bob, "400k")
    other_client.post(save_url(), headers=HX)
    assert max_of(bob) == 400_000
    response = alice_client.post(save_url(), headers=HX)
    assert "Nothing was saved" in response.content.decode()
    assert max_of(bob) == 400_000
    error = PendingEdit.objects.get(admin=alice).error
    assert "Changed by someone else to 400,000" in error
    # Editing the cell again after seeing the conflict starts from the current value.
    edit(alice_client, bob, "350k")
    alice_client.post(save_url(), headers=HX)
    assert max_of(bob) == 350_000


def test_a_pending_edit_for_a_user_who_left_the_organization_is_refused(
    alice_client, alice, bob, org_a
):
    MembershipFactory(organization=org_a)  # keep the org above 2 users after bob leaves
    edit(alice_client, bob, "300k")
    Membership.objects.filter(user=bob).delete()
    response = alice_client.post(save_url(), headers=HX)
    assert "Nothing was saved" in response.content.decode()
    assert "no longer in Acme Agency" in PendingEdit.objects.get(admin=alice).error


def test_a_replayed_save_changes_nothing(alice_client, alice, bob):
    edit(alice_client, bob, "300k")
    signature = pending_summary(alice, alice.membership.organization)[0][0].signature
    alice_client.post(save_url(), {"signature": signature}, headers=HX)
    response = alice_client.post(save_url(), {"signature": signature}, headers=HX)
    assert "no pending changes" in response.content.decode()
    assert AuditLog.objects.filter(action="allocation.changed").count() == 1


def test_a_save_shown_with_another_set_of_edits_is_refused(alice_client, alice, bob):
    edit(alice_client, bob, "300k")
    signature = pending_summary(alice, alice.membership.organization)[0][0].signature
    edit(alice_client, alice, "900k")  # e.g. from another tab
    response = alice_client.post(save_url(), {"signature": signature}, headers=HX)
    assert "changed since this Save button was shown" in response.content.decode()
    assert max_of(bob) == 200_000


def test_pending_edits_belong_to_the_admin_who_made_them(alice_client, alice, bob, org_a):
    other = MembershipFactory(organization=org_a, role="admin").user
    edit(alice_client, bob, "300k")
    other_client = Client()
    other_client.force_login(other)
    response = other_client.post(save_url(), headers=HX)
    assert "no pending changes" in response.content.decode()
    assert max_of(bob) == 200_000


def test_discard_drops_the_columns_pending_edits(alice_client, alice, bob):
    edit(alice_client, bob, "300k")
    edit(alice_client, bob, "50k", column=EMB)
    alice_client.post(reverse("tokens:batch_discard", args=[INF]), headers=HX)
    assert list(PendingEdit.objects.values_list("column", flat=True)) == [EMB]
    assert max_of(bob) == 200_000


def test_save_without_htmx_redirects_with_a_message(alice_client, alice, bob):
    edit(alice_client, bob, "300k")
    response = alice_client.post(save_url(), follow=True)
    assert "Saved 1 change to Max Inference Tokens" in response.content.decode()
    assert "Undo" in response.content.decode()


@pytest.mark.parametrize("size", [5, 1000])
def test_saving_costs_the_same_number_of_queries_whatever_the_size(
    alice, org_a, size, django_assert_max_num_queries
):
    PurchaseFactory(organization=org_a, tokens_per_month=2_000_000_000)
    members = MembershipFactory.create_batch(size, organization=org_a)
    PendingEdit.objects.bulk_create(
        PendingEdit(
            organization=org_a,
            admin=alice,
            target=m.user,
            column=INF,
            old_value=200_000,
            new_value=300_000,
        )
        for m in members
    )
    # 13 with the one INSERT that tells the users their new limits (bulk, whatever the size).
    with django_assert_max_num_queries(13):
        result = allocation_services.allocation_batch_save(admin=alice, org=org_a, column=INF)
    assert len(result.changes) == size


# Undo -------------------------------------------------------------------------------------


def test_undo_restores_the_previous_values_as_an_audited_batch(alice_client, alice, bob):
    edit(alice_client, bob, "300k")
    alice_client.post(save_url(), headers=HX)
    batch = AllocationBatch.objects.get()
    response = alice_client.post(reverse("tokens:batch_undo", args=[batch.id]), headers=HX)
    assert "Undone: 1 cell of Max Inference Tokens restored" in response.content.decode()
    assert max_of(bob) == 200_000
    undo = AllocationBatch.objects.get(undoes=batch)
    assert AuditLog.objects.filter(
        batch_id=undo.id, old_value="300000", new_value="200000"
    ).exists()


def test_undo_twice_is_refused(alice_client, alice, bob):
    edit(alice_client, bob, "300k")
    alice_client.post(save_url(), headers=HX)
    batch = AllocationBatch.objects.get()
    alice_client.post(reverse("tokens:batch_undo", args=[batch.id]), headers=HX)
    response = alice_client.post(reverse("tokens:batch_undo", args=[batch.id]), headers=HX)
    assert "already been undone" in response.content.decode()
    assert AllocationBatch.objects.count() == 2


def test_undo_after_someone_else_changed_the_cell_is_refused(alice_client, alice, bob):
    edit(alice_client, bob, "300k")
    alice_client.post(save_url(), headers=HX)
    batch = AllocationBatch.objects.get()
    set_max(bob, 500_000)
    response = alice_client.post(reverse("tokens:batch_undo", args=[batch.id]), headers=HX)
    assert "Undo refused" in response.content.decode()
    assert max_of(bob) == 500_000


def test_carol_cannot_undo_org_a_batches(client, carol, alice_client, alice, bob):
    edit(alice_client, bob, "300k")
    alice_client.post(save_url(), headers=HX)
    batch = AllocationBatch.objects.get()
    client.force_login(carol)
    response = client.post(reverse("tokens:batch_undo", args=[batch.id]), headers=HX)
    assert response.status_code == 404
    assert max_of(bob) == 300_000


# Bulk -------------------------------------------------------------------------------------


def test_bulk_set_creates_pending_edits_for_the_selected_rows(alice_client, alice, bob):
    response = alice_client.post(
        reverse("tokens:bulk"),
        {"users": [bob.pk, alice.pk], "column": INF, "mode": "set", "amount": "500k"},
        headers=HX,
    )
    assert "2 pending changes to Max Inference Tokens" in response.content.decode()
    assert set(PendingEdit.objects.values_list("new_value", flat=True)) == {500_000}


def test_bulk_top_up_only_touches_rows_below_the_amount(alice_client, alice, bob):
    set_max(alice, 900_000)
    alice_client.post(
        reverse("tokens:bulk"),
        {"users": [bob.pk, alice.pk], "column": INF, "mode": "topup", "amount": "500k"},
        headers=HX,
    )
    assert list(PendingEdit.objects.values_list("target", "new_value")) == [(bob.pk, 500_000)]


def test_bulk_select_all_matching_uses_the_current_filters(alice_client, alice, bob, org_a):
    MembershipFactory(organization=org_a, role="admin")
    alice_client.post(
        reverse("tokens:bulk"),
        {"all_matching": "1", "query": "role=admin", "column": EMB, "mode": "set", "amount": "1M"},
        headers=HX,
    )
    assert PendingEdit.objects.count() == 2
    assert not PendingEdit.objects.filter(target=bob).exists()


def test_bulk_with_a_forged_user_from_another_org_ignores_it(alice_client, alice, dave):
    alice_client.post(
        reverse("tokens:bulk"),
        {"users": [dave.pk], "column": INF, "mode": "set", "amount": "500k"},
        headers=HX,
    )
    assert not PendingEdit.objects.exists()


def test_bulk_with_a_bad_amount_changes_nothing(alice_client, alice, bob):
    response = alice_client.post(
        reverse("tokens:bulk"),
        {"users": [bob.pk], "column": INF, "mode": "set", "amount": "lots"},
        headers=HX,
    )
    assert "is not an amount" in response.content.decode()
    assert not PendingEdit.objects.exists()


# Paid and banned --------------------------------------------------------------------------


def test_toggling_paid_is_audited(alice_client, alice, bob):
    url = reverse("tokens:user_flag", args=[bob.pk, "paid"])
    response = alice_client.post(url, {"value": "off"}, headers=HX)
    assert "Unpaid" in response.content.decode()
    bob.refresh_from_db()
    assert not bob.is_paid
    row = AuditLog.objects.get(action="user.paid")
    assert (row.target_user, row.old_value, row.new_value) == (bob, "True", "False")


def test_banning_ends_the_users_sessions(alice_client, alice, bob):
    bob_client = Client()
    bob_client.force_login(bob)
    assert bob_client.get("/").status_code == 200
    alice_client.post(
        reverse("tokens:user_flag", args=[bob.pk, "banned"]), {"value": "on"}, headers=HX
    )
    bob.refresh_from_db()
    assert bob.is_banned
    response = bob_client.get("/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert AuditLog.objects.filter(action="user.banned", target_user=bob).exists()


def test_banning_without_javascript_asks_to_confirm_first(alice_client, alice, bob):
    url = reverse("tokens:user_flag", args=[bob.pk, "banned"])
    response = alice_client.post(url, {"value": "on"})
    assert "Ban Bob Member?" in response.content.decode()
    bob.refresh_from_db()
    assert not bob.is_banned
    alice_client.post(url, {"value": "on", "confirmed": "1"})
    bob.refresh_from_db()
    assert bob.is_banned


def test_an_admin_cannot_ban_themselves(alice_client, alice):
    url = reverse("tokens:user_flag", args=[alice.pk, "banned"])
    alice_client.post(url, {"value": "on"}, headers=HX)
    alice.refresh_from_db()
    assert not alice.is_banned


def test_flags_of_another_organizations_user_are_not_found(alice_client, alice, dave):
    url = reverse("tokens:user_flag", args=[dave.pk, "banned"])
    assert alice_client.post(url, {"value": "on"}, headers=HX).status_code == 404
    dave.refresh_from_db()
    assert not dave.is_banned


def test_an_unknown_flag_is_refused(alice_client, alice, bob):
    url = reverse("tokens:user_flag", args=[bob.pk, "staff"])
    assert alice_client.post(url, {"value": "on"}, headers=HX).status_code == 400


def test_a_batch_answer_refreshes_the_table_of_the_page_it_came_from(alice_client, alice, bob):
    edit(alice_client, bob, "300k")
    headers = {**HX, "HX-Current-URL": "http://testserver/panel/users/?q=bob&sort=-name"}
    html = alice_client.post(save_url(), headers=headers).content.decode()
    table = html[html.index('id="user-table"') :]
    assert 'hx-swap-oob="true"' in html[html.index('id="user-table"') - 60 :][:120]
    assert "bob@example.com" in table and "alice@example.com" not in table
    assert "300,000" in table
    assert 'value="q=bob&amp;sort=-name"' in table  # the bulk form keeps the view's filters


def test_a_redirect_after_a_plain_post_stays_on_the_user_table(alice_client, alice, bob):
    edit(alice_client, bob, "300k")
    response = alice_client.post(save_url(), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("tokens:users")
    edit(alice_client, bob, "350k")
    response = alice_client.post(save_url(), {"next": "/panel/users/?sort=-name"})
    assert response["Location"] == "/panel/users/?sort=-name"
