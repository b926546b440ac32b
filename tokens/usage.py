"""The usage API's writes and reads: authenticating API keys, recording usage against limits,
balances.

Recording one usage is one short transaction that

1. authenticates the key and finds the member in the key's organization;
2. locks the user's membership row (so an admin lowering the max waits for us, and we wait
   for them: no usage is accepted over a max after the save that lowered it commits);
3. adds the tokens with one conditional UPDATE: `used = used + n WHERE … AND used + n <= max`
   (the database enforces the limit: no read-modify-write race), creating the month's row
   with INSERT … ON CONFLICT DO NOTHING when it is the first usage of the month;
4. inserts the usage event: its unique (organization, idempotency key) index refuses a
   concurrent retry, and the retry is answered from the recorded event;
5. adds the tokens to the day's rollup with an upsert.

On PostgreSQL all of it is one statement (`tokens.recording`), shared with the batched fast
path (`tokens.fastpath`); on SQLite it runs statement by statement in an IMMEDIATE
transaction. After the commit, the auto-increase policy runs (`tokens.recording.usage_record`
chooses the path and runs it).

The usage events are the audit of usage: no AuditLog row per event (it would double the
write cost of the hot path). Key creation and revocation (`tokens.services.api_keys`) are
audited.
"""

import datetime as dt
import functools
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection, transaction
from django.dispatch import receiver
from django.utils import timezone

from accounts.models import Membership, Organization, User
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.inputs import text_problem
from asksage_admin.lib.months import month_start
from tokens.models import (
    MAX_COLUMNS,
    ApiKey,
    DailyUsage,
    MonthlyUsage,
    TokenKind,
    UsageEvent,
    column_for_kind,
)

logger = logging.getLogger(__name__)

KEY_PREFIX = "ask_"
PREFIX_LENGTH = 12  # "ask_" and 8 characters of the secret: enough to tell keys apart
# Writing last_used_at on every call would add a write to each request; a minute is precise
# enough for an admin deciding whether a key is still in use.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


# ---------------------------------------------------------------- errors


class UsageError(DomainError):
    """A refused API call: an HTTP status, a stable code and a sentence for people."""

    def __init__(self, status: int, code: str, detail: str, **extra):
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra
        super().__init__(detail)

    def as_dict(self) -> dict:
        return {"error": self.code, "detail": self.detail, **self.extra}


def key_revoked() -> UsageError:
    return UsageError(401, "key_revoked", "This API key was revoked.")


def organization_inactive(status: str) -> UsageError:
    label = Organization.Status(status).label.lower()
    return UsageError(
        403, "organization_inactive", f"The organization is {label}: its API keys are refused."
    )


def key_reused() -> UsageError:
    return UsageError(
        409,
        "idempotency_key_reused",
        "This Idempotency-Key was already used with a different request body.",
    )


def over_limit(usage: "UsageRequest", balance: "Balance") -> UsageError:
    return UsageError(
        402,
        "over_limit",
        f"{usage.tokens:,} {usage.kind} tokens would exceed the user's monthly max: "
        f"{balance.remaining:,} remaining.",
        requested=usage.tokens,
        **balance.as_dict(),
    )


def check_user_may_use(user) -> None:
    """A User, or anything with its is_banned, is_active and is_paid."""
    if user.is_banned:
        raise UsageError(403, "user_banned", "This user is banned: their usage is refused.")
    if not user.is_active:
        raise UsageError(403, "user_inactive", "This user's account is disabled.")
    if not user.is_paid:
        raise UsageError(403, "user_not_paid", "This user is paid off: they have no paid features.")


def user_not_found() -> UsageError:
    # The same answer for an unknown email and another organization's user: emails of other
    # organizations cannot be probed with a key.
    return UsageError(404, "user_not_found", "No user with this email in your organization.")


# ---------------------------------------------------------------- API keys


def api_key_hash(raw_key: str) -> str:
    """HMAC-SHA256 of the key with a server secret.

    A slow password hash (PBKDF2, Argon2) protects low-entropy secrets that people choose.
    These keys are 256 random bits: nobody can enumerate them, however fast the hash, so a
    fast hash costs nothing in safety and keeps authentication to one indexed lookup per
    request. Keying it with the server secret means a leaked database alone does not even
    let an attacker test guesses offline.
    """
    mac = _keyed_mac().copy()  # the keyed state, computed once: each call only hashes the key
    mac.update(raw_key.encode())
    return mac.hexdigest()


