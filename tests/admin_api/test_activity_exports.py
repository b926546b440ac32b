"""The admin API's activity log and exports: the panel's selectors and builders, the key as
the export's actor."""

import csv
import io

import pytest

from audit.models import AuditLog
from audit.services import audit_record

pytestmark = pytest.mark.django_db


def test_the_activity_log_pages_newest_first_and_filters(api, reader, org_a, alice, bob):
    for i in range(5):
        audit_record(action="user.banned", organization=org_a, actor=alice, target_user=bob, n=i)
    audit_record(action="user.paid", organization=org_a, actor=alice, target_user=bob)
    seen, cursor = [], None
    while True:
        page = api.get("/activity", reader, limit=2, **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.content
        seen += [row["id"] for row in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    ids = list(AuditLog.objects.filter(organization=org_a).values_list("id", flat=True))
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    paid = api.get("/activity", reader, action="user.paid").json()["items"]
    assert [row["action"] for row in paid] == ["user.paid"]
    assert paid[0]["actor"] == "alice@example.com" and paid[0]["target_user"] == "bob@example.com"


def test_an_unknown_action_filter_is_refused_in_words(api, reader, alice):
    response = api.get("/activity", reader, action="nope.nothing")
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_it_hides_other_organizations_activity(api, reader, alice, carol, org_b):
    audit_record(action="user.paid", organization=org_b, actor=carol, target_user=carol)
    emails = {row["actor"] for row in api.get("/activity", reader).json()["items"]}
    assert "carol@example.com" not in emails


def test_an_export_streams_the_users_csv_and_is_audited_with_the_key(api, reader, alice, bob):
    response = api.get("/exports/users", reader)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    emails = {row[1] for row in rows[1:]} | {row[0] for row in rows[1:]}
    assert "bob@example.com" in emails
    log = AuditLog.objects.get(action="export.csv")
    assert log.actor is None and log.actor_label.startswith("API key") and log.new_value == "users"


def test_an_export_with_a_bad_period_is_refused_in_words(api, reader, alice):
    response = api.get("/exports/usage-events", reader, range="custom", start="2026-01-02")
    assert response.status_code == 400
    assert "both" in response.json()["detail"]
