"""POST /api/v1/usage and GET /api/v1/users/<email>/balance: behaviour and error codes."""

import json
import uuid
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.urls import reverse

from accounts.models import Organization
from asksage_admin.lib.months import current_month
from audit.models import AuditLog
from tests.factories import MembershipFactory, MonthlyUsageFactory, set_max, used
from tokens.models import DailyUsage, MonthlyUsage, UsageEvent
from tokens.services import api_keys as api_key_services
from tokens.services import auto_increase as auto_increase_services
from tokens.usage_api import keys, recording
from tokens.usage_api.protocol import MAX_BODY_BYTES

# Pinned mid-month: a report and the reading of "this month" (`used`) must not fall on two
# sides of a month's end.
pytestmark = pytest.mark.usefixtures("mid_month")

URL = "/api/v1/usage"
MAX_TOKENS = 2**53 - 1
NO_KEY = ""  # idempotency_key=NO_KEY: send no Idempotency-Key header at all


@pytest.fixture
def key_a(alice, org_a):
    """An API key of org A (its secret)."""
    return api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway")[1]


@pytest.fixture
def key_b(carol, org_b):
    return api_key_services.api_key_create(actor=carol, org=org_b, name="Birds gateway")[1]


@pytest.fixture
def post(client):
    def send(key, body, idempotency_key=None, raw=None, **headers):
        """A report; with a fresh Idempotency-Key unless one is given (a gateway sends one
        per usage: the API requires it), or none at all with NO_KEY."""
        if key is not None:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        if idempotency_key is None:
            idempotency_key = uuid.uuid4().hex
        if idempotency_key != NO_KEY:
            headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
        data = raw if raw is not None else json.dumps(body)
        return client.post(URL, data=data, content_type="application/json", **headers)

    return send


def body(user="bob@example.com", kind="inference", tokens=1_000, model="gpt-4o", **extra):
    return {"user": user, "kind": kind, "tokens": tokens, "model": model, **extra}


def nothing_recorded() -> bool:
    return (
        not UsageEvent.objects.exists()
        and not DailyUsage.objects.exists()
        and not MonthlyUsage.objects.filter(used__gt=0).exists()
    )


# ---------------------------------------------------------------- recording


def test_it_records_usage_and_answers_the_balance(post, key_a, bob):
    response = post(key_a, body(tokens=1_500), idempotency_key="req-1")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["max"] == 200_000 and data["used"] == 1_500 and data["remaining"] == 198_500
    assert data["kind"] == "inference" and data["user"] == "bob@example.com"
    assert data["replayed"] is False
    assert used(bob) == 1_500
    event = UsageEvent.objects.get()
    assert (event.user, event.tokens, event.model, event.idempotency_key) == (
        bob,
        1_500,
        "gpt-4o",
        "req-1",
    )
    assert data["event_id"] == event.pk


def test_the_first_usage_of_the_month_creates_one_monthly_row(post, key_a, bob):
    assert not MonthlyUsage.objects.exists()
    post(key_a, body(tokens=10))
    post(key_a, body(tokens=20))
    row = MonthlyUsage.objects.get(user=bob)
    assert (row.kind, row.month, row.used) == ("inference", current_month(), 30)


def test_it_adds_to_the_daily_rollup_per_model(post, key_a, bob):
    post(key_a, body(tokens=10, model="gpt-4o"))
    post(key_a, body(tokens=20, model="gpt-4o"))
    post(key_a, body(tokens=5, model="claude"))
    rollup = {row.model: (row.tokens, row.events) for row in DailyUsage.objects.filter(user=bob)}
    assert rollup == {"gpt-4o": (30, 2), "claude": (5, 1)}


def test_it_counts_embedding_tokens_against_the_embedding_max(post, key_a, bob):
    bob.membership.max_embedding_tokens = 50_000
    bob.membership.save()
    response = post(key_a, body(kind="embedding", tokens=40_000))
    assert response.status_code == 200
    assert response.json()["remaining"] == 10_000
    assert used(bob, "embedding") == 40_000 and used(bob, "inference") == 0