@functools.cache
def _keyed_mac() -> "hmac.HMAC":
    secret = getattr(settings, "API_KEY_HASH_SECRET", settings.SECRET_KEY)
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


@receiver(setting_changed)
def _forget_keyed_mac(setting: str, **kwargs) -> None:
    if setting in {"API_KEY_HASH_SECRET", "SECRET_KEY"}:
        _keyed_mac.cache_clear()


def api_key_well_formed(raw_key: str) -> bool:
    return raw_key.startswith(KEY_PREFIX) and len(raw_key) <= 100


def invalid_key() -> UsageError:
    return UsageError(401, "invalid_key", "The API key is not valid.")


def api_key_authenticate(raw_key: str) -> ApiKey:
    """The active key with this secret, with its organization; else UsageError (401/403).

    Hand-written SQL: this runs on every API call, and building the ORM query would cost more
    than the query itself.
    """
    if not api_key_well_formed(raw_key):
        raise invalid_key()
    presented = api_key_hash(raw_key)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k.id, k.name, k.prefix, k.key_hash, k.revoked_at IS NOT NULL, "
            "k.last_used_at IS NULL OR k.last_used_at < %s, o.id, o.name, o.slug, o.status "
            f"FROM {_table(ApiKey)} k JOIN {_table(Organization)} o ON o.id = k.organization_id "
            "WHERE k.key_hash = %s",
            [connection.ops.adapt_datetimefield_value(now - LAST_USED_RESOLUTION), presented],
        )
        row = cursor.fetchone()
    # The lookup is by hash, so its timing says nothing about the secret; compare anyway.
    if row is None or not hmac.compare_digest(row[3], presented):
        raise invalid_key()
    key_id, name, prefix, key_hash, revoked, stale, *org_values = row
    if revoked:
        raise key_revoked()
    # Instances with only these fields loaded; anything else is fetched if ever read.
    org = Organization.from_db("default", ["id", "name", "slug", "status"], org_values)
    if not org.is_active:
        raise organization_inactive(org.status)
    key = ApiKey.from_db(
        "default",
        ["id", "organization_id", "name", "prefix", "key_hash"],
        [key_id, org.pk, name, prefix, key_hash],
    )
    key.organization = org
    if stale:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def api_keys_for(org: Organization):
    """The organization's keys for the panel: active first, newest first."""
    return (
        ApiKey.objects.filter(organization=org)
        .select_related("created_by", "revoked_by")
        .order_by("revoked_at", "-created_at")
    )


# ---------------------------------------------------------------- usage


@dataclass(frozen=True)
class UsageRequest:
    """A validated usage report: see `parse_usage`."""

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


_MAX_TOKENS = 2**53 - 1
_FIELDS = ("user", "kind", "tokens", "model")
_KINDS = frozenset(TokenKind.values)


def parse_usage(data: object) -> UsageRequest:
    """Validate a decoded JSON body; UsageError(400) says which field is wrong and why."""

    def bad(detail: str) -> UsageError:
        return UsageError(400, "invalid_request", detail)

    if not isinstance(data, dict):
        raise bad('The body must be a JSON object: {"user", "kind", "tokens", "model"}.')
    missing = [name for name in _FIELDS if name not in data]
    if missing:
        raise bad(f"Missing field{'s' * (len(missing) > 1)}: {', '.join(missing)}.")
    email, kind, tokens, model = (data[name] for name in _FIELDS)
    email = parse_email(email)
    if not isinstance(kind, str) or kind not in _KINDS:
        raise UsageError(400, "unknown_kind", "“kind” must be “inference” or “embedding”.")
    # bool is an int in Python; JSON true is not a number of tokens.
    if isinstance(tokens, bool) or not isinstance(tokens, int):
        raise bad("“tokens” must be a whole number.")
    if tokens <= 0:
        raise bad("“tokens” must be at least 1.")
    if tokens > _MAX_TOKENS:
        raise bad(f"“tokens” cannot exceed {_MAX_TOKENS:,}.")
    if not isinstance(model, str) or not model.strip() or len(model.strip()) > 100:
        raise bad("“model” must be the model's name (1 to 100 characters).")
    if problem := text_problem(model):
        raise bad(f"“model” {problem}.")
    return UsageRequest(email=email, kind=kind, tokens=tokens, model=model.strip())


