"""What a usage report is once validated, and what recording it answers: plain data."""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field


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
        body = json.dumps(
            [self.email, self.kind, self.tokens, self.model], separators=(",", ":")
        ).encode()
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
            "month": f"{self.month:%Y-%m}",
            **self.balance.as_dict(),
            "replayed": self.replayed,
        }
