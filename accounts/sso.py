"""Single sign-on's identity side: which identity provider an address belongs to, who must
use it, and sales' changes to a provider (audited). The sign-in flow itself needs the
membership rules and the pools, so it lives in `tokens.sso`.
"""

import ipaddress
import re
from urllib.parse import urlsplit

from django.contrib.sessions.models import Session
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import (
    IdentityProvider,
    IdentityProviderDomain,
    Membership,
    SsoIdentity,
    User,
)
from accounts.sso_secrets import secret_rotate, secret_store
from asksage_admin.lib.errors import DomainError
from audit.services import audit_record

SSO_REQUIRED_MESSAGE = (
    "Your organization signs in through single sign-on: use Continue with single sign-on."
)
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
# Set in the session by a single sign-on (tokens.sso.views): the provider that opened it.
SSO_SESSION_KEY = "sso_provider"
SSO_START = "sso_start"  # {"email", "next"}: what the login page asked /sso/start/ to do
# Set beside SSO_SESSION_KEY when the id_token's `amr` showed a multi-factor sign-in at the IdP.
SSO_MFA_KEY = "sso_idp_mfa"


def email_domain(email: str) -> str:
    return (email or "").strip().lower().rpartition("@")[2]


def provider_for_email(email: str) -> IdentityProvider | None:
    """The enabled provider that signs in this address's domain, if any."""
    domain = email_domain(email)
    if not domain:
        return None
    return (
        IdentityProvider.objects.select_related("organization")
        .filter(enabled=True, domains__domain=domain)
        .first()
    )


def amr_shows_mfa(amr: object) -> bool:
    """Whether an id_token's `amr` (RFC 8176: a list of method names) proves a multi-factor
    sign-in: it says "mfa", or names two distinct methods (which covers a second factor such
    as otp, hwk, sc or swk beside a password). Anything else proves nothing: no claim, not a
    list, one method alone (["pwd"], or ["otp"] repeated)."""
    if not isinstance(amr, list):
        return False
    methods = {method for method in amr if isinstance(method, str) and method}
    return "mfa" in methods or len(methods) >= 2


def sso_required_for(user: User) -> bool:
    """A member of an organization whose provider requires SSO; staff never (break-glass)."""
    if user is None or user.is_staff or not user.pk:
        return False
    org_id = Membership.objects.filter(user=user).values_list("organization_id", flat=True)
    return IdentityProvider.objects.filter(
        organization_id__in=org_id, enabled=True, sso_required=True
    ).exists()


def issuer_errors(issuer: str) -> list[str]:
    """https only; http for a loopback host (a test provider on this machine)."""
    parts = urlsplit(issuer or "")
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host:
        return []
    if parts.scheme == "http" and _is_loopback(host):
        return []
    return ["The issuer must be an https:// URL (http:// only for 127.0.0.1, localhost or ::1)."]


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_domains(text: str) -> tuple[list[str], list[str]]:
    """One domain per line (commas and spaces too) → (domains, errors in words)."""
    domains, errors = [], []
    for raw in re.split(r"[\s,;]+", text or ""):
        domain = raw.strip().lower().removeprefix("@")
        if not domain:
            continue
        if not _DOMAIN.match(domain):
            errors.append(f"“{raw}” is not a domain name (e.g. agency.gov).")
        elif domain not in domains:
            domains.append(domain)
    return domains, errors


def domain_claim_errors(domains: list[str], provider: IdentityProvider | None) -> list[str]:
    """Domains another organization's provider already signs in."""
    taken = IdentityProviderDomain.objects.filter(domain__in=domains).select_related(
        "provider__organization"
    )
    if provider is not None and provider.pk:
        taken = taken.exclude(provider=provider)
    return [
        f"{d.domain} is already used by the single sign-on of another organization." for d in taken
    ]


