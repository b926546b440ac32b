"""Import of allocations: preview (nothing written), apply (pending edits + audit), then the
usual Save Changes per column and Undo; limits and refusals answer 422 in words."""

import hashlib
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from audit.models import AuditLog
from tests.factories import MembershipFactory, UserFactory, max_of, set_max
from tokens.models import AllocationBatch, PendingEdit

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
INF, EMB = "max_inference_tokens", "max_embedding_tokens"
URL = "/panel/users/import/"


def upload(text: str | bytes, name: str = "limits.csv") -> SimpleUploadedFile:
    data = text.encode() if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def preview(client, text: str, **headers):
    return client.post(URL, {"file": upload(text), "step": "preview"}, headers=headers or HX)


def apply(client, text: str, previewed: str | None = None):
    data = {"file": upload(text), "step": "apply", "previewed": previewed or digest(text)}
    return client.post(URL, data, headers=HX)


@pytest.fixture
def cast(org_a, alice, bob, dave):
    ann = MembershipFactory(organization=org_a, user__email="ann@example.com").user
    return {"alice": alice, "bob": bob, "ann": ann, "dave": dave}


FILE = (
    "email,max_inference_tokens,max_embedding_tokens\n"
    "bob@example.com,300k,100k\n"  # changes both columns
    "alice@example.com,200000,\n"  # unchanged
    "ann@example.com,,50k\n"  # embedding only
    "dave@example.com,500k,\n"  # org B's member: unknown
    "nobody@example.com,500k,\n"  # no such user: unknown, the same way
    "carl@example.com,abc,\n"  # invalid
)


def test_the_preview_sorts_the_rows_and_shows_the_pool_after_without_writing(alice_client, cast):
    response = preview(alice_client, FILE)
    assert response.status_code == 200
    html = response.content.decode()
    assert "2 will change, 1 unchanged, 2 unknown emails, 0 under the floor, 1 invalid" in html
    assert "200,000 → <strong>300,000</strong>" in html
    assert "0 → <strong>100,000</strong>" in html
    # Inference: 4M purchased, 600K allocated (3 × 200K), the file adds 100K.
    assert re.search(
        r"4,000,000</td><td class=\"num\">600,000</td><td class=\"num\">\+100,000", html
    )
    assert "3,300,000" in html
    assert "Add 2 rows as pending edits" in html
    assert f'name="previewed" value="{digest(FILE)}"' in html
    assert not PendingEdit.objects.exists()
    assert not AuditLog.objects.filter(action="allocation.imported").exists()


def test_another_organizations_member_reads_as_unknown_like_a_stranger(alice_client, cast):
    html = preview(alice_client, FILE).content.decode()
    unknown = html.split("Unknown emails", 1)[1].split("</ul>", 1)[0]
    assert "Row 5: dave@example.com</li>" in unknown and "Row 6: nobody@example.com</li>" in unknown
    assert "Dave" not in html  # no name, nothing that tells he exists elsewhere


def test_values_under_the_floor_are_left_out_with_the_floor(alice_client, cast):
    html = preview(alice_client, "email,max_inference_tokens\nbob@example.com,150k\n").content
    assert "Max Inference Tokens: at least 200,000" in html.decode()
    assert "as pending edits" not in html.decode()


def test_applying_writes_pending_edits_per_column_and_one_audit_row(alice_client, alice, cast):
    response = apply(alice_client, FILE)
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("tokens:users")
    edits = {
        (e.target.email, e.column): (e.old_value, e.new_value) for e in PendingEdit.objects.all()
    }
    assert edits == {
        ("bob@example.com", INF): (200_000, 300_000),
        ("bob@example.com", EMB): (0, 100_000),
        ("ann@example.com", EMB): (0, 50_000),
    }
    assert max_of(cast["bob"]) == 200_000  # nothing saved yet
    row = AuditLog.objects.get(action="allocation.imported")
    assert (row.actor, row.new_value) == (alice, "limits.csv")
    assert (row.details["pending_inference"], row.details["pending_embedding"]) == (1, 2)
    assert row.details["skipped"] == 3
    page = alice_client.get(reverse("tokens:users")).content.decode()
    assert "Imported limits.csv: 3 pending changes" in page
    assert "Save Changes — Max Inference Tokens (1)" in page
    assert "Save Changes — Max Embedding Tokens (2)" in page
    activity = alice_client.get(reverse("analytics:activity")).content.decode()
    assert "Limits imported from a file (pending)" in activity and "limits.csv" in activity


