"""Verified checkpoints: the badge's check starts where the last one ended; the full run decides."""

import datetime as dt
import threading

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from analytics.tasks import verify_audit_nightly
from audit import chain, checkpoints, integrity
from audit.checkpoints import checkpoint_record_full, checkpoint_verify_incremental
from audit.integrity import verify
from audit.models import GENESIS, AuditChain, AuditCheckpoint, AuditLog
from audit.services import audit_record
from tests.concurrency import run_together
from tests.factories import MembershipFactory, OrganizationFactory


@pytest.fixture
def org(db):
    return OrganizationFactory()


@pytest.fixture
def write(org):
    def write(count: int = 1) -> list[AuditLog]:
        return [
            audit_record(action="allocation.changed", organization=org, new=n) for n in range(count)
        ]

    return write


def key_of(org) -> str:
    return chain.chain_key(org.pk)


def raw(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=AuditLog._meta.db_table), params)


def checkpoint_of(org) -> AuditCheckpoint:
    return AuditCheckpoint.objects.get(key=key_of(org))


def test_the_first_check_verifies_the_whole_chain_and_sets_the_checkpoint(org, write):
    rows = write(4)

    badge = checkpoint_verify_incremental(key=key_of(org))

    assert badge.intact and badge.verdict.checked == 4
    checkpoint = checkpoint_of(org)
    assert (checkpoint.seq, checkpoint.hash, checkpoint.kind) == (4, rows[-1].hash, "incremental")
    assert checkpoint.verified_at is not None and checkpoint.full_at is None


def test_a_later_check_verifies_only_the_rows_after_the_checkpoint(org, write):
    write(5)
    checkpoint_verify_incremental(key=key_of(org))
    newest = write(3)[-1]

    badge = checkpoint_verify_incremental(key=key_of(org))

    assert badge.intact and badge.verdict.checked == 3 and badge.verified_seq == 8
    assert (checkpoint_of(org).seq, checkpoint_of(org).hash) == (8, newest.hash)


def test_a_check_with_nothing_new_reads_no_row_and_keeps_the_checkpoint(org, write):
    write(3)
    checkpoint_verify_incremental(key=key_of(org))
    before = checkpoint_of(org)

    badge = checkpoint_verify_incremental(key=key_of(org))

    assert badge.intact and badge.verdict.checked == 0 and badge.verified_seq == 3
    assert badge.verified_at == before.verified_at
    assert checkpoint_of(org).verified_at == before.verified_at


def test_an_empty_chain_is_intact_and_makes_no_checkpoint(org):
    badge = checkpoint_verify_incremental(key=key_of(org))

    assert badge.intact and badge.verified_seq == 0
    assert not AuditCheckpoint.objects.exists()


def test_tampering_after_the_checkpoint_is_caught_and_the_checkpoint_stays(org, write):
    write(3)
    checkpoint_verify_incremental(key=key_of(org))
    edited = write(2)[0]
    raw("UPDATE {table} SET new_value = %s WHERE id = %s", ["9000000", edited.pk])

    badge = checkpoint_verify_incremental(key=key_of(org))

    assert not badge.intact
    assert (badge.verdict.row_id, badge.verdict.seq) == (edited.pk, 4)
    assert badge.verdict.problem == "its content was altered"
    assert checkpoint_of(org).seq == 3


def test_a_row_removed_after_the_checkpoint_is_caught(org, write):
    write(2)
    checkpoint_verify_incremental(key=key_of(org))
    removed, _after = write(2)
    raw("DELETE FROM {table} WHERE id = %s", [removed.pk])

    badge = checkpoint_verify_incremental(key=key_of(org))

    assert badge.verdict.problem == "row #3 is missing (removed?)"
    assert checkpoint_of(org).seq == 2


def test_the_last_rows_removed_after_the_checkpoint_are_caught(org, write):
    write(2)
    checkpoint_verify_incremental(key=key_of(org))
    last = write(1)[0]
    raw("DELETE FROM {table} WHERE id = %s", [last.pk])

    badge = checkpoint_verify_incremental(key=key_of(org))

    assert badge.verdict.problem == "the last 1 row(s) were removed"


