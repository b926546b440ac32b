"""The in-database half of tests/test_n_servers.py, run as `python -m tests.n_servers_probe
<step>` in a process of its own against the throwaway cluster (the test process's Django is
configured for the suite's database, not that one).

Steps: `set_up` (migrate, the cast, keys and signed-in sessions, printed as JSON),
`schedule` (what one more scheduler does: enqueue every periodic task), `figures` (waits
until the task queue is drained, then prints everything the test asserts, as JSON).
Also the email backend the workers use: Django's file backend, its directory from
NSERVERS_MAIL_DIR (the settings read no EMAIL_FILE_PATH), so another process can count what
was sent.
"""

import json
import os
import sys
import time
from collections import Counter, defaultdict

from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend

USAGE_USERS = [f"user{n}@example.com" for n in range(5)]
SMALL_USER = "small@example.com"  # a max of 3,000: most of its reports are over the limit
EDITED_USERS = [f"edited{n}@example.com" for n in range(6)]  # asking, and batch-edited
POOL = 4_000_000  # the limits reach it: some saves are refused for the pool
REQUESTED = 50_000
PERIODIC = ("reclaim_month_start", "auto_increase_sweep", "task_results_prune")


class EmailBackend(FileEmailBackend):
    def __init__(self, *args, **kwargs):
        kwargs["file_path"] = os.environ["NSERVERS_MAIL_DIR"]
        super().__init__(*args, **kwargs)


def set_up() -> dict:
    from django.core.management import call_command
    from django.test import Client

    from tests.factories import MembershipFactory, OrganizationFactory, PurchaseFactory
    from tokens.services import api_keys as api_key_services
    from tokens.services import requests as request_services

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    org = OrganizationFactory(name="Many Servers Agency", slug="many-servers")
    PurchaseFactory(organization=org, kind="inference", tokens_per_month=POOL)
    admins = [
        MembershipFactory(user__email=email, organization=org, role="admin").user
        for email in ("alice@example.com", "carol@example.com")
    ]
    for email in USAGE_USERS:
        MembershipFactory(user__email=email, organization=org, max_inference_tokens=300_000)
    MembershipFactory(user__email=SMALL_USER, organization=org, max_inference_tokens=3_000)
    edited = [MembershipFactory(user__email=e, organization=org).user for e in EDITED_USERS]
    requests = [
        request_services.token_request_create(
            user=user, kind="inference", amount=REQUESTED, reason="A bigger project"
        ).pk
        for user in edited
    ]
    key = api_key_services.api_key_create(actor=admins[0], org=org, name="Gateway")[1]
    sessions = []
    for admin in admins:
        client = Client()
        client.force_login(admin)
        sessions.append(client.cookies["sessionid"].value)
    return {
        "key": key,
        "sessions": sessions,
        "edited_ids": [u.pk for u in edited],
        "request_ids": requests,
    }


def schedule() -> dict:
    """One scheduler's enqueues for this period, as `manage.py crontask` makes them."""
    from tokens import tasks

    for name in PERIODIC:
        getattr(tasks, name).enqueue()
    tasks.email_retry_sweep.enqueue()
    return {"enqueued": len(PERIODIC) + 1}


def _drained(timeout: float = 90) -> float:
    """Seconds waited until no task is ready or running and no email is still to send."""
    from django_tasks_db.models import DBTaskResult

    from tokens.models import EmailDelivery

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        busy = DBTaskResult.objects.filter(status__in=["READY", "RUNNING"]).count()
        pending = EmailDelivery.objects.filter(status=EmailDelivery.Status.PENDING).count()
        if not busy and not pending:
            break
        time.sleep(0.25)
    return round(time.monotonic() - started, 2)