def test_the_imported_edits_save_per_column_and_undo(alice_client, cast):
    apply(alice_client, FILE)
    for column in (INF, EMB):
        response = alice_client.post(reverse("tokens:batch_save", args=[column]), headers=HX)
        assert response.status_code == 200, response.content.decode()[:300]
    assert max_of(cast["bob"]) == 300_000 and max_of(cast["bob"], EMB) == 100_000
    assert max_of(cast["ann"], EMB) == 50_000
    assert AllocationBatch.objects.count() == 2
    last = AllocationBatch.objects.get(column=EMB)
    alice_client.post(reverse("tokens:batch_undo", args=[last.pk]), headers=HX)
    assert max_of(cast["bob"], EMB) == 0 and max_of(cast["ann"], EMB) == 0
    assert max_of(cast["bob"]) == 300_000


def test_an_unchanged_row_clears_a_pending_edit_of_that_cell(alice_client, alice, cast):
    edit = "email,max_inference_tokens\nbob@example.com,900k\n"
    apply(alice_client, edit)
    assert PendingEdit.objects.filter(target=cast["bob"]).exists()
    again = "email,max_inference_tokens\nbob@example.com,200k\nann@example.com,250k\n"
    apply(alice_client, again)
    assert not PendingEdit.objects.filter(target=cast["bob"]).exists()
    assert (
        AuditLog.objects.filter(action="allocation.imported").latest("pk").details["cleared"] == 1
    )


def test_the_preview_counts_the_pending_edits_the_file_replaces(alice_client, cast):
    apply(alice_client, "email,max_inference_tokens\nbob@example.com,900k\nann@example.com,300k\n")
    html = preview(alice_client, "email,max_inference_tokens\nbob@example.com,400k\n").content
    # Purchased 4M − allocated 600K − (bob now +200K, ann's pending +100K) = 3.1M.
    assert "3,100,000" in html.decode()


def test_applying_a_file_other_than_the_previewed_one_is_refused(alice_client, cast):
    response = apply(alice_client, FILE, previewed=digest("something else"))
    assert response.status_code == 422
    assert "not the file you previewed" in response.content.decode()
    assert not PendingEdit.objects.exists()


def test_a_file_with_nothing_to_apply_is_refused(alice_client, cast):
    text = "email,max_inference_tokens\nnobody@example.com,300k\n"
    response = apply(alice_client, text)
    assert response.status_code == 422
    assert "No row of this file can be applied" in response.content.decode()
    assert not AuditLog.objects.filter(action="allocation.imported").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Choose a CSV or Excel (.xlsx) file"),
        ({"file": upload(b"\x00\x01binary")}, "This file is not text"),
        ({"file": upload("name\nbob\n")}, "must name the columns"),
        ({"file": upload(FILE), "step": "delete"}, "Choose Preview or Apply"),
    ],
)
def test_a_refusal_answers_422_with_words(alice_client, cast, data, message):
    response = alice_client.post(URL, data, headers=HX)
    assert response.status_code == 422
    assert message in response.content.decode()


def test_a_file_over_the_size_cap_is_refused(alice_client, cast, settings):
    settings.IMPORT_MAX_BYTES = 1024
    big = "email,max_inference_tokens\n" + "bob@example.com,300k\n" * 60  # about 1.3 KB
    response = preview(alice_client, big)
    assert response.status_code == 422
    assert "The file is too large (1.3 KB): at most 1 KB." in response.content.decode()


def test_a_body_declared_over_the_cap_is_refused_before_it_is_read(alice_client, cast, settings):
    settings.IMPORT_MAX_BYTES = 1024
    response = alice_client.post(
        URL,
        data=b"x" * 10,
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(10 * 1024 * 1024),
        headers=HX,
    )
    assert response.status_code == 422
    assert (
        "too large (10.0 MB): at most 0.0 MB" in response.content.decode()
        or "too large" in response.content.decode()
    )


def test_a_broken_content_length_is_refused_in_words_not_a_500(alice_client, cast):
    response = alice_client.post(
        URL,
        data=b"x" * 10,
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH="ten",
        headers=HX,
    )
    assert response.status_code == 422
    assert "size could not be read" in response.content.decode()


