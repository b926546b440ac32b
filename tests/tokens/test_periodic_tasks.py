"""Periodic jobs and the policy after usage, as tasks: each runs once per period however many
schedulers enqueue it, and each write still leaves its audit row.

The immediate backend (tests/settings.py) runs a task as it is enqueued, so "enqueued twice"
here is "run twice", the worst case for idempotence.
"""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import Membership
from analytics.tasks import verify_audit_nightly
from audit.models import AuditLog
from audit.services import audit_record
from tests.factories import MonthlyUsageFactory, max_of
from tokens import periodic
from tokens.models import AllocationBatch, PeriodicRun
from tokens.services import policy as policy_services
from tokens.tasks import (
    auto_increase_sweep,
    reclaim_month_start,
    task_results_prune,
    usage_policy_after_report,
)

MONTH_START = dt.datetime(2027, 3, 1, 0, 5, tzinfo=dt.UTC)
NIGHT = dt.datetime(2027, 3, 10, 2, 30, tzinfo=dt.UTC)


@pytest.fixture
def idle_bob(org_a, bob):
    """Bob holds 1,000,000 tokens and has used none for 60 days."""
    Membership.objects.filter(user=bob).update(
        max_inference_tokens=1_000_000, joined_at=MONTH_START - dt.timedelta(days=60)
    )
    return bob


def test_month_start_reclamation_enqueued_twice_for_one_month_runs_once(org_a, idle_bob):
    with time_machine.travel(MONTH_START, tick=False):
        first = reclaim_month_start.enqueue()
        second = reclaim_month_start.enqueue()  # a second scheduler, same month

    assert first.status == second.status == TaskResultStatus.SUCCESSFUL
    assert first.return_value.startswith("Reclaimed 800,000 tokens")
    assert second.return_value == "reclaim_idle 2027-03: ran already"
    assert max_of(idle_bob) == 200_000
    assert AllocationBatch.objects.filter(source="reclaim").count() == 1
    audited = AuditLog.objects.filter(action="allocation.changed", target_user=idle_bob)
    assert audited.count() == 1 and audited.get().actor is None
    run = PeriodicRun.objects.get()
    assert (run.job, run.period, run.status) == ("reclaim_idle", "2027-03", "done")


def test_the_next_month_reclaims_again(org_a, idle_bob):
    with time_machine.travel(MONTH_START, tick=False) as clock:
        reclaim_month_start.enqueue()
        Membership.objects.filter(user=idle_bob).update(max_inference_tokens=1_000_000)
        clock.move_to(dt.datetime(2027, 4, 1, 0, 5, tzinfo=dt.UTC))
        reclaim_month_start.enqueue()
    assert max_of(idle_bob) == 200_000
    assert list(PeriodicRun.objects.order_by("period").values_list("period", flat=True)) == [
        "2027-03",
        "2027-04",
    ]


def test_a_run_counts_for_the_period_it_was_enqueued_in():
    class Late:
        task_result = type("R", (), {"enqueued_at": dt.datetime(2027, 3, 31, 23, 59, 59)})

    with time_machine.travel(dt.datetime(2027, 4, 1, 0, 0, 3, tzinfo=dt.UTC)):
        when = periodic.scheduled_at(Late())
    assert when.month == 3


def test_a_failing_periodic_run_is_recorded_failed_and_not_rerun(db):
    def work():
        raise RuntimeError("database said no")

    with pytest.raises(RuntimeError):
        periodic.run_once(job="demo", period="2027-03", work=work)
    run = PeriodicRun.objects.get()
    assert run.status == "failed" and "database said no" in run.summary
    assert periodic.run_once(job="demo", period="2027-03", work=lambda: "x") == (
        "demo 2027-03: ran already"
    )


def test_the_hourly_auto_increase_sweep_runs_once_an_hour(org_a, alice, bob):
    # This hour of the session's clock: the org's purchases start this month.
    this_hour = timezone.now().replace(minute=30, second=0, microsecond=0)
    with time_machine.travel(this_hour, tick=False):
        policy_services.policy_apply(admin=alice, org=org_a, preset="conservative")  # 90 %
        MonthlyUsageFactory(user=bob, organization=org_a, used=180_000)
        assert auto_increase_sweep.enqueue().return_value == "1 increase(s) applied."
        assert auto_increase_sweep.enqueue().return_value.endswith("ran already")
    assert max_of(bob) == 250_000
    assert (
        AuditLog.objects.filter(
            action="allocation.changed", target_user=bob, column="max_inference_tokens"
        ).count()
        == 1
    )


def test_the_policy_after_a_usage_report_run_twice_raises_once_and_audits_once(
    org_a, alice, bob, django_capture_on_commit_callbacks
):
    policy_services.policy_apply(admin=alice, org=org_a, preset="conservative")
    MonthlyUsageFactory(user=bob, organization=org_a, used=180_000)

    with django_capture_on_commit_callbacks(execute=True):
        first = usage_policy_after_report.enqueue(user_id=bob.pk, kind="inference")
        second = usage_policy_after_report.enqueue(user_id=bob.pk, kind="inference")

    assert (first.return_value, second.return_value) == (250_000, None)  # the cooldown
    assert max_of(bob) == 250_000
    assert (
        AuditLog.objects.filter(
            action="allocation.changed", target_user=bob, column="max_inference_tokens"
        ).count()
        == 1
    )
    assert AllocationBatch.objects.filter(source="policy").count() == 1


def test_the_nightly_audit_verification_records_its_verdict_once_a_night(org_a, alice):
    audit_record(action="user.paid", organization=org_a, actor=alice)
    edited = audit_record(action="user.banned", organization=org_a, actor=alice)
    with time_machine.travel(NIGHT, tick=False):
        assert verify_audit_nightly.enqueue().return_value.endswith("chain(s) intact.")
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {AuditLog._meta.db_table} SET new_value = %s WHERE id = %s",
                ["tampered", edited.pk],
            )
        assert verify_audit_nightly.enqueue().return_value.endswith("ran already")
    with time_machine.travel(NIGHT + dt.timedelta(days=1), tick=False):
        verdict = verify_audit_nightly.enqueue().return_value
    assert verdict.startswith("1 of ") and "broken" in verdict
    runs = PeriodicRun.objects.filter(job="verify_audit").order_by("period")
    assert [(r.period, r.status) for r in runs] == [("2027-03-10", "done"), ("2027-03-11", "done")]
    assert "broken" in runs.last().summary


def test_finished_task_results_are_pruned_nightly_after_the_kept_days(db, settings):
    settings.TASK_RESULTS_KEEP_DAYS = 14

    def result(status, finished_days_ago):
        finished = NIGHT - dt.timedelta(days=finished_days_ago) if finished_days_ago else None
        return DBTaskResult.objects.create(
            task_path="tokens.mail.send_email",
            args_kwargs={"args": [], "kwargs": {"delivery_id": 1}},
            status=status,
            finished_at=finished,
            backend_name="default",
        )

    old_ok, old_failed = result("SUCCESSFUL", 15), result("FAILED", 20)
    recent, waiting = result("SUCCESSFUL", 13), result("READY", None)
    with time_machine.travel(NIGHT, tick=False):
        assert task_results_prune.enqueue().return_value.startswith("Deleted 2 ")
    assert set(DBTaskResult.objects.values_list("pk", flat=True)) == {recent.pk, waiting.pk}
    assert not DBTaskResult.objects.filter(pk__in=[old_ok.pk, old_failed.pk]).exists()
