"""Checking the audit trail's hash chains: the first row of a chain that does not check out."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from audit.chain import GENESIS, HASHED, _content
from audit.models import AuditChain, AuditLog


@dataclass(frozen=True)
class Verdict:
    chain: str
    checked: int
    row_id: int | None = None
    seq: int | None = None
    problem: str = ""

    @property
    def intact(self) -> bool:
        return not self.problem

    def __str__(self) -> str:
        if self.intact:
            return f"{self.chain}: intact ({self.checked:,} rows)"
        where = f"row {self.row_id} (#{self.seq})" if self.row_id else f"#{self.seq}"
        return f"{self.chain}: broken at {where}: {self.problem}"


def verify(key: str, chunk_size: int = 2000) -> Verdict:
    """Walk one chain in order; the first row whose link or content does not check out."""
    head = AuditChain.objects.filter(key=key).first()
    expected_seq, expected_prev, checked = 1, GENESIS, 0
    rows = (
        AuditLog.objects.filter(chain=key)
        .order_by("seq")
        .values_list("id", "hash", *HASHED)
        .iterator(chunk_size=chunk_size)
    )
    for pk, stored, *values in rows:
        seq, prev_hash = values[1], values[2]
        if seq != expected_seq:
            problem = (
                f"row #{expected_seq} is missing (removed?)"
                if seq > expected_seq
                else "a row with a repeated position was inserted"
            )
            return Verdict(key, checked, pk, seq, problem)
        if prev_hash != expected_prev:
            return Verdict(key, checked, pk, seq, "it does not link to the previous row")
        if hashlib.sha256(_content(values).encode()).hexdigest() != stored:
            return Verdict(key, checked, pk, seq, "its content was altered")
        expected_seq, expected_prev, checked = expected_seq + 1, stored, checked + 1
    last = expected_seq - 1
    if head is None and last:
        return Verdict(key, checked, None, last, "the chain's head record is missing")
    if head is not None and (head.last_seq != last or head.last_hash != expected_prev):
        if head.last_seq > last:
            problem = f"the last {head.last_seq - last} row(s) were removed"
        else:
            problem = "the chain does not end where its head says"
        return Verdict(key, checked, None, head.last_seq, problem)
    return Verdict(key, checked)


def verify_all(keys: Sequence[str] | None = None) -> list[Verdict]:
    if keys is None:
        keys = sorted(
            set(AuditChain.objects.values_list("key", flat=True))
            | set(AuditLog.objects.order_by().values_list("chain", flat=True).distinct())
        )
    return [verify(key) for key in keys]
