"""The second factor (TOTP, with recovery codes) for org admins, auditors and sales staff;
passkeys are in accounts.passkeys.

Built on django-otp: a confirmed TOTPDevice is the authenticator app, a StaticDevice holds
one-time recovery codes. A session is "verified" once `django_otp.login` ran in it.
"""

import datetime as dt
import math

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import IdentityProvider, Membership, User
from accounts.passkeys import has_passkey, passkeys_of
from accounts.sso import SSO_MFA_KEY, SSO_SESSION_KEY
from asksage_admin.lib.durations import in_words
from asksage_admin.lib.errors import DomainError
from audit.services import audit_record

RECOVERY_CODES = 10
# The wait after a wrong code that is worth telling about with the error (the fifth wrong
# code in a row makes the next one wait 16 s); shorter ones pass while the person retypes.
NOTICEABLE_WAIT = dt.timedelta(seconds=10)


def mfa_required_for(user: User, membership: Membership | None = None) -> bool:
    """Sales staff and everyone who can open the Admin Panel need a second factor."""
    if not settings.MFA_REQUIRED or settings.DEMO_SKIP_MFA or not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    if membership is None:
        membership = Membership.objects.filter(user=user).first()
    return bool(membership and membership.can_view_panel)


def session_verified(request) -> bool:
    """This session passed a second factor: a code or passkey here (django-otp), or a single
    sign-on through a provider whose second factor the organization trusts, and whose id_token
    showed a multi-factor sign-in (`amr`, accounts.sso.amr_shows_mfa). Every second-factor
    check asks this, nothing else."""
    user = request.user
    if user.is_verified():
        return True
    provider_id = request.session.get(SSO_SESSION_KEY)
    if not provider_id or not request.session.get(SSO_MFA_KEY) or user.is_staff:
        return False
    return IdentityProvider.objects.filter(
        pk=provider_id,
        enabled=True,
        trust_idp_mfa=True,
        organization__memberships__user=user,
    ).exists()


