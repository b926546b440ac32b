"""Checking the audit trail's hash chains: the first row of a chain that does not check out.

`verify(key)` walks a whole chain (the authority, run by `manage.py verify_audit`);
`verify(key, after_seq=…, after_hash=…, budget=…)` checks only the rows after a checkpoint
(`audit.checkpoints`), at most `budget` of them, so a page that shows the verdict does work
in proportion to the rows written since the last check, whatever the chain's length.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from audit.chain import GENESIS, HASHED, values_content
from audit.models import AuditChain, AuditLog


@dataclass(frozen=True)
class Verdict:
    """`checked` rows were walked; `last_seq`/`last_hash` name the last row found intact
    (0/GENESIS: none); `pending` rows past it were left unchecked (a budgeted check)."""

    chain: str
    checked: int
    row_id: int | None = None
    seq: int | None = None
    problem: str = ""
    last_seq: int = 0
    last_hash: str = GENESIS
    pending: int = 0

    @property
    def intact(self) -> bool:
        return not self.problem

    @property
    def place(self) -> str:
        """Where it broke, in the panel's words: "entry 12 (#2)", or "#7" for a missing row."""
        return f"entry {self.row_id} (#{self.seq})" if self.row_id else f"#{self.seq}"

    def __str__(self) -> str:
        if self.intact:
            return f"{self.chain}: intact ({self.checked:,} rows)"
        where = f"row {self.row_id} (#{self.seq})" if self.row_id else f"#{self.seq}"
        return f"{self.chain}: broken at {where}: {self.problem}"


def _walk(key: str, rows, expected_seq: int, expected_prev: str) -> tuple[Verdict | None, int, str]:
    """Check `rows` (in seq order) from `expected_seq`; (the break or None, last seq, last hash)."""
    checked = 0

    def broken(pk, seq, problem):
        return Verdict(key, checked, pk, seq, problem, expected_seq - 1, expected_prev)

    for pk, stored, *values in rows:
        seq, prev_hash = values[1], values[2]
        if seq != expected_seq:
            problem = (
                f"row #{expected_seq} is missing (removed?)"
                if seq > expected_seq
                else "a row with a repeated position was inserted"
            )
            return broken(pk, seq, problem), 0, ""
        if prev_hash != expected_prev:
            return broken(pk, seq, "it does not link to the previous row"), 0, ""
        if hashlib.sha256(values_content(values).encode()).hexdigest() != stored:
            return broken(pk, seq, "its content was altered"), 0, ""
        expected_seq, expected_prev, checked = expected_seq + 1, stored, checked + 1
    return None, expected_seq - 1, expected_prev


def _rows(queryset, chunk_size: int):
    return queryset.order_by("seq").values_list("id", "hash", *HASHED).iterator(chunk_size)


def verify(
    key: str,
    chunk_size: int = 2000,
    *,
    after_seq: int = 0,
    after_hash: str = GENESIS,
    budget: int | None = None,
) -> Verdict:
    """Walk one chain in order; the first row whose link or content does not check out.

    Rows a writer appends while the walk runs are checked like the others, not taken for
    rows inserted out of turn (the head is read again before saying so).

    With `after_seq`/`budget` only rows after `after_seq` up to the head read first are
    checked (rows committed after that read wait for the next check, so a concurrent writer
    never looks like tampering); the row at `after_seq` itself is trusted, not re-read.
    """
    head = AuditChain.objects.filter(key=key).first()
    if after_seq or budget is not None:
        return _verify_since(key, head, after_seq, after_hash, budget, chunk_size)
    verdict, last, last_hash = _walk(
        key, _rows(AuditLog.objects.filter(chain=key), chunk_size), 1, GENESIS
    )
    if verdict is not None:
        return verdict
    done = {"last_seq": last, "last_hash": last_hash}
    if last > (head.last_seq if head else 0):
        # Rows past the head read before the walk: a writer may have appended them (and
        # moved the head) meanwhile. Read the head again; only rows past it are out of turn.
        head = AuditChain.objects.filter(key=key).first()
        if head is not None and head.last_seq > last:
            return Verdict(key, last, pending=head.last_seq - last, **done)
    if head is None and last:
        return Verdict(key, last, None, last, "the chain's head record is missing", **done)
    if head is not None and (head.last_seq != last or head.last_hash != last_hash):
        if head.last_seq > last:
            problem = f"the last {head.last_seq - last} row(s) were removed"
        else:
            problem = "the chain does not end where its head says"
        return Verdict(key, last, None, head.last_seq, problem, **done)
    return Verdict(key, last, **done)


def _verify_since(
    key: str, head, after_seq: int, after_hash: str, budget: int | None, chunk_size: int
) -> Verdict:
    if head is None:
        problem = "the chain's head record is missing" if after_seq else ""
        return Verdict(
            key, 0, None, after_seq if after_seq else None, problem, after_seq, after_hash
        )
    if head.last_seq < after_seq:
        return Verdict(
            key,
            0,
            None,
            head.last_seq,
            "the chain ends before the verified checkpoint",
            after_seq,
            after_hash,
        )
    end = head.last_seq if budget is None else min(head.last_seq, after_seq + budget)
    rows = AuditLog.objects.filter(chain=key, seq__gt=after_seq, seq__lte=end)
    verdict, last, last_hash = _walk(key, _rows(rows, chunk_size), after_seq + 1, after_hash)
    if verdict is not None:
        return verdict
    checked = last - after_seq
    done = {"last_seq": last, "last_hash": last_hash}
    if last < end:
        problem = (
            f"the last {head.last_seq - last} row(s) were removed"
            if end == head.last_seq
            else f"row #{last + 1} is missing (removed?)"
        )
        return Verdict(key, checked, None, last + 1, problem, **done)
    if end == head.last_seq and head.last_hash != last_hash:
        return Verdict(
            key, checked, None, end, "the chain does not end where its head says", **done
        )
    return Verdict(key, checked, pending=head.last_seq - end, **done)


def verify_all(keys: Sequence[str] | None = None) -> list[Verdict]:
    if keys is None:
        keys = sorted(
            set(AuditChain.objects.values_list("key", flat=True))
            | set(AuditLog.objects.order_by().values_list("chain", flat=True).distinct())
        )
    return [verify(key) for key in keys]