def test_the_email_is_matched_case_insensitively(post, key_a, bob):
    response = post(key_a, body(user="  Bob@Example.COM "))
    assert response.status_code == 200
    assert used(bob) == 1_000


def test_usage_up_to_exactly_the_max_is_accepted(post, key_a, bob, bob_usage):
    response = post(key_a, body(tokens=20_000))
    assert response.status_code == 200
    assert response.json()["remaining"] == 0


def test_it_refuses_usage_over_the_max_and_says_what_remains(post, key_a, bob, bob_usage):
    response = post(key_a, body(tokens=20_001), idempotency_key="over")
    assert response.status_code == 402
    data = response.json()
    assert data["error"] == "over_limit"
    assert data["remaining"] == 20_000 and data["max"] == 200_000 and data["used"] == 180_000
    assert data["requested"] == 20_001
    assert "20,000 remaining" in data["detail"]
    assert used(bob) == 180_000
    assert not UsageEvent.objects.exists() and not DailyUsage.objects.exists()


def test_a_first_usage_larger_than_the_max_is_refused(post, key_a, bob):
    response = post(key_a, body(tokens=200_001))
    assert response.status_code == 402
    assert response.json()["remaining"] == 200_000
    assert used(bob) == 0 and not UsageEvent.objects.exists()


def test_a_user_over_a_lowered_max_has_nothing_remaining(post, key_a, bob, bob_usage):
    bob.membership.max_inference_tokens = 100_000
    bob.membership.save()
    response = post(key_a, body(tokens=1))
    assert response.status_code == 402
    assert response.json()["remaining"] == 0


# ---------------------------------------------------------------- idempotency


def test_a_retry_with_the_same_idempotency_key_counts_once(post, key_a, bob):
    first = post(key_a, body(tokens=700), idempotency_key="abc")
    again = post(key_a, body(tokens=700), idempotency_key="abc")
    assert first.status_code == again.status_code == 200
    assert again.json()["event_id"] == first.json()["event_id"]
    assert again.json()["replayed"] is True and again["Idempotent-Replayed"] == "true"
    assert again.json()["used"] == 700
    assert used(bob) == 700
    assert UsageEvent.objects.count() == 1
    assert DailyUsage.objects.get().events == 1


def test_a_retry_is_answered_even_when_the_user_is_now_over_the_max(post, key_a, bob):
    post(key_a, body(tokens=150_000), idempotency_key="big")
    post(key_a, body(tokens=50_000), idempotency_key="rest")
    again = post(key_a, body(tokens=150_000), idempotency_key="big")
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert used(bob) == 200_000


def test_a_retry_answers_the_balance_the_first_answer_gave(post, key_a, bob):
    first = post(key_a, body(tokens=150_000), idempotency_key="big").json()
    post(key_a, body(tokens=30_000), idempotency_key="later")
    again = post(key_a, body(tokens=150_000), idempotency_key="big").json()
    assert (again["max"], again["used"], again["remaining"]) == (200_000, 150_000, 50_000)
    assert {k: v for k, v in again.items() if k != "replayed"} == {
        k: v for k, v in first.items() if k != "replayed"
    }


def test_a_retry_of_a_recorded_usage_is_answered_after_the_user_is_banned(post, key_a, bob):
    post(key_a, body(tokens=10), idempotency_key="k1")
    bob.is_banned = True
    bob.save()
    assert post(key_a, body(tokens=10), idempotency_key="k1").status_code == 200
    assert post(key_a, body(tokens=10), idempotency_key="k2").status_code == 403
    assert used(bob) == 10