def parse_email(value: object) -> str:
    """A user's email as the API receives it (body or URL), lowercased; UsageError(400) if it
    cannot be one. NUL and unpaired surrogates are refused here: PostgreSQL cannot take them
    (a 500 there), SQLite would look them up; both now answer the same 400."""
    if not isinstance(value, str) or "@" not in value or len(value) > 254:
        raise UsageError(400, "invalid_request", "“user” must be the user's email address.")
    if problem := text_problem(value):
        raise UsageError(400, "invalid_request", f"“user” {problem}.")
    return value.strip().lower()


def _membership_for(org: Organization, email: str, *, lock: bool = False) -> Membership:
    """The organization's member with this (lowercased) email, with the user; else 404.

    With `lock`, the membership row is locked FOR NO KEY UPDATE until the transaction ends:
    an admin's UPDATE of the max waits for us, and we wait for theirs (SQLite has no row
    locks; its IMMEDIATE transactions serialize writers anyway). Hand-written SQL: it runs
    on every usage report.
    """
    locking = lock and connection.features.has_select_for_update
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.id, m.role, m.max_inference_tokens, m.max_embedding_tokens, "
            "u.id, u.email, u.name, u.is_paid, u.is_banned, u.is_active "
            f"FROM {_table(Membership)} m JOIN {_table(User)} u ON u.id = m.user_id "
            # lower(email) is the users' unique functional index.
            "WHERE lower(u.email) = %s AND m.organization_id = %s"
            + (" FOR NO KEY UPDATE OF m" if locking else ""),
            [email, org.pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise user_not_found()
    user = User.from_db(
        "default", ["id", "email", "name", "is_paid", "is_banned", "is_active"], row[4:]
    )
    membership = Membership.from_db(
        "default",
        ["id", "user_id", "organization_id", "role", *MAX_COLUMNS],
        [row[0], user.pk, org.pk, row[1], row[2], row[3]],
    )
    membership.user = user
    membership.organization = org
    return membership


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _write_in_steps(
    *,
    org_id: int,
    user_id: int,
    usage: UsageRequest,
    now: dt.datetime,
    month: dt.date,
    limit: int,
    idempotency_key: str,
) -> tuple[int, int] | None:
    """Count the tokens, record the event, add to the day; None when the UPDATE matched
    nothing (no row for the month yet, or over the max) and nothing was written.

    A reused idempotency key raises IntegrityError at the event.
    """
    adapt = connection.ops
    with connection.cursor() as cursor:
        # The one conditional UPDATE: the limit is enforced by the database, not by a read.
        cursor.execute(
            f"UPDATE {_table(MonthlyUsage)} SET used = used + %s "
            "WHERE user_id = %s AND kind = %s AND month = %s AND organization_id = %s "
            "AND used + %s <= %s RETURNING used",
            [usage.tokens, user_id, usage.kind, adapt.adapt_datefield_value(month), org_id]
            + [usage.tokens, limit],
        )
        row = cursor.fetchone()
        if row is None:
            return None
        cursor.execute(
            f"INSERT INTO {_table(UsageEvent)} (organization_id, user_id, kind, tokens, model, "
            "created_at, idempotency_key, request_hash, used_after, max_after) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [org_id, user_id, usage.kind, usage.tokens, usage.model]
            + [adapt.adapt_datetimefield_value(now), idempotency_key]
            + [usage.fingerprint if idempotency_key else "", row[0], limit],
        )
        event_id = cursor.fetchone()[0]
        cursor.execute(
            f"INSERT INTO {_DAILY} (organization_id, user_id, kind, model, day, tokens, events) "
            f"VALUES (%s, %s, %s, %s, %s, %s, 1) {_DAILY_CONFLICT}",
            [org_id, user_id, usage.kind, usage.model]
            + [adapt.adapt_datefield_value(_utc_day(now)), usage.tokens],
        )
    return row[0], event_id


def _utc_day(now: dt.datetime) -> dt.date:
    return now.astimezone(dt.UTC).date()


_DAILY = _table(DailyUsage)
_DAILY_CONFLICT = (
    "ON CONFLICT (user_id, kind, model, day, organization_id) DO UPDATE "
    f"SET tokens = {_DAILY}.tokens + excluded.tokens, events = {_DAILY}.events + 1"
)


def _month_used(*, org_id: int, user_id: int, kind: str, month: dt.date) -> int | None:
    row = MonthlyUsage.objects.filter(
        organization_id=org_id, user_id=user_id, kind=kind, month=month
    ).values_list("used", flat=True)
    return next(iter(row), None)


def _replay(*, org: Organization, usage: UsageRequest, idempotency_key: str) -> UsageResult | None:
    """The recorded answer for a retried key; 409 when the key came with another body."""
    event = (
        UsageEvent.objects.filter(organization=org, idempotency_key=idempotency_key)
        .only("id", "user_id", "kind", "created_at", "request_hash", "used_after", "max_after")
        .first()
    )
    if event is None:
        return None
    if event.request_hash != usage.fingerprint:
        raise key_reused()
    membership = _membership_for(org, usage.email)
    # The balance the first answer gave: a retry answers exactly what was first said.
    used, limit = event.used_after or 0, event.max_after or 0
    return UsageResult(
        event_id=event.pk,
        request=usage,
        month=month_start(event.created_at),
        balance=Balance(usage.kind, limit, used),
        replayed=True,
        user_id=membership.user_id,
    )


@transaction.atomic
def _record_in_steps(
    *, org: Organization, usage: UsageRequest, idempotency_key: str, now: dt.datetime
) -> UsageResult:
    """SQLite: the recording transaction statement by statement (see the module's steps)."""
    membership = _membership_for(org, usage.email, lock=True)
    user = membership.user
    try:
        check_user_may_use(user)
    except UsageError:
        if idempotency_key:  # a retry of a usage recorded before the user was banned
            replay = _replay(org=org, usage=usage, idempotency_key=idempotency_key)
            if replay is not None:
                return replay
        raise
    limit = getattr(membership, column_for_kind(usage.kind))
    month = month_start(now)
    write = _write_in_steps
    args = {
        "org_id": org.pk,
        "user_id": user.pk,
        "usage": usage,
        "now": now,
        "month": month,
        "limit": limit,
        "idempotency_key": idempotency_key,
    }
    written = write(**args)
    if written is None:
        current = _month_used(org_id=org.pk, user_id=user.pk, kind=usage.kind, month=month)
        if current is None:
            # First usage of the month: create the row; a concurrent creator is not an error.
            MonthlyUsage.objects.bulk_create(
                [MonthlyUsage(organization=org, user=user, kind=usage.kind, month=month)],
                ignore_conflicts=True,
            )
            written = write(**args)
            current = 0
    if written is None:
        if idempotency_key:  # a retry of a usage recorded before the user reached the max
            replay = _replay(org=org, usage=usage, idempotency_key=idempotency_key)
            if replay is not None:
                return replay
        raise over_limit(usage, Balance(usage.kind, limit, current))
    used, event_id = written
    return UsageResult(
        event_id=event_id,
        request=usage,
        month=month,
        balance=Balance(usage.kind, limit, used),
        user_id=user.pk,
    )


def balance_for(*, org: Organization, email: str, month: dt.date | None = None) -> dict:
    """Max, used this month and remaining per kind for one of the organization's users."""
    membership = _membership_for(org, email.strip().lower())
    month = month or month_start(timezone.now())
    used = dict(
        MonthlyUsage.objects.filter(
            organization=org, user_id=membership.user_id, month=month
        ).values_list("kind", "used")
    )
    user = membership.user
    return {
        "user": user.email,
        "month": f"{month:%Y-%m}",
        "paid": user.is_paid,
        "banned": user.is_banned,
        **{
            kind: Balance(
                kind, getattr(membership, column_for_kind(kind)), used.get(kind, 0)
            ).as_dict()
            for kind in TokenKind.values
        },
    }
