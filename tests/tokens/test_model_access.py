"""Model catalogue and model access (issue 20): who may use which model, enforced by the usage
API's Django door on SQLite and PostgreSQL (the fast path: test_model_access_fastpath.py)."""

import json
import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Organization
from asksage_admin.lib.errors import DomainError
from audit.models import AuditLog
from tests.factories import MembershipFactory, PlatformModelFactory, used
from tokens.models import ApiKey, ModelGrant, PlatformModel, UsageEvent
from tokens.services import api_keys as api_key_services
from tokens.services import model_access as services
from tokens.usage_api import postgres
from tokens.usage_api.results import UsageRequest

URL = "/api/v1/usage"
# Pinned mid-month: a report and the reading of "this month" (`used`) must not fall on two
# sides of a month's end.
pytestmark = pytest.mark.usefixtures("mid_month")


@pytest.fixture
def catalogue(db):
    return [
        PlatformModelFactory(name="gpt-4o", display_name="GPT-4o"),
        PlatformModelFactory(name="o1", display_name="o1 (expensive)"),
        PlatformModelFactory(
            name="text-embedding-3-large", display_name="Embedding Large", kind="embedding"
        ),
    ]


@pytest.fixture
def key_a(alice, org_a):
    return api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway")[1]


@pytest.fixture
def report(client, key_a):
    def send(model="gpt-4o", user="bob@example.com", tokens=1_000, idem=None):
        return client.post(
            URL,
            json.dumps({"user": user, "kind": "inference", "tokens": tokens, "model": model}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key_a}",
            HTTP_IDEMPOTENCY_KEY=idem or uuid.uuid4().hex,
        )

    return send


def restricted(org) -> bool:
    return Organization.objects.get(pk=org.pk).models_restricted


# ---------------------------------------------------------------- the default


def test_an_organization_starts_unrestricted_and_any_model_is_counted(report, bob, catalogue):
    assert report("gpt-4o").status_code == 200
    assert report("not-in-the-catalogue").status_code == 200
    assert used(bob) == 2_000 and not ModelGrant.objects.exists()


def grant_lookups(report_sql_runs) -> int:
    """How many times the usage recording looked up a grant: on SQLite the queries naming
    the grants' table; on PostgreSQL the loops of the statement's grant lookup (EXPLAIN
    ANALYZE of the one statement, rolled back)."""
    if connection.vendor != "postgresql":
        with CaptureQueriesContext(connection) as captured:
            report_sql_runs()
        return sum("modelgrant" in q["sql"] for q in captured.captured_queries)
    report_sql_runs()  # the month's row exists, as for the report EXPLAIN then runs
    usage = UsageRequest(email="bob@example.com", kind="inference", tokens=10, model="gpt-4o")
    key = ApiKey.objects.get()
    params = postgres.params(
        [postgres.Report(key.key_hash, usage, uuid.uuid4().hex)], timezone.now()
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + postgres.ONE_SQL, params)
        plan = cursor.fetchone()[0]
        transaction.set_rollback(True)
    plan = plan if isinstance(plan, list) else json.loads(plan)

    def loops(node) -> int:
        here = (
            node.get("Actual Loops", 0) if node.get("Relation Name") == "tokens_modelgrant" else 0
        )
        return here + sum(loops(child) for child in node.get("Plans", []))

    return loops(plan[0]["Plan"])


def test_an_unrestricted_report_reads_no_grant(report, alice, org_a, bob, catalogue):
    report("gpt-4o")  # the month's row exists: the next reports take the usual path
    assert grant_lookups(lambda: report("gpt-4o")) == 0
    services.model_access_set(actor=alice, org=org_a, model_name="o1", mode="off")
    assert grant_lookups(lambda: report("gpt-4o")) == 1


# ---------------------------------------------------------------- the Django door