def test_a_head_rewound_below_the_checkpoint_is_caught(org, write):
    rows = write(4)
    checkpoint_verify_incremental(key=key_of(org))
    raw("DELETE FROM {table} WHERE seq > 2 AND chain = %s", [key_of(org)])
    AuditChain.objects.filter(key=key_of(org)).update(last_seq=2, last_hash=rows[1].hash)

    badge = checkpoint_verify_incremental(key=key_of(org))

    assert badge.verdict.problem == "the chain ends before the verified checkpoint"
    assert verify(key_of(org)).intact  # the full walk cannot tell: the head was rewritten too


def test_a_row_tampered_below_the_checkpoint_escapes_the_badge_but_not_the_full_run(
    org, write, capsys
):
    rows = write(5)
    checkpoint_verify_incremental(key=key_of(org))
    raw("UPDATE {table} SET new_value = %s WHERE id = %s", ["9000000", rows[1].pk])

    # The badge trusts what it verified before: by design it does not re-read row #2.
    assert checkpoint_verify_incremental(key=key_of(org)).intact

    with pytest.raises(CommandError):
        call_command("verify_audit", "--org", org.slug)

    assert f"broken at row {rows[1].pk} (#2): its content was altered" in capsys.readouterr().out
    checkpoint = checkpoint_of(org)
    assert (checkpoint.seq, checkpoint.hash, checkpoint.kind) == (1, rows[0].hash, "full")
    assert checkpoint.full_problem == f"entry {rows[1].pk} (#2): its content was altered"
    badge = checkpoint_verify_incremental(key=key_of(org))
    assert not badge.intact  # from now on the badge shows the break too


def test_a_clean_full_run_clears_a_break_it_found_before(org, write):
    rows = write(3)
    raw("UPDATE {table} SET new_value = %s WHERE id = %s", ["x", rows[1].pk])
    with pytest.raises(CommandError):
        call_command("verify_audit", "--org", org.slug)
    raw("UPDATE {table} SET new_value = %s WHERE id = %s", [rows[1].new_value, rows[1].pk])

    call_command("verify_audit", "--org", org.slug)

    checkpoint = checkpoint_of(org)
    assert (checkpoint.seq, checkpoint.full_problem) == (3, "")
    assert checkpoint_verify_incremental(key=key_of(org)).intact


def test_the_full_run_refreshes_every_checkpoint_and_records_when_it_ran(org, write):
    newest = write(3)[-1]
    audit_record(action="auth.login_failed", email="x@example.com")

    call_command("verify_audit")

    checkpoint = checkpoint_of(org)
    assert (checkpoint.seq, checkpoint.hash, checkpoint.kind) == (3, newest.hash, "full")
    assert checkpoint.full_at is not None and checkpoint.full_at == checkpoint.verified_at
    assert AuditCheckpoint.objects.get(key=chain.GLOBAL).seq == 1


def test_the_full_run_never_pulls_back_a_checkpoint_that_went_further(org, write):
    write(2)
    walked = verify(key_of(org))  # the full walk ends at #2 ...
    newest = write(2)[-1]
    checkpoint_verify_incremental(key=key_of(org))  # ... while a viewer verifies up to #4

    checkpoint_record_full(verdict=walked)

    checkpoint = checkpoint_of(org)
    assert (checkpoint.seq, checkpoint.hash) == (4, newest.hash)
    assert checkpoint.full_at is not None


def test_a_check_verifies_at_most_its_budget_and_says_how_far_it_got(org, write):
    rows = write(7)

    first = checkpoint_verify_incremental(key=key_of(org), budget=3)
    second = checkpoint_verify_incremental(key=key_of(org), budget=3)
    third = checkpoint_verify_incremental(key=key_of(org), budget=3)

    assert (first.verified_seq, first.verdict.checked, first.pending) == (3, 3, 4)
    assert (second.verified_seq, second.pending) == (6, 1)
    assert (third.verified_seq, third.verdict.checked, third.pending) == (7, 1, 0)
    assert checkpoint_of(org).hash == rows[-1].hash


def test_a_stale_check_never_moves_the_checkpoint_backwards(org, write):
    write(2)
    stale = verify(key_of(org), budget=1)  # verified #1 only
    write(1)
    checkpoint_verify_incremental(key=key_of(org))  # verified up to #3
    fresh = checkpoint_of(org)

    checkpoints._advance(AuditCheckpoint(key=key_of(org)), stale, fresh.verified_at)

    assert (checkpoint_of(org).seq, checkpoint_of(org).hash) == (3, fresh.hash)


def test_checking_one_chain_never_touches_another(org, write):
    write(2)
    other = OrganizationFactory()
    audit_record(action="allocation.changed", organization=other)

    checkpoint_verify_incremental(key=key_of(org))

    assert list(AuditCheckpoint.objects.values_list("key", flat=True)) == [key_of(org)]