def test_an_idempotency_key_reused_with_another_body_is_a_conflict(post, key_a, bob):
    post(key_a, body(tokens=700), idempotency_key="abc")
    response = post(key_a, body(tokens=701), idempotency_key="abc")
    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_key_reused"
    assert used(bob) == 700 and UsageEvent.objects.count() == 1


def test_the_same_body_with_other_spacing_is_still_a_retry(post, key_a, bob):
    post(key_a, body(tokens=5), idempotency_key="x")
    raw = '{ "model": "gpt-4o", "tokens": 5, "kind": "inference", "user": "BOB@example.com" }'
    assert post(key_a, None, idempotency_key="x", raw=raw).status_code == 200
    assert used(bob) == 5


def test_a_report_without_an_idempotency_key_is_refused_and_counts_nothing(post, key_a, bob):
    # Was test_requests_without_an_idempotency_key_each_count: a keyless report was counted,
    # so a gateway's retry counted twice. The key is now required.
    for header in (NO_KEY, "   "):
        response = post(key_a, body(tokens=5), idempotency_key=header)
        assert response.status_code == 400
        assert response.json()["error"] == "missing_idempotency_key"
        assert "Idempotency-Key" in response.json()["detail"]
    assert nothing_recorded()


def test_distinct_idempotency_keys_each_count(post, key_a, bob):
    post(key_a, body(tokens=5), idempotency_key="one")
    post(key_a, body(tokens=5), idempotency_key="two")
    assert used(bob) == 10 and UsageEvent.objects.count() == 2


def test_idempotency_keys_are_per_organization(post, key_a, key_b, bob, dave):
    assert post(key_a, body(tokens=5), idempotency_key="shared").status_code == 200
    response = post(key_b, body(user="dave@example.com", tokens=6), idempotency_key="shared")
    assert response.status_code == 200 and response.json()["replayed"] is False
    assert used(bob) == 5 and used(dave) == 6


def test_a_refused_request_can_be_retried_with_its_key_once_allowed(post, key_a, bob, bob_usage):
    assert post(key_a, body(tokens=30_000), idempotency_key="later").status_code == 402
    bob.membership.max_inference_tokens = 300_000
    bob.membership.save()
    assert post(key_a, body(tokens=30_000), idempotency_key="later").status_code == 200
    assert used(bob) == 210_000


@pytest.mark.parametrize("key", ["x" * 201, "bad\x01key"])
def test_an_invalid_idempotency_key_is_refused(post, key_a, bob, key):
    response = post(key_a, body(), idempotency_key=key)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_idempotency_key"
    assert nothing_recorded()


# ---------------------------------------------------------------- who may use


def test_a_banned_users_usage_is_refused(post, key_a, bob):
    bob.is_banned = True
    bob.save()
    response = post(key_a, body())
    assert response.status_code == 403 and response.json()["error"] == "user_banned"
    assert nothing_recorded()


def test_a_paid_off_users_usage_is_refused(post, key_a, bob):
    bob.is_paid = False
    bob.save()
    response = post(key_a, body())
    assert response.status_code == 403 and response.json()["error"] == "user_not_paid"
    assert nothing_recorded()


def test_unknown_users_and_other_organizations_users_get_the_same_404(post, key_a, dave):
    unknown = post(key_a, body(user="nobody@example.com"))
    outsider = post(key_a, body(user="dave@example.com"))
    assert unknown.status_code == outsider.status_code == 404
    assert unknown.json() == outsider.json()
    assert unknown.json()["error"] == "user_not_found"
    assert nothing_recorded()


def test_a_registered_user_without_an_organization_is_not_found(post, key_a, bob):
    from tests.factories import UserFactory

    UserFactory(email="loner@example.com")
    assert post(key_a, body(user="loner@example.com")).status_code == 404


def test_a_key_of_org_b_cannot_record_for_org_a(post, key_b, bob, carol):
    response = post(key_b, body(user="bob@example.com"))
    assert response.status_code == 404
    assert nothing_recorded()


