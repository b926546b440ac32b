"""The admin API's bodies: what django-ninja validates and documents."""

import datetime as dt
import uuid
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import AfterValidator

from asksage_admin.lib.amounts import MAX_TOKENS
from asksage_admin.lib.inputs import text_problem


def _storable(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(f"the text {problem}")
    return value


# Text the database can store: no NUL, no unpaired surrogate (a 400, never a 500).
Text = Annotated[str, AfterValidator(_storable)]

Kind = Literal["inference", "embedding"]
# Strict in bodies: JSON's true is not the number 1.
Amount = Field(ge=0, le=MAX_TOKENS, strict=True)


class PerKind(Schema):
    inference: int
    embedding: int


class UserOut(Schema):
    id: int
    email: str
    name: str
    role: str
    is_paid: bool
    is_banned: bool
    limits: PerKind = Field(description="Monthly max per kind.")
    used: PerKind = Field(description="Used this UTC month, in this organization.")


class UserPage(Schema):
    items: list[UserOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")


class LimitChangeIn(Schema):
    user: int = Field(ge=1, le=2**63 - 1, strict=True, description="The user's id.")
    expected: int = Amount
    new: int = Amount


class LimitsIn(Schema):
    kind: Kind = "inference"
    changes: list[LimitChangeIn] = Field(
        min_length=1,
        max_length=5000,
        description=(
            "Each user's max as last read (`expected`, like If-Match) and the max to set. "
            "All or nothing: a stale `expected`, a value under the floor or a total over the "
            "pool refuses the whole call."
        ),
    )


class ChangeOut(Schema):
    user: int
    old: int
    new: int


class BatchOut(Schema):
    batch_id: uuid.UUID | None = Field(description="Undo it with POST /limits/batches/{id}/undo.")
    kind: Kind
    changed: int
    changes: list[ChangeOut]


class TokenRequestOut(Schema):
    id: int
    user: int
    email: str
    kind: Kind
    amount: int
    reason: str
    status: str
    granted: int | None
    note: str
    created_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: str


class TokenRequestPage(Schema):
    items: list[TokenRequestOut]
    next_cursor: str | None


class ApproveIn(Schema):
    amount: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKENS,
        strict=True,
        description="Grant less than asked; default: all.",
    )
    note: Text = Field(default="", max_length=500)


class DenyIn(Schema):
    note: Text = Field(min_length=1, max_length=500, description="Why: the member reads it.")
