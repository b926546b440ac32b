"""Who a single sign-on signs in: the id_token's claims (already checked by authlib) matched
to a user of the provider's organization, or a new member created just in time.

One transaction with the organization row locked: two first sign-ins at once cannot both
take the pool's last tokens. A refusal is audited (and, for a pool too small, the admins are
alerted) in that transaction, and raised once it has committed, so that the record stays.
Nothing here touches a user of another organization: an address outside the provider's
domains, or a user whose membership is elsewhere, is refused.
"""

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.mfa import mfa_reset
from accounts.models import IdentityProvider, Membership, Organization, SsoIdentity, User
from accounts.services import organization_lock, user_sessions_end
from accounts.sso import email_domain
from audit.services import audit_record
from tokens.alerts import admin_emails, alerts_once, pool_alert_after_commit
from tokens.mail import absolute_url, email_queue
from tokens.models import Notification, TokenKind
from tokens.organizations import new_member_pool_errors
from tokens.services.notifications import notify

CONTACT_ADMIN = "Contact your organization's administrator."
SUBJECT_MAX = SsoIdentity._meta.get_field("subject").max_length
EMAIL_MAX = User._meta.get_field("email").max_length


class SsoRefused(Exception):
    """A sign-in the organization's rules refuse; `message` is for the person."""

    def __init__(self, message: str, reason: str, alert: dict | None = None):
        super().__init__(message)
        self.message, self.reason, self.alert = message, reason, alert


def sso_sign_in(*, provider: IdentityProvider, claims: dict, ip: str | None = None) -> User:
    """The user the claims sign in (bound to their subject from now on). Raises SsoRefused."""
    with transaction.atomic():
        org = organization_lock(provider.organization)
        try:
            return _sign_in_or_read_again(provider=provider, org=org, claims=claims, ip=ip)
        except SsoRefused as exc:
            refusal = exc
            if exc.alert:
                _alert_pool_short(provider=provider, org=org, **exc.alert)
            audit_record(
                action="sso.refused",
                organization=org,
                ip=ip,
                reason=exc.reason,
                email=str(claims.get("email") or "").replace("\x00", "")[:254],
                provider=provider.pk,
            )
    raise refusal


def _sign_in_or_read_again(**kwargs) -> User:
    """A sign-in that lost a race (another sign-in, or a registration of the same address,
    created the user or the identity between our read and our write: a unique key refuses
    ours) reads again and signs in the account the winner created. Once only: losing twice
    asks the person to try again."""
    for _attempt in range(2):
        try:
            with transaction.atomic():  # a refusal or a lost race undoes what the attempt wrote
                return _sign_in(**kwargs)
        except IntegrityError:
            continue
    raise SsoRefused(
        "Your account was being set up by another sign-in at the same moment. "
        "Try again from the login page.",
        "concurrent_sign_in",
    )


def _known(provider: IdentityProvider, subject: str, email: str):
    """The identity already bound to this subject, and the user holding this address."""
    identity = (
        SsoIdentity.objects.select_related("user").filter(provider=provider, subject=subject)
    ).first()
    return identity, User.objects.filter(email__iexact=email).first()


def _sign_in(*, provider: IdentityProvider, org: Organization, claims: dict, ip) -> User:
    subject, email = _checked_claims(provider, claims)
    identity, holder = _known(provider, subject, email)
    if identity is not None:
        if holder is not None and holder.pk != identity.user_id:
            raise SsoRefused(
                f"Your single sign-on identity is bound to another account. {CONTACT_ADMIN}",
                "subject_bound_to_another_user",
            )
        user = identity.user
    else:
        user = holder
        if user is not None and SsoIdentity.objects.filter(provider=provider, user=user).exists():
            raise SsoRefused(
                f"This account is bound to another single sign-on identity. {CONTACT_ADMIN}",
                "user_bound_to_another_subject",
            )
    existed = user is not None
    if user is None:
        user = _jit_create(provider=provider, org=org, email=email, claims=claims, ip=ip)
    joined = _check_user(provider=provider, org=org, user=user, ip=ip)
    if joined and existed:
        _reclaim(org=org, user=user, ip=ip)
    if identity is None:
        identity = SsoIdentity.objects.create(user=user, provider=provider, subject=subject)
        audit_record(
            action="sso.linked", organization=org, actor=user, target_user=user, ip=ip, via="sso"
        )
    identity.last_login = timezone.now()
    identity.save(update_fields=["last_login"])
    return user


def _checked_claims(provider: IdentityProvider, claims: dict) -> tuple[str, str]:
    subject = str(claims.get("sub") or "")
    email = str(claims.get("email") or "").strip().lower()
    if not subject or "@" not in email:
        raise SsoRefused(
            "Your identity provider did not send your email address. " + CONTACT_ADMIN,
            "no_email",
        )
    if len(subject) > SUBJECT_MAX or len(email) > EMAIL_MAX:
        raise SsoRefused(
            f"Your identity provider sent an identifier longer than {SUBJECT_MAX} characters "
            f"or an email address longer than {EMAIL_MAX}, which this site cannot keep. "
            + CONTACT_ADMIN,
            "claim_too_long",
        )
    if "\x00" in subject + email:  # PostgreSQL keeps no NUL in a text column
        raise SsoRefused(
            "Your identity provider sent an identifier or email address this site cannot "
            "keep. " + CONTACT_ADMIN,
            "claim_unusable",
        )
    if provider.require_verified_email and claims.get("email_verified") not in (True, "true"):
        raise SsoRefused(
            "Your identity provider has not verified your email address. " + CONTACT_ADMIN,
            "email_not_verified",
        )
    if not provider.domains.filter(domain=email_domain(email)).exists():
        raise SsoRefused(
            f"{email} is not an address of this organization's domains: sign in with the "
            "account your organization gave you.",
            "domain_not_allowed",
        )
    return subject, email