def test_the_template_shows_a_formula_like_address_as_text(alice_client, cast, org_a):
    MembershipFactory(organization=org_a, user=UserFactory(email="=1+2@example.com"))
    body = b"".join(alice_client.get(reverse("tokens:import_template")).streaming_content)
    lines = body.decode().lstrip("\ufeff").splitlines()
    assert "'=1+2@example.com,200000,0" in lines
    assert not [line for line in lines if line.startswith("=")]


def test_too_many_rows_are_refused(alice_client, cast, settings):
    settings.IMPORT_MAX_ROWS = 5
    text = "email,max_inference_tokens\n" + "".join(f"u{n}@example.com,1M\n" for n in range(6))
    response = preview(alice_client, text)
    assert response.status_code == 422
    assert "more than 5 rows" in response.content.decode()


def test_the_upload_still_needs_its_csrf_token(alice, cast):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(URL, {"file": upload(FILE)}, headers=HX)
    assert response.status_code == 403
    assert not PendingEdit.objects.exists()


def test_under_htmx_the_preview_answers_its_form_which_keeps_the_chosen_file(alice_client, cast):
    # The form is its own htmx target (no hx-target to a region inside it); the file input
    # is preserved across the swap so Apply posts the same file again.
    response = preview(alice_client, FILE)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<form id="import-form"') and "hx-target" not in html
    assert re.search(r'<input id="import-file"[^>]* hx-preserve="true"', html)
    assert "Will change (2)" in html


def test_without_htmx_the_preview_is_the_whole_page(alice_client, cast):
    response = alice_client.post(URL, {"file": upload(FILE)})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>" in html and "Will change (2)" in html


def test_the_page_offers_the_form_to_admins_and_a_note_to_auditors(
    alice_client, client, org_a, cast
):
    html = alice_client.get(URL).content.decode()
    assert 'type="file"' in html and "Download the template (CSV)" in html
    auditor = MembershipFactory(organization=org_a, role="auditor").user
    viewer = Client()
    viewer.force_login(auditor)
    page = viewer.get(URL).content.decode()
    assert "importing is for admins" in page and 'type="file"' not in page


def test_the_template_lists_the_organizations_members_with_their_maxima(alice_client, cast):
    set_max(cast["bob"], 750_000)
    response = alice_client.get(reverse("tokens:import_template"))
    body = b"".join(response.streaming_content).decode()
    assert response["Content-Disposition"].startswith('attachment; filename="acme-agency-')
    lines = body.lstrip("\ufeff").splitlines()
    assert lines[0] == "email,max_inference_tokens,max_embedding_tokens"
    assert "bob@example.com,750000,0" in lines
    assert not [line for line in lines if "dave@" in line or "carol@" in line]


def test_the_template_round_trips_into_a_preview_with_no_changes(alice_client, cast):
    body = b"".join(alice_client.get(reverse("tokens:import_template")).streaming_content)
    response = alice_client.post(URL, {"file": upload(body, "template.csv")}, headers=HX)
    assert "0 will change, 3 unchanged" in response.content.decode()


def test_the_preview_costs_a_fixed_number_of_queries(
    alice_client, org_a, cast, django_assert_max_num_queries
):
    users = [MembershipFactory(organization=org_a).user for _ in range(60)]
    text = "email,max_inference_tokens\n" + "".join(f"{u.email},300k\n" for u in users)
    with django_assert_max_num_queries(16):
        response = preview(alice_client, text)
    assert "60 will change" in response.content.decode()


def test_without_htmx_applying_redirects_to_the_table_with_the_message(alice_client, cast):
    data = {"file": upload(FILE), "step": "apply", "previewed": digest(FILE)}
    response = alice_client.post(URL, data, follow=True)
    assert response.redirect_chain[-1][0] == reverse("tokens:users")
    assert "Imported limits.csv: 3 pending changes" in response.content.decode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("a\n" * 1_000_000, "more than 20,000 rows"),  # 2 MB: under the size cap
        ("a@b.org,1\n" * 1_000_000, "The file is too large (9.5 MB): at most 4 MB."),
    ],
)
def test_a_million_rows_answer_a_message_not_a_hang(alice_client, cast, body, message):
    response = preview(alice_client, "email,max_inference_tokens\n" + body)
    assert response.status_code == 422
    assert message in response.content.decode()