def _allocation_chains(org) -> dict:
    """Every limit change in audit order: each starts from the value the previous one left,
    and the last one left the value stored (no lost or doubled update)."""
    from accounts.models import Membership
    from audit.models import AuditLog

    last: dict[tuple[int, str], int] = {}
    broken = []
    rows = AuditLog.objects.filter(organization=org, action="allocation.changed").order_by("seq")
    for row in rows.values("target_user_id", "column", "old_value", "new_value", "seq"):
        cell = (row["target_user_id"], row["column"])
        if cell in last and last[cell] != int(row["old_value"]):
            broken.append(f"seq {row['seq']}: {row['old_value']} after {last[cell]}")
        last[cell] = int(row["new_value"])
    for (user_id, column), value in last.items():
        stored = getattr(Membership.objects.get(user_id=user_id), column)
        if stored != value:
            broken.append(f"user {user_id} {column}: stored {stored}, audited {value}")
    return {"changes": sum(1 for _ in rows), "broken": broken}


def figures() -> dict:
    from django.db.models import Count, Sum
    from django_tasks_db.models import DBTaskResult

    from accounts.models import Membership, Organization
    from audit.integrity import verify_all
    from audit.models import AuditLog
    from tokens.models import (
        AllocationBatch,
        EmailDelivery,
        MonthlyUsage,
        PeriodicRun,
        TokenRequest,
        UsageEvent,
    )
    from tokens.rollup import rollup_mismatches

    waited = _drained()
    verdicts = verify_all()
    org = Organization.objects.get(slug="many-servers")
    events = UsageEvent.objects.filter(organization=org)
    by_user_events = {
        row["user__email"]: [row["n"], row["tokens"]]
        for row in events.values("user__email").annotate(n=Count("pk"), tokens=Sum("tokens"))
    }
    used = defaultdict(int)
    for email, value in MonthlyUsage.objects.filter(organization=org).values_list(
        "user__email", "used"
    ):
        used[email] += value
    deliveries = list(EmailDelivery.objects.values("pk", "kind", "status", "attempts", "to"))
    actions = Counter(AuditLog.objects.filter(organization=org).values_list("action", flat=True))
    return {
        "waited_for_queue": waited,
        "event_ids": sorted(events.values_list("pk", flat=True)),
        "events_by_user": by_user_events,
        "used_by_user": dict(used),
        "periodic_runs": list(PeriodicRun.objects.values_list("job", "period", "status")),
        "deliveries": deliveries,
        "audit_actions": dict(actions),
        "audit_chains": [[v.chain, v.checked, str(v)] for v in verdicts],
        "audit_broken": [str(v) for v in verdicts if not v.intact],
        "rollup_mismatches": [str(m.key) for m in rollup_mismatches(organization_id=org.pk)],
        "allocation_chains": _allocation_chains(org),
        "batches_by_source": dict(
            Counter(
                AllocationBatch.objects.filter(organization=org).values_list("source", flat=True)
            )
        ),
        "requests": dict(
            Counter(TokenRequest.objects.filter(organization=org).values_list("status", flat=True))
        ),
        "allocated": Membership.objects.filter(organization=org).aggregate(
            total=Sum("max_inference_tokens")
        )["total"],
        "pool": POOL,
        "tasks": dict(
            Counter(
                f"{path.rsplit('.', 1)[1]} {status}"
                for path, status in DBTaskResult.objects.values_list("task_path", "status")
            )
        ),
        "tasks_by_worker": sorted(
            Counter(
                ids[-1] for ids in DBTaskResult.objects.values_list("worker_ids", flat=True) if ids
            ).values()
        ),
        "periodic_answers": sorted(
            str(answer)
            for answer in DBTaskResult.objects.filter(
                task_path__in=[f"tokens.tasks.{name}" for name in PERIODIC]
            ).values_list("return_value", flat=True)
        ),
    }


if __name__ == "__main__":
    import django

    django.setup()
    step = {"set_up": set_up, "schedule": schedule, "figures": figures}[sys.argv[1]]
    print(json.dumps(step(), default=str))