def has_totp(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def is_enrolled(user: User) -> bool:
    """A confirmed authenticator app or a passkey (accounts.passkeys)."""
    return has_totp(user) or has_passkey(user)


def pending_totp_device(user: User) -> TOTPDevice:
    """The unconfirmed authenticator being set up (made once, reused on reload)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def _org(user: User):
    membership = Membership.objects.select_related("organization").filter(user=user).first()
    return membership.organization if membership else None


def _audit_own_step(action: str, user: User, **details) -> None:
    """Audit a second-factor step the user takes on their own account."""
    audit_record(action=action, organization=_org(user), actor=user, target_user=user, **details)


@transaction.atomic
def mfa_enroll_confirm(*, request, user: User, token: str) -> list[str]:
    """Confirm the authenticator with a first code; returns fresh recovery codes (shown once)."""
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
    if device is None:
        raise DomainError(
            errors={"token": ["Start the set-up again: no authenticator is pending."]}
        )
    if not device.verify_token((token or "").strip().replace(" ", "")):
        raise DomainError(errors={"token": ["That code is not valid. Enter the current 6 digits."]})
    TOTPDevice.objects.filter(user=user, confirmed=True).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = _new_recovery_codes(user)
    otp_login(request, device)
    _audit_own_step("mfa.enrolled", user)
    return codes


def _new_recovery_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    static = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=static, token=c) for c in codes)
    return codes


def has_recovery_codes(user: User) -> bool:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).exists()


def mfa_passkey_recovery_codes(*, user: User) -> list[str]:
    """Fresh recovery codes for someone who just added a passkey and has none left (to show
    once): losing the only key must not lock them out. Called in the passkey's own
    transaction; [] when they still hold codes."""
    if has_recovery_codes(user):
        return []
    codes = _new_recovery_codes(user)
    _audit_own_step("mfa.recovery_codes", user, count=len(codes), method="passkey")
    return codes


class TooManyWrongCodes(DomainError):
    """The second factor is waiting out its delay after wrong codes; `retry_at` it may be
    tried again."""

    def __init__(self, retry_at: dt.datetime):
        self.retry_at = retry_at
        super().__init__(errors={"token": [_try_again(retry_at)]})

    @property
    def retry_after_seconds(self) -> int:
        return max(1, math.ceil((self.retry_at - timezone.now()).total_seconds()))


def _locked_devices(user: User) -> list[TOTPDevice | StaticDevice]:
    """The confirmed authenticator and recovery codes, their rows locked: two guesses sent at
    once are checked one after the other, each seeing the other's failure count."""
    return [
        *TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk"),
        *StaticDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk"),
    ]


def _retry_at(devices) -> dt.datetime | None:
    """When the next code may be tried, if a device is still waiting out its delay."""
    waits = []
    for device in devices:
        allowed, data = device.verify_is_allowed()
        if not allowed:
            waits.append((data or {}).get("locked_until") or timezone.now())
    return max(waits, default=None)


def _try_again(retry_at: dt.datetime) -> str:
    wait = in_words((retry_at - timezone.now()).total_seconds())
    return f"Too many wrong codes. Try again in {wait}."


def _wrong_code_message(devices) -> str:
    """Someone with only recovery codes (a passkey user) has no "current code" to retry."""
    if any(isinstance(device, TOTPDevice) for device in devices):
        return "That code is not valid. Try the current code again."
    return "That recovery code is not valid or was already used. Check it and try again."


def mfa_verify(*, request, user: User, token: str, ip: str | None = None) -> None:
    """Check a code from the authenticator or a recovery code, and mark the session verified.

    A wrong code is committed before the error is raised: its failure count (django-otp's
    throttle, which doubles the wait after each wrong code) and its `mfa.failed` audit row
    must outlive the request. Raising inside the transaction would roll both back, and with
    them every limit on guessing. While the wait lasts no code is checked at all, the right
    one included. Call it outside any transaction (the view is `non_atomic_requests`).
    """
    token = (token or "").strip().replace(" ", "")
    with transaction.atomic():
        devices = _locked_devices(user)
        retry_at = _retry_at(devices)
        if retry_at is not None:
            error: DomainError = TooManyWrongCodes(retry_at)
        else:
            for device in devices:
                if device.verify_token(token):
                    for other in devices:
                        if other is not device and other.throttling_failure_count:
                            other.throttle_reset()
                    otp_login(request, device)
                    kind = "recovery code" if isinstance(device, StaticDevice) else "authenticator"
                    _audit_own_step("mfa.verified", user, ip=ip, method=kind)
                    return
            failures = max((d.throttling_failure_count for d in devices), default=0)
            _audit_own_step("mfa.failed", user, ip=ip, failures=failures)
            message = _wrong_code_message(devices)
            retry_at = _retry_at(devices)
            if retry_at is not None and retry_at - timezone.now() >= NOTICEABLE_WAIT:
                message = f"That code is not valid. {_try_again(retry_at)}"
            error = DomainError(errors={"token": [message]})
    # Raised once the transaction is over: the failure count and the audit row are committed.
    raise error


def mfa_wait(user: User) -> TooManyWrongCodes | None:
    """The refusal while the second factor waits out its delay after wrong tries (None: it
    may be tried). A passkey is refused for the same wait as a code."""
    with transaction.atomic():
        retry_at = _retry_at(_locked_devices(user))
    return TooManyWrongCodes(retry_at) if retry_at is not None else None


def mfa_passkey_failed(*, user: User, ip: str | None = None, reason: str = "") -> None:
    """A failed passkey assertion counts as a wrong code: each code-bearing device's failure
    count rises (so the next try of either kind waits 1, 2, 4… s) and `mfa.failed` is
    audited with method "passkey". Committed at once, like a wrong code's (see mfa_verify)."""
    with transaction.atomic():
        devices = _locked_devices(user)
        for device in devices:
            device.throttle_increment()
        failures = max((d.throttling_failure_count for d in devices), default=0)
        _audit_own_step(
            "mfa.failed", user, ip=ip, failures=failures, method="passkey", reason=reason[:40]
        )


def mfa_passkey_passed(user: User) -> None:
    """A passkey passed: the wrong tries before it are forgiven, as after a right code."""
    with transaction.atomic():
        for device in _locked_devices(user):
            if device.throttling_failure_count:
                device.throttle_reset()


@transaction.atomic
def mfa_reset(*, actor: User, user: User) -> None:
    """Sales staff reset someone's second factor (authenticator, recovery codes and passkeys):
    they enrol again at their next login."""
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    passkeys_of(user).delete()
    audit_record(action="mfa.reset", organization=_org(user), actor=actor, target_user=user)