def _reclaim(*, org: Organization, user: User, ip) -> None:
    """An account made outside any organization (registration checks no mailbox) joins
    through its IdP, which has just proved the address is this person's: whatever way in its
    maker set up ends here — password, second factors, sessions."""
    user.set_unusable_password()
    user.save(update_fields=["password"])
    mfa_reset(actor=user, user=user)
    user_sessions_end(user=user)
    audit_record(
        action="sso.account_reclaimed", organization=org, actor=user, target_user=user, ip=ip
    )


def _check_user(*, provider: IdentityProvider, org: Organization, user: User, ip) -> bool:
    """Refuses in words; True when the user joined the organization just now."""
    if user.is_staff:
        raise SsoRefused(
            "Staff accounts sign in with their password and second factor, not single sign-on.",
            "staff",
        )
    if user.is_banned or not user.is_active:
        raise SsoRefused("This account has been banned. " + CONTACT_ADMIN, "banned")
    membership = Membership.objects.filter(user=user).first()
    if membership is None:
        _jit_membership(provider=provider, org=org, user=user, ip=ip)
        return True
    if membership.organization_id != org.pk:
        raise SsoRefused(
            f"{user.email} belongs to another organization: it cannot sign in through this one.",
            "other_organization",
        )
    return False


def _jit_create(*, provider, org, email: str, claims: dict, ip) -> User:
    """A person of an allowed domain with no account: a new user, if the organization lets
    its provider create members (the membership comes next, in `_check_user`)."""
    _jit_errors(provider=provider, org=org, email=email, ip=ip)
    name = str(claims.get("name") or "").replace("\x00", "").strip() or email
    user = User.objects.create_user(email=email, password=None, name=name[:150])
    audit_record(
        action="user.created", organization=org, actor=user, target_user=user, ip=ip, via="sso"
    )
    return user


def _jit_membership(*, provider, org, user: User, ip) -> Membership:
    """A member at the organization's floors, taken from the unallocated pool (the rule
    invitations and SCIM follow)."""
    _jit_errors(provider=provider, org=org, email=user.email, ip=ip)
    membership = Membership.objects.create(
        user=user,
        organization=org,
        role=Membership.Role.MEMBER,
        max_inference_tokens=org.min_inference_tokens,
        max_embedding_tokens=org.min_embedding_tokens,
    )
    audit_record(
        action="membership.added",
        organization=org,
        actor=user,
        target_user=user,
        role=membership.role,
        ip=ip,
        via="sso",
    )
    for kind in TokenKind.values:
        if org.floor(kind):
            pool_alert_after_commit(org=org, kind=kind)
    return membership


def _jit_errors(*, provider: IdentityProvider, org: Organization, email: str, ip) -> None:
    if not provider.jit_enabled:
        raise SsoRefused(
            f"{email} has no account in {org.name} yet. Ask your organization's administrator "
            "to add you.",
            "jit_disabled",
        )
    if not org.is_active:
        raise SsoRefused(f"{org.name} is not active. {CONTACT_ADMIN}", "org_inactive")
    if errors := new_member_pool_errors(org, [email]):
        raise SsoRefused(
            f"{org.name} has no tokens left for a new member, so your account could not be "
            "created. Its administrators have been told; try again later.",
            "pool_short",
            alert={"email": email, "reason": " ".join(errors)},
        )


def _alert_pool_short(*, provider: IdentityProvider, org: Organization, email: str, reason):
    """Tell the admins (bell and email), at most once an hour per provider: a person who
    retries, or many at once, does not flood them."""
    key = f"sso_pool:{provider.pk}:{timezone.now():%Y%m%d%H}"
    if not alerts_once(org, [key]):
        return
    admin_ids = Membership.objects.filter(organization=org, role=Membership.Role.ADMIN).values_list(
        "user_id", flat=True
    )
    notify(
        recipient_ids=list(admin_ids),
        org=org,
        kind=Notification.Kind.SSO_POOL_SHORT,
        text=f"{email} could not join through single sign-on: {reason} Free tokens on the "
        "Users page (or buy more), then ask them to sign in again.",
        key=key,
        link=reverse("tokens:users"),
    )
    email_queue(
        kind="sso_pool_alert",
        to=admin_emails(org),
        organization=org,
        context={
            "org": org,
            "email": email,
            "reason": reason,
            "distribution_url": absolute_url("tokens:distribution"),
        },
    )
    audit_record(action="alert.sso_pool", organization=org, actor_label="sso", new=email)