@pytest.mark.parametrize("status", [Organization.Status.SUSPENDED, Organization.Status.PENDING])
def test_keys_of_inactive_organizations_are_refused(post, key_a, bob, org_a, status):
    org_a.status = status
    org_a.save()
    response = post(key_a, body())
    assert response.status_code == 403
    assert response.json()["error"] == "organization_inactive"
    assert status in response.json()["detail"]
    assert nothing_recorded()


# ---------------------------------------------------------------- keys


def test_a_request_without_a_key_is_unauthorized(post, bob):
    response = post(None, body())
    assert response.status_code == 401
    assert response.json()["error"] == "missing_key"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert nothing_recorded()


@pytest.mark.parametrize("key", ["ask_not-a-real-key", "something-else", "ask_" + "x" * 200])
def test_an_unknown_key_is_unauthorized(post, key_a, bob, key):
    response = post(key, body())
    assert response.status_code == 401 and response.json()["error"] == "invalid_key"
    assert nothing_recorded()


def test_a_basic_auth_header_is_not_a_key(post, key_a, bob):
    response = post(None, body(), HTTP_AUTHORIZATION=f"Basic {key_a}")
    assert response.status_code == 401


def test_a_revoked_key_is_unauthorized(post, key_a, alice, org_a, bob):
    key = org_a.api_keys.get()
    api_key_services.api_key_revoke(actor=alice, org=org_a, key_id=key.pk)
    response = post(key_a, body())
    assert response.status_code == 401 and response.json()["error"] == "key_revoked"
    assert nothing_recorded()


def test_using_a_key_marks_when_it_was_last_used(post, key_a, org_a, bob):
    key = org_a.api_keys.get()
    assert key.last_used_at is None
    post(key_a, body())
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_last_used_is_written_at_most_once_a_minute(post, key_a, org_a, bob):
    post(key_a, body())
    first = org_a.api_keys.get().last_used_at
    post(key_a, body())
    assert org_a.api_keys.get().last_used_at == first


# ---------------------------------------------------------------- bad bodies


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"kind": "inference", "tokens": 5, "model": "m"}, "invalid_request"),  # no user
        ({"user": "bob@example.com", "tokens": 5, "model": "m"}, "invalid_request"),
        ({"user": "bob@example.com", "kind": "inference", "model": "m"}, "invalid_request"),
        ({"user": "bob@example.com", "kind": "inference", "tokens": 5}, "invalid_request"),
        (body(kind="training"), "unknown_kind"),
        (body(kind=None), "unknown_kind"),
        (body(tokens=True), "invalid_request"),
        (body(tokens=0), "invalid_request"),
        (body(tokens=-5), "invalid_request"),
        (body(tokens=MAX_TOKENS + 1), "invalid_request"),
        (body(tokens=1.5), "invalid_request"),
        (body(tokens=10.0), "invalid_request"),
        (body(tokens="100"), "invalid_request"),
        (body(tokens=None), "invalid_request"),
        (body(user=42), "invalid_request"),
        (body(user="not-an-email"), "invalid_request"),
        (body(model=""), "invalid_request"),
        (body(model="m" * 101), "invalid_request"),
        (body(model=["gpt"]), "invalid_request"),
        ([body()], "invalid_request"),
        ("a string", "invalid_request"),
        (None, "invalid_request"),
    ],
)
def test_bad_bodies_are_refused_and_change_nothing(post, key_a, bob, payload, error):
    response = post(key_a, payload, idempotency_key="bad")
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["error"] == error and data["detail"]
    assert nothing_recorded()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user", "bob\x00@example.com"),
        ("user", "bob@example.com\x00"),
        ("user", "bob\ud800@example.com"),
        ("user", "bob@example.com\udfff"),
        ("model", "gpt\x00-4o"),
        ("model", "gpt-4o\ud83d"),  # half of an emoji's surrogate pair
    ],
)
def test_a_nul_or_an_unpaired_surrogate_in_a_text_field_is_refused_with_400(
    post, key_a, bob, field, value
):
    # Was a 500 on PostgreSQL (it refuses NUL and cannot encode lone surrogates) and, for
    # NUL in `user`, a 404 or a recorded usage on SQLite: now the same 400 on both.
    response = post(key_a, body(**{field: value}))
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["error"] == "invalid_request"
    assert f"“{field}”" in data["detail"]
    assert nothing_recorded()


