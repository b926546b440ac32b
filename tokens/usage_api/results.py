"""What a usage report is once validated, and what recording it answers: plain data."""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

# One encoder (json.dumps with an option builds a new one each call): a fingerprint a report.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


@dataclass(frozen=True)
class UsageRequest:
    """A validated usage report: see `protocol.parse_usage`."""

    email: str
    kind: str
    tokens: int
    model: str

    @property
    def fingerprint(self) -> str:
        """Hash of what the request asks, to tell a retry from a reused idempotency key."""
        body = _COMPACT.encode([self.email, self.kind, self.tokens, self.model]).encode()
        return hashlib.sha256(body).hexdigest()


@dataclass
class Balance:
    kind: str
    max: int
    used: int

    @property
    def remaining(self) -> int:
        return max(self.max - self.used, 0)

    def as_dict(self) -> dict:
        return {"max": self.max, "used": self.used, "remaining": self.remaining}


@dataclass
class UsageResult:
    event_id: int
    request: UsageRequest
    month: dt.date
    balance: Balance
    replayed: bool = False
    user_id: int | None = field(default=None, repr=False)
    # How many of the organization's policy marks (alert thresholds, auto-increase trigger)
    # the usage has reached; None when not known, and the policy hook decides.
    marks_reached: int | None = field(default=None, repr=False)

    @property
    def policy_may_act(self) -> bool:
        return self.marks_reached is None or self.marks_reached > 0

    def as_dict(self) -> dict:
        return {
            "event_id": self.event_id,
            "user": self.request.email,
            "kind": self.request.kind,
            "tokens": self.request.tokens,
            "model": self.request.model,
            # Not f"{month:%Y-%m}": strftime costs more than the rest of the answer's dict.
            "month": f"{self.month.year:04d}-{self.month.month:02d}",
            **self.balance.as_dict(),
            "replayed": self.replayed,
        }
