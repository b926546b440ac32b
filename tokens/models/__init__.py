"""The tokens app's models, one module per capability; imported from here as before.

kinds        token kinds, the 2,000,000-token block, allocation columns (the shared core)
pools        purchases (monthly pools) and purchase requests to sales
usage        usage events, monthly and daily usage, the organization's daily rollup
allocations  pending edits and saved allocation batches
policies     presets, allocation policies, per-user overrides
requests     members' token requests
api_keys     API keys and their scopes
invitations  invitations to join an organization (hashed, single-use links)
alerts       alerts already sent this month
notifications  the in-app notifications (the bell)
background   the email outbox and the ledger of periodic runs (tasks)
catalogue    the platform's models (sales) and the models each organization enables
"""

from .alerts import AlertSent
from .allocations import AllocationBatch, PendingEdit
from .api_keys import ApiKey, ApiKeyScope
from .background import EmailDelivery, PeriodicRun
from .catalogue import EVERYONE, ModelGrant, PlatformModel
from .invitations import Invitation
from .kinds import BLOCK, COLUMN_LABELS, KIND_HELP, MAX_COLUMNS, TokenKind, column_for_kind
from .notifications import Notification
from .policies import (
    DYNAMIC_MIN_STEP,
    DYNAMIC_TIERS,
    PRESETS,
    AllocationPolicy,
    MemberOverride,
    Preset,
    StepMode,
)
from .pools import Purchase, PurchaseRequest
from .requests import TokenRequest
from .usage import (
    ORG_DAILY_SHARDS,
    DailyUsage,
    MonthlyUsage,
    OrgDailyUsage,
    UsageEvent,
    UsageEventKey,
)

__all__ = [
    "BLOCK",
    "COLUMN_LABELS",
    "DYNAMIC_MIN_STEP",
    "DYNAMIC_TIERS",
    "EVERYONE",
    "KIND_HELP",
    "MAX_COLUMNS",
    "PRESETS",
    "AlertSent",
    "AllocationBatch",
    "AllocationPolicy",
    "ApiKey",
    "ApiKeyScope",
    "DailyUsage",
    "EmailDelivery",
    "Invitation",
    "MemberOverride",
    "ModelGrant",
    "PeriodicRun",
    "MonthlyUsage",
    "Notification",
    "OrgDailyUsage",
    "ORG_DAILY_SHARDS",
    "PendingEdit",
    "PlatformModel",
    "Preset",
    "Purchase",
    "PurchaseRequest",
    "StepMode",
    "TokenKind",
    "TokenRequest",
    "UsageEvent",
    "UsageEventKey",
    "column_for_kind",
]