def test_checkpoint_writes_leave_no_audit_row(org, write):
    write(2)

    checkpoint_verify_incremental(key=key_of(org))
    call_command("verify_audit")

    assert AuditLog.objects.count() == 2
    assert AuditChain.objects.get(key=key_of(org)).last_seq == 2


@pytest.mark.django_db(transaction=True)
def test_two_viewers_at_once_leave_the_furthest_checkpoint(monkeypatch):
    org = OrganizationFactory()
    MembershipFactory(organization=org)
    key = key_of(org)
    rows = [audit_record(action="allocation.changed", organization=org, new=n) for n in range(6)]
    slow_verified, fast_done = threading.Event(), threading.Event()
    advance = checkpoints._advance

    def paused_advance(*args, **kwargs):
        # The slow viewer has verified #1-#2; it moves the checkpoint only after the fast
        # viewer has verified #1-#6 and moved it: a stale advance arriving last.
        if threading.current_thread().name == "work-0":
            slow_verified.set()
            fast_done.wait(timeout=10)
        return advance(*args, **kwargs)

    monkeypatch.setattr(checkpoints, "_advance", paused_advance)

    def slow():
        return checkpoint_verify_incremental(key=key, budget=2).verified_seq

    def fast():
        slow_verified.wait(timeout=10)
        try:
            return checkpoint_verify_incremental(key=key, budget=100).verified_seq
        finally:
            fast_done.set()

    outcomes = run_together(slow, fast)

    assert outcomes == [("ok", 2), ("ok", 6)]
    checkpoint = AuditCheckpoint.objects.get(key=key)
    assert (checkpoint.seq, checkpoint.hash) == (6, rows[-1].hash)
    assert checkpoint_verify_incremental(key=key).intact


@pytest.mark.django_db(transaction=True)
def test_many_viewers_at_once_agree_and_keep_a_consistent_checkpoint():
    org = OrganizationFactory()
    key = key_of(org)
    rows = [audit_record(action="allocation.changed", organization=org, new=n) for n in range(30)]

    outcomes = run_together(
        *[
            lambda b=budget: checkpoint_verify_incremental(key=key, budget=b).intact
            for budget in (5, 10, 30, 30)
        ]
    )

    assert outcomes == [("ok", True)] * 4
    checkpoint = AuditCheckpoint.objects.get(key=key)
    assert (checkpoint.seq, checkpoint.hash) == (30, rows[-1].hash)
    assert checkpoint.hash != GENESIS


def test_rows_appended_while_the_full_run_walks_are_not_taken_for_tampering(
    org, write, monkeypatch
):
    write(3)
    rows_of = integrity._rows

    def append_then_walk(queryset, chunk_size):
        write(1)  # a writer appends after the walk read the head
        return rows_of(queryset, chunk_size)

    monkeypatch.setattr(integrity, "_rows", append_then_walk)

    call_command("verify_audit", "--org", org.slug)

    checkpoint = checkpoint_of(org)
    assert (checkpoint.seq, checkpoint.full_problem) == (4, "")


def test_rows_past_a_head_that_stays_behind_are_still_reported(org, write):
    first, _second = write(2)
    AuditChain.objects.filter(key=key_of(org)).update(last_seq=1, last_hash=first.hash)

    verdict = verify(key_of(org))

    assert verdict.problem == "the chain does not end where its head says"


def test_the_nightly_verification_records_its_walk_on_the_checkpoints(org, write):
    rows = write(3)
    night = dt.datetime(2027, 3, 10, 2, 30, tzinfo=dt.UTC)

    with time_machine.travel(night, tick=False):
        assert verify_audit_nightly.enqueue().return_value.endswith("chain(s) intact.")
    raw("UPDATE {table} SET new_value = %s WHERE id = %s", ["x", rows[0].pk])
    with time_machine.travel(night + dt.timedelta(days=1), tick=False):
        assert "broken" in verify_audit_nightly.enqueue().return_value

    checkpoint = checkpoint_of(org)
    assert checkpoint.full_at == night + dt.timedelta(days=1)
    assert (checkpoint.seq, checkpoint.kind) == (0, "full")
    assert checkpoint.full_problem == f"entry {rows[0].pk} (#1): its content was altered"
    assert not checkpoint_verify_incremental(key=key_of(org)).intact