def test_a_nul_in_the_user_field_is_refused_with_400(post, key_a, bob):
    raw = '{"user": "bob\\u0000@example.com", "kind": "inference", "tokens": 5, "model": "m"}'
    response = post(key_a, None, raw=raw)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "detail": "“user” contains a NUL character.",
    }
    assert nothing_recorded()


@pytest.mark.parametrize(
    "raw", ["{not json", "", '{"tokens": NaN}', '{"tokens": Infinity}', b"\xff\xfe", "[" * 3000]
)
def test_malformed_json_is_refused_before_touching_the_database(
    post, key_a, bob, raw, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = post(key_a, None, raw=raw)
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


def test_the_largest_amount_is_a_valid_amount(post, key_a, bob):
    bob.membership.max_inference_tokens = MAX_TOKENS
    bob.membership.save()
    response = post(key_a, body(tokens=MAX_TOKENS))
    assert response.status_code == 200
    assert response.json()["remaining"] == 0


def test_a_huge_body_is_refused_before_touching_the_database(
    post, key_a, bob, django_assert_num_queries
):
    huge = json.dumps(body(model="m", padding="x" * 1_000_000))
    with django_assert_num_queries(0):
        response = post(key_a, None, raw=huge)
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def test_a_body_longer_than_its_declared_length_is_capped(client, key_a, bob):
    # A lying (or absent) Content-Length: the view reads at most the cap plus one byte.
    huge = json.dumps(body(padding="x" * (MAX_BODY_BYTES * 2))).encode()
    response = client.generic(
        "POST",
        URL,
        data=huge,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key_a}",
        HTTP_IDEMPOTENCY_KEY="capped",
        CONTENT_LENGTH="",
    )
    assert response.status_code in {400, 413}
    assert nothing_recorded()


def test_missing_key_is_answered_without_touching_the_database(
    post, bob, django_assert_num_queries
):
    with django_assert_num_queries(0):
        assert post(None, body()).status_code == 401