def test_a_disabled_model_is_refused_with_403_and_counts_nothing(
    report, alice, bob, org_a, catalogue
):
    services.model_access_set(actor=alice, org=org_a, model_name="o1", mode="off")
    answer = report("o1")
    assert answer.status_code == 403
    assert answer.json()["error"] == "model_not_allowed"
    assert "o1" in answer.json()["detail"]
    assert used(bob) == 0 and not UsageEvent.objects.exists()
    # The first narrowing kept every other active model for everyone.
    assert restricted(org_a)
    assert report("gpt-4o").status_code == 200 and used(bob) == 1_000


def test_a_name_outside_the_catalogue_is_refused_once_the_organization_restricts(
    report, alice, bob, org_a, catalogue
):
    services.model_access_set(actor=alice, org=org_a, model_name="o1", mode="off")
    answer = report("mystery-model")
    assert (answer.status_code, answer.json()["error"]) == (403, "model_not_allowed")


def test_a_model_for_some_roles_is_refused_to_the_others(report, alice, bob, org_a, catalogue):
    services.model_access_set(
        actor=alice, org=org_a, model_name="o1", mode="roles", roles=["admin"]
    )
    assert report("o1", user="bob@example.com").status_code == 403
    assert report("o1", user="alice@example.com").status_code == 200
    assert used(bob) == 0 and used(alice) == 1_000


def test_a_model_for_some_users_is_refused_to_everyone_else(report, alice, bob, org_a, catalogue):
    services.model_access_set(
        actor=alice, org=org_a, model_name="o1", mode="users", emails=["BOB@example.com"]
    )
    assert report("o1", user="bob@example.com").status_code == 200
    assert report("o1", user="alice@example.com").status_code == 403
    assert used(bob) == 1_000 and used(alice) == 0


def test_a_retry_of_a_report_counted_before_the_model_was_disabled_answers_the_first_answer(
    report, alice, bob, org_a, catalogue
):
    first = report("o1", idem="retry-1").json()
    services.model_access_set(actor=alice, org=org_a, model_name="o1", mode="off")
    again = report("o1", idem="retry-1")
    assert again.status_code == 200 and again.json() == {**first, "replayed": True}
    assert used(bob) == 1_000


def test_a_banned_user_is_refused_as_banned_before_the_model_is_checked(
    report, alice, bob, org_a, catalogue
):
    services.model_access_set(actor=alice, org=org_a, model_name="o1", mode="off")
    bob.is_banned = True
    bob.save()
    assert report("o1").json()["error"] == "user_banned"


def test_allowing_every_model_again_accepts_what_was_refused(report, alice, bob, org_a, catalogue):
    services.model_access_set(actor=alice, org=org_a, model_name="o1", mode="off")
    assert services.model_access_unrestrict(actor=alice, org=org_a) == 2
    assert not restricted(org_a) and not ModelGrant.objects.exists()
    assert report("o1").status_code == 200
    assert report("mystery-model").status_code == 200


