"""Verified checkpoints of the audit chains: the badge checks only what is new since the last check.

The Activity badge calls `checkpoint_verify_incremental`: it verifies the rows after the
chain's checkpoint, at most `BADGE_BUDGET` of them per call, and moves the checkpoint
forward when they are intact. A chain of a million rows costs the badge what the rows
written since the last view cost, never the whole walk; when more than the budget arrived
since, the badge says how far it got ("verified up to #N") and the next view (or
`verify_audit`) goes on from there.

`manage.py verify_audit` and the nightly task (`analytics.tasks`) walk whole chains through
`checkpoint_verify_full` and stay the authority: each walk resets the checkpoint to what it
found and records when it ran and what it found (`checkpoint_record_full`). A row altered
below the checkpoint is invisible to the badge's check by design; the full run finds it, and
from then on the badge shows that break until a later full run finds the chain intact.

Checkpoints are system bookkeeping, not a user's write, so they leave no audit row: one per
view would grow the very chain being checked. Tampering found by a full run is reported as
before (the command prints the broken row and exits 1; the nightly task logs an error) and
now also shown by the badge.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from audit.integrity import Verdict, verify, verify_all
from audit.models import AuditCheckpoint

# Rows one badge view verifies at most: 2,000 take ~30 ms on PostgreSQL (15 µs a row; up to
# 4x that on a loaded machine), so the page and a capped badge together stay well under the
# admin changelist at 1,000,000 rows (`benchmarks/activity_page.py`).
BADGE_BUDGET = 2000


@dataclass(frozen=True)
class Badge:
    """What the badge shows: this view's check, how far the chain is verified, the last full run."""

    verdict: Verdict
    verified_at: dt.datetime | None
    full_at: dt.datetime | None
    full_problem: str = ""

    @property
    def intact(self) -> bool:
        return self.verdict.intact and not self.full_problem

    @property
    def verified_seq(self) -> int:
        return self.verdict.last_seq

    @property
    def pending(self) -> int:
        return self.verdict.pending


def checkpoint_verify_incremental(*, key: str, budget: int = BADGE_BUDGET) -> Badge:
    """Verify `key`'s rows after its checkpoint (at most `budget`) and advance it if intact.

    A break leaves the checkpoint where it was. Runs outside any lock: the advance is one
    conditional UPDATE (`seq < new`), so concurrent viewers never move it backwards.
    """
    checkpoint = AuditCheckpoint.objects.filter(key=key).first()
    if checkpoint is None:
        checkpoint = AuditCheckpoint(key=key)
    verdict = verify(key, after_seq=checkpoint.seq, after_hash=checkpoint.hash, budget=budget)
    verified_at = checkpoint.verified_at
    if verdict.intact and verdict.last_seq > checkpoint.seq:
        verified_at = timezone.now()
        _advance(checkpoint, verdict, verified_at)
    return Badge(verdict, verified_at, checkpoint.full_at, checkpoint.full_problem)


def _advance(checkpoint: AuditCheckpoint, verdict: Verdict, now: dt.datetime) -> None:
    """Move the checkpoint to the verdict's last row, unless someone already moved it further."""
    if checkpoint._state.adding:
        # The first check of this chain: create the row (a concurrent viewer may have).
        AuditCheckpoint.objects.bulk_create(
            [AuditCheckpoint(key=checkpoint.key)], ignore_conflicts=True
        )
    AuditCheckpoint.objects.filter(key=checkpoint.key, seq__lt=verdict.last_seq).update(
        seq=verdict.last_seq,
        hash=verdict.last_hash,
        verified_at=now,
        kind=AuditCheckpoint.INCREMENTAL,
    )


@transaction.atomic
def checkpoint_record_full(*, verdict: Verdict) -> AuditCheckpoint:
    """Record a full walk of one chain: when it ran, what it found, how far the chain is intact.

    The checkpoint row is locked so an incremental advance waits for this write. An intact
    walk moves it to the walk's end unless an incremental check already went further (rows
    written while the walk ran); a broken one puts it back to the last row found intact,
    since nothing after the break can be called verified.
    """
    now = timezone.now()
    checkpoint, _ = AuditCheckpoint.objects.select_for_update().get_or_create(key=verdict.chain)
    if not verdict.intact or verdict.last_seq >= checkpoint.seq:
        checkpoint.seq, checkpoint.hash = verdict.last_seq, verdict.last_hash
        checkpoint.verified_at, checkpoint.kind = now, AuditCheckpoint.FULL
    checkpoint.full_at = now
    checkpoint.full_problem = "" if verdict.intact else f"{verdict.place}: {verdict.problem}"[:300]
    checkpoint.save()
    return checkpoint


def checkpoint_verify_full(*, keys: Sequence[str] | None = None) -> list[Verdict]:
    """Walk whole chains (`keys`, default every chain) and record each walk on its checkpoint:
    what `manage.py verify_audit` and the nightly task run."""
    verdicts = []
    for verdict in verify_all(keys):
        checkpoint_record_full(verdict=verdict)
        verdicts.append(verdict)
    return verdicts