def test_a_malformed_key_is_refused_before_the_body_and_the_database(
    post, bob, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = post("not-a-key", None, raw="{}")
    assert response.status_code == 401 and response.json()["error"] == "invalid_key"


def test_details_are_readable_utf8(post, key_a, bob):
    response = post(key_a, body(kind="training"))
    assert "“kind”".encode() in response.content


def test_recording_a_usage_takes_a_bounded_number_of_queries(
    post, key_a, bob, django_assert_max_num_queries, monkeypatch
):
    # The policy's own queries are Token Distribution's: count ours.
    monkeypatch.setattr(
        auto_increase_services, "auto_increase_apply", lambda **kw: None, raising=False
    )
    post(key_a, body(tokens=1))  # creates the month's row, marks the key used
    # Key, locked member, event, conditional UPDATE, the member's lifetime total, the user's
    # and the organization's daily upserts (SQLite: one statement each; PostgreSQL: all in
    # one); plus the savepoint pair the test's own transaction turns BEGIN/COMMIT into.
    # SQLite also looks for a retry first and claims the key (UsageEventKey); PostgreSQL's
    # trigger claims it within the statement.
    with django_assert_max_num_queries(11 if connection.vendor == "sqlite" else 7):
        assert post(key_a, body(tokens=1), idempotency_key="q").status_code == 200


def test_other_methods_are_refused_as_json(client, key_a):
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {key_a}")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert response["Allow"] == "POST"


def test_unknown_api_urls_answer_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


# ---------------------------------------------------------------- database unavailable


def test_an_unavailable_database_answers_503_with_retry_after(post, key_a, bob):
    with mock.patch.object(
        recording, "_record", side_effect=OperationalError("connection refused")
    ):
        response = post(key_a, body())
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"] == "database_unavailable"
    assert nothing_recorded()


def test_a_database_down_during_authentication_also_answers_503(post, key_a, bob):
    # The path is chosen in usage_api.recording, the key is looked up in usage_api.keys: one
    # mock.
    with (
        mock.patch.object(keys, "connection") as connection,
        mock.patch.object(recording, "connection", connection),
    ):
        connection.cursor.side_effect = OperationalError("server closed the connection")
        response = post(key_a, body())
    assert response.status_code == 503 and response["Retry-After"]


# ---------------------------------------------------------------- auto-increase hook


def test_the_auto_increase_policy_runs_after_recording(post, key_a, bob, monkeypatch):
    calls = []
    monkeypatch.setattr(
        auto_increase_services,
        "auto_increase_apply",
        lambda *, user, kind: calls.append((user, kind, used(user, kind))) or None,
        raising=False,
    )
    assert post(key_a, body(tokens=170_000)).status_code == 200
    assert calls == [(bob, "inference", 170_000)]  # after the usage committed


def test_an_auto_increase_shows_in_the_next_answer_not_in_the_report_that_caused_it(
    client, post, key_a, bob, monkeypatch
):
    # The policy is a background task (issue 15): the report's answer is the usage as
    # recorded; what the task grants shows from the next answer on.
    def grant(*, user, kind):
        set_max(user, 300_000)
        return 300_000

    monkeypatch.setattr(auto_increase_services, "auto_increase_apply", grant, raising=False)
    data = post(key_a, body(tokens=170_000)).json()
    assert data["max"] == 200_000 and data["remaining"] == 30_000
    answer = client.get(balance_url(bob.email), HTTP_AUTHORIZATION=f"Bearer {key_a}").json()
    assert answer["inference"] == {"max": 300_000, "used": 170_000, "remaining": 130_000}


def test_a_failing_auto_increase_never_undoes_the_recorded_usage(post, key_a, bob, monkeypatch):
    def broken(*, user, kind):
        raise RuntimeError("policy bug")

    monkeypatch.setattr(auto_increase_services, "auto_increase_apply", broken, raising=False)
    response = post(key_a, body(tokens=190_000))
    assert response.status_code == 200
    assert response.json()["used"] == 190_000
    assert used(bob) == 190_000


def test_replays_and_refusals_do_not_run_the_auto_increase(post, key_a, bob, monkeypatch):
    calls = []
    monkeypatch.setattr(
        auto_increase_services, "auto_increase_apply", lambda **kw: calls.append(kw), raising=False
    )
    post(key_a, body(tokens=190_000), idempotency_key="once")
    post(key_a, body(tokens=190_000), idempotency_key="once")
    post(key_a, body(tokens=10**9))
    assert len(calls) == 1


def test_the_real_policy_runs_without_breaking_the_answer(post, key_a, bob):
    # Whatever auto_increase_apply does today, a usage at 95 % answers 200.
    response = post(key_a, body(tokens=190_000))
    assert response.status_code == 200
    assert used(bob) == 190_000


# ---------------------------------------------------------------- balance


def balance_url(email: str) -> str:
    return reverse("api:balance", args=[email])


def test_the_balance_answers_max_used_and_remaining_per_kind(client, key_a, bob, org_a):
    MonthlyUsageFactory(user=bob, organization=org_a, kind="inference", used=50_000)
    bob.membership.max_embedding_tokens = 10_000
    bob.membership.save()
    response = client.get(balance_url("bob@example.com"), HTTP_AUTHORIZATION=f"Bearer {key_a}")
    assert response.status_code == 200
    data = response.json()
    assert data["inference"] == {"max": 200_000, "used": 50_000, "remaining": 150_000}
    assert data["embedding"] == {"max": 10_000, "used": 0, "remaining": 10_000}
    assert data["month"] == f"{current_month():%Y-%m}"


def test_the_balance_ignores_last_months_usage(client, key_a, bob, org_a):
    from asksage_admin.lib.months import previous_month

    MonthlyUsageFactory(
        user=bob, organization=org_a, kind="inference", used=90_000, month=previous_month()
    )
    data = client.get(balance_url("bob@example.com"), HTTP_AUTHORIZATION=f"Bearer {key_a}").json()
    assert data["inference"]["used"] == 0


def test_the_balance_follows_recorded_usage(client, post, key_a, bob):
    post(key_a, body(tokens=1_234))
    data = client.get(balance_url("BOB@example.com"), HTTP_AUTHORIZATION=f"Bearer {key_a}").json()
    assert data["inference"]["remaining"] == 200_000 - 1_234


def test_a_key_of_org_b_cannot_read_org_a_balances(client, key_b, bob):
    response = client.get(balance_url("bob@example.com"), HTTP_AUTHORIZATION=f"Bearer {key_b}")
    unknown = client.get(balance_url("x@example.com"), HTTP_AUTHORIZATION=f"Bearer {key_b}")
    assert response.status_code == unknown.status_code == 404
    assert response.json() == unknown.json()


def test_the_balance_needs_a_key(client, bob):
    assert client.get(balance_url("bob@example.com")).status_code == 401


def test_the_balance_is_refused_to_a_suspended_organizations_key(client, key_a, bob, org_a):
    org_a.status = Organization.Status.SUSPENDED
    org_a.save()
    response = client.get(balance_url("bob@example.com"), HTTP_AUTHORIZATION=f"Bearer {key_a}")
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["a%00b@x.com", "bob%00@example.com", "x" * 255 + "@x.com"])
def test_a_balance_for_an_email_with_a_nul_or_over_254_characters_is_refused_with_400(
    client, key_a, bob, path
):
    # Was a 500 on PostgreSQL for the NUL.
    response = client.get(f"/api/v1/users/{path}/balance", HTTP_AUTHORIZATION=f"Bearer {key_a}")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request" and response.json()["detail"]