def test_another_organization_keeps_every_model(client, alice, org_a, carol, org_b, catalogue):
    MembershipFactory(organization=org_b, user__email="dan@example.com")
    services.model_access_set(actor=alice, org=org_a, model_name="o1", mode="off")
    key_b = api_key_services.api_key_create(actor=carol, org=org_b, name="Birds")[1]
    answer = client.post(
        URL,
        json.dumps({"user": "dan@example.com", "kind": "inference", "tokens": 5, "model": "o1"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key_b}",
        HTTP_IDEMPOTENCY_KEY="b-1",
    )
    assert answer.status_code == 200
    assert not restricted(org_b)


# ---------------------------------------------------------------- the balance


def test_the_balance_lists_every_active_model_while_unrestricted(client, key_a, bob, catalogue):
    PlatformModelFactory(name="retired", active=False)
    answer = client.get(
        "/api/v1/users/bob@example.com/balance", HTTP_AUTHORIZATION=f"Bearer {key_a}"
    ).json()
    assert answer["models_restricted"] is False
    assert [m["name"] for m in answer["models"]] == ["text-embedding-3-large", "gpt-4o", "o1"]
    assert answer["models"][1] == {"name": "gpt-4o", "display_name": "GPT-4o", "kind": "inference"}


def test_the_balance_lists_only_the_models_the_user_may_use(
    client, key_a, alice, bob, org_a, catalogue
):
    services.model_access_set(
        actor=alice, org=org_a, model_name="o1", mode="roles", roles=["admin"]
    )
    services.model_access_set(
        actor=alice, org=org_a, model_name="gpt-4o", mode="users", emails=["bob@example.com"]
    )

    def names(email):
        answer = client.get(
            f"/api/v1/users/{email}/balance", HTTP_AUTHORIZATION=f"Bearer {key_a}"
        ).json()
        assert answer["models_restricted"] is True
        return [m["name"] for m in answer["models"]]

    assert names("bob@example.com") == ["text-embedding-3-large", "gpt-4o"]
    assert names("alice@example.com") == ["text-embedding-3-large", "o1"]


def test_the_api_description_documents_the_new_refusal(client):
    spec = client.get("/api/v1/openapi.json").json()
    refusals = json.dumps(spec["paths"]["/usage"]["post"]["responses"]["403"])
    assert "model_not_allowed" in refusals
    assert "models" in spec["components"]["schemas"]["UserBalance"]["properties"]


# ---------------------------------------------------------------- the service's rules


def test_each_change_is_audited_old_to_new(alice, bob, org_a, catalogue):
    services.model_access_set(
        actor=alice,
        org=org_a,
        model_name="o1",
        mode="users",
        emails=["bob@example.com"],
        ip="10.0.0.1",
    )
    services.model_access_set(actor=alice, org=org_a, model_name="o1", mode="off")
    rows = list(
        AuditLog.objects.filter(organization=org_a, action__startswith="model.").order_by("pk")
    )
    assert [(r.action, r.old_value, r.new_value) for r in rows] == [
        ("model.restricted", "every model", "enabled models only"),
        ("model.access", "Everyone", "bob@example.com"),
        ("model.access", "bob@example.com", "Nobody"),
    ]
    assert rows[1].details["model"] == "o1" and rows[1].ip == "10.0.0.1"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"mode": "roles", "roles": []}, "at least one role"),
        ({"mode": "users", "emails": []}, "at least one member"),
        ({"mode": "users", "emails": ["carol@example.com"]}, "Not a member"),
        ({"mode": "everyone", "model_name": "nope"}, "not in the platform's catalogue"),
        ({"mode": "everyone", "model_name": "retired"}, "not in the platform's catalogue"),
    ],
)
def test_a_refused_change_says_why_and_changes_nothing(
    alice, org_a, carol, catalogue, kwargs, words
):
    PlatformModelFactory(name="retired", active=False)
    kwargs = {"model_name": "o1", **kwargs}
    with pytest.raises(DomainError) as refused:
        services.model_access_set(actor=alice, org=org_a, **kwargs)
    assert words in " ".join(refused.value.messages)
    assert not restricted(org_a) and not ModelGrant.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="model.").exists()


def test_retiring_a_model_withdraws_it_where_it_was_enabled(
    alice, bob, sam, org_a, report, catalogue
):
    services.model_access_set(
        actor=alice, org=org_a, model_name="gpt-4o", mode="roles", roles=["member"]
    )
    model = PlatformModel.objects.get(name="o1")
    model.active = False
    services.platform_model_save(actor=sam, model=model, created=False)
    assert not ModelGrant.objects.filter(model_id="o1").exists()
    assert report("o1").json()["error"] == "model_not_allowed"
    withdrawn = AuditLog.objects.get(organization=org_a, action="model.access", details__model="o1")
    assert "retired" in withdrawn.new_value
    assert AuditLog.objects.filter(organization=None, action="model.catalogue").exists()


def test_a_catalogue_model_keeps_its_name(sam, catalogue):
    model = PlatformModel.objects.get(name="o1")
    model.name = "o1-renamed"
    with pytest.raises(DomainError):
        services.platform_model_save(actor=sam, model=model, created=False)