@transaction.atomic
def identity_provider_save(
    *,
    actor: User,
    provider: IdentityProvider,
    domains: list[str],
    new_secret: str = "",
    changed: list[str] = (),
) -> IdentityProvider:
    """Create or update a provider, its domains and (when typed) its secret; audited with the
    changed field names, never the secret's value."""
    creating = provider.pk is None
    stored = None if creating else _stored(provider)
    was_required = bool(stored and stored["enabled"] and stored["sso_required"])
    changed = [f for f in changed if f not in {"client_secret", "domains"}]
    if new_secret.strip():
        provider.client_secret = secret_store(new_secret)
        changed.append("client_secret")
    else:  # after a SECRET_KEY rotation, a save re-encrypts under the new key
        provider.client_secret = secret_rotate(provider.client_secret)
    provider.updated_at = timezone.now()  # a new authlib client (tokens.sso.client)
    provider.save()
    if stored and stored["issuer"].rstrip("/") != provider.issuer.rstrip("/"):
        _identities_unlink(actor=actor, provider=provider, old_issuer=stored["issuer"])
    old = sorted(provider.domains.values_list("domain", flat=True))
    if old != sorted(domains):
        provider.domains.exclude(domain__in=domains).delete()
        try:
            with transaction.atomic():
                IdentityProviderDomain.objects.bulk_create(
                    IdentityProviderDomain(provider=provider, domain=d)
                    for d in domains
                    if d not in old
                )
        except IntegrityError as exc:  # claimed by another organization meanwhile
            raise DomainError(errors={"domains": domain_claim_errors(domains, provider)}) from exc
        changed.append("domains")
    audit_record(
        action="sso.configured",
        organization=provider.organization,
        actor=actor,
        column="created" if creating else ",".join(changed),
        old=", ".join(old),
        new=", ".join(sorted(domains)),
        issuer=provider.issuer,
        enabled=provider.enabled,
        sso_required=provider.sso_required,
        jit_enabled=provider.jit_enabled,
    )
    if provider.enabled and provider.sso_required and not was_required:
        ended = password_sessions_end(org=provider.organization)
        audit_record(
            action="sso.sessions_ended",
            organization=provider.organization,
            actor=actor,
            new=ended,
            provider=provider.pk,
        )
    return provider


def _stored(provider: IdentityProvider) -> dict | None:
    """What the stored provider says before this save, its row locked: two saves at once
    cannot both see SSO not yet required and both end the sessions, nor both see the old
    issuer."""
    return (
        IdentityProvider.objects.select_for_update()
        .filter(pk=provider.pk)
        .values("enabled", "sso_required", "issuer")
        .first()
    )


def _identities_unlink(*, actor: User, provider: IdentityProvider, old_issuer: str) -> None:
    """A new issuer is a new namespace of subjects: its `sub` for one person may be the old
    issuer's `sub` for another. Every bound identity goes; each person binds again at their
    next sign-in, matched by their verified email."""
    removed = provider.identities.all().delete()[1].get(SsoIdentity._meta.label, 0)
    audit_record(
        action="sso.identities_unlinked",
        organization=provider.organization,
        actor=actor,
        column="issuer",
        old=old_issuer,
        new=provider.issuer,
        count=removed,
        provider=provider.pk,
    )


def password_sessions_end(*, org) -> int:
    """End the live sessions the organization's members opened with a password, once SSO
    becomes required: the password door is shut, so must be what came through it. Sessions
    opened by single sign-on stay; staff are never touched (break-glass). Returns how many."""
    members = {
        str(pk)
        for pk in Membership.objects.filter(organization=org, user__is_staff=False).values_list(
            "user_id", flat=True
        )
    }
    if not members:
        return 0
    ended = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        data = session.get_decoded()
        if str(data.get("_auth_user_id")) in members and SSO_SESSION_KEY not in data:
            ended.append(session.pk)
    for start in range(0, len(ended), 500):
        Session.objects.filter(pk__in=ended[start : start + 500]).delete()
    return len(ended)