def test_the_balance_refuses_post(client, key_a, bob):
    response = client.post(balance_url("bob@example.com"), HTTP_AUTHORIZATION=f"Bearer {key_a}")
    assert response.status_code == 405


# ---------------------------------------------------------------- OpenAPI


def test_the_openapi_document_describes_both_endpoints(client):
    response = client.get(reverse("api:openapi"))
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert "post" in doc["paths"]["/usage"]
    assert "get" in doc["paths"]["/users/{email}/balance"]
    assert set(doc["paths"]["/usage"]["post"]["responses"]) >= {
        "200",
        "400",
        "401",
        "402",
        "403",
        "404",
        "409",
        "413",
        "503",
    }


def test_the_openapi_document_says_the_idempotency_key_is_required(client):
    post = client.get(reverse("api:openapi")).json()["paths"]["/usage"]["post"]
    (header,) = [p for p in post["parameters"] if p["name"] == "Idempotency-Key"]
    assert header["in"] == "header" and header["required"] is True
    assert "missing_idempotency_key" in post["responses"]["400"]["description"]


def test_usage_writes_no_audit_rows(post, key_a, bob):
    # The events are the audit of usage; an AuditLog row each would double the write cost.
    before = AuditLog.objects.count()
    post(key_a, body())
    assert AuditLog.objects.count() == before


def test_a_new_member_can_use_tokens_at_once(post, key_a, org_a):
    member = MembershipFactory(organization=org_a, user__email="new@example.com").user
    assert post(key_a, body(user="new@example.com", tokens=1)).status_code == 200
    assert used(member) == 1
