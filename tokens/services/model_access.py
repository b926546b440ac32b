"""Which models an organization's members may use (the Admin Panel's Models page), and the
catalogue's writes from /staff/.

An organization starts unrestricted: every model is allowed and the usage API reads no grant
row. The first time an admin narrows a model, every active catalogue model is first granted
to everyone (so the others keep working), then the change is made; "Allow every model" goes
back to unrestricted. Each change is audited in the organization's chain, old → new.
"""

from django.db import transaction
from django.db.models.functions import Lower

from accounts.models import Membership, Organization, User
from asksage_admin.lib.errors import DomainError
from audit.services import audit_record
from tokens.models import EVERYONE, ModelGrant, PlatformModel

# What an admin picks for a model on the Models page.
EVERYONE_MODE, ROLES_MODE, USERS_MODE, OFF_MODE = "everyone", "roles", "users", "off"
MODES = {
    EVERYONE_MODE: "Everyone",
    ROLES_MODE: "Only some roles",
    USERS_MODE: "Only some users",
    OFF_MODE: "Nobody (disabled)",
}
ROLE_LABELS = {"admin": "Admins", "auditor": "Auditors", "member": "Members"}


def _lock(org: Organization) -> Organization:
    # Lock the organization row: two admins changing grants at once apply one after the other.
    # NO KEY UPDATE: usage inserts (foreign keys to the organization) are not blocked.
    return Organization.objects.select_for_update(no_key=True).get(pk=org.pk)


def audience_words(audiences: list[str], emails: dict[str, str]) -> str:
    """A model's grants in words: "Everyone", "Admins, Members", "ann@x, bob@x", "Nobody"."""
    if not audiences:
        return "Nobody"
    if EVERYONE in audiences:
        return "Everyone"
    roles = [ROLE_LABELS[a] for a in audiences if a in ROLE_LABELS]
    users = sorted(emails.get(a, f"user #{a}") for a in audiences if a.isdigit())
    return ", ".join(roles + users)


def _audiences(*, org: Organization, mode: str, roles: list[str], emails: list[str]) -> list[str]:
    """The grant rows' audiences for what the admin chose; DomainError when it says nobody."""
    if mode == EVERYONE_MODE:
        return [EVERYONE]
    if mode == OFF_MODE:
        return []
    if mode == ROLES_MODE:
        if not roles:
            raise DomainError(errors={"roles": ["Choose at least one role."]})
        return sorted(set(roles))
    if not emails:
        raise DomainError(errors={"emails": ["Give at least one member's email."]})
    wanted = [e.lower() for e in emails]
    found_lower = dict(
        Membership.objects.filter(organization=org)
        .annotate(email=Lower("user__email"))
        .filter(email__in=wanted)
        .values_list("email", "user_id")
    )
    missing = [e for e in emails if e.lower() not in found_lower]
    if missing:
        raise DomainError(
            errors={"emails": [f"Not a member of your organization: {', '.join(missing[:10])}."]}
        )
    return sorted({str(user_id) for user_id in found_lower.values()})


def _emails_for(audiences) -> dict[str, str]:
    ids = [int(a) for a in audiences if a.isdigit()]
    return {
        str(pk): email for pk, email in User.objects.filter(pk__in=ids).values_list("pk", "email")
    }


@transaction.atomic
def model_access_set(
    *,
    actor: User,
    org: Organization,
    model_name: str,
    mode: str,
    roles: list[str] = (),
    emails: list[str] = (),
    ip: str | None = None,
) -> str:
    """Set who in the organization may use one active catalogue model; returns the new
    audience in words. Restricts the organization first if it was not (every active model
    granted to everyone, then this one changed)."""
    org = _lock(org)
    model = PlatformModel.objects.filter(name=model_name, active=True).first()
    if model is None:
        raise DomainError("This model is not in the platform's catalogue (or was retired).")
    audiences = _audiences(org=org, mode=mode, roles=list(roles), emails=list(emails))
    if not org.models_restricted:
        _restrict(actor=actor, org=org, ip=ip)
    grants = ModelGrant.objects.filter(organization=org, model_id=model.name)
    old = sorted(grants.values_list("audience", flat=True))
    if old == audiences:
        raise DomainError(f"{model.display_name} already allows exactly that: nothing changed.")
    grants.delete()
    ModelGrant.objects.bulk_create(
        [ModelGrant(organization=org, model_id=model.name, audience=a) for a in audiences]
    )
    emails_by_id = _emails_for(old + audiences)
    new_words = audience_words(audiences, emails_by_id)
    audit_record(
        action="model.access",
        organization=org,
        actor=actor,
        ip=ip,
        old=audience_words(old, emails_by_id),
        new=new_words,
        model=model.name,
        display_name=model.display_name,
    )
    return new_words


def _restrict(*, actor: User, org: Organization, ip: str | None) -> None:
    names = list(PlatformModel.objects.filter(active=True).values_list("name", flat=True))
    ModelGrant.objects.bulk_create(
        [ModelGrant(organization=org, model_id=name, audience=EVERYONE) for name in names]
    )
    org.models_restricted = True
    org.save(update_fields=["models_restricted"])
    audit_record(
        action="model.restricted",
        organization=org,
        actor=actor,
        ip=ip,
        old="every model",
        new="enabled models only",
        granted_to_everyone=len(names),
    )


@transaction.atomic
def model_access_unrestrict(*, actor: User, org: Organization, ip: str | None = None) -> int:
    """Back to every model allowed (also names outside the catalogue): the grants are removed.
    Returns how many grant rows went."""
    org = _lock(org)
    if not org.models_restricted:
        raise DomainError("Every model is already allowed.")
    removed, _ = ModelGrant.objects.filter(organization=org).delete()
    org.models_restricted = False
    org.save(update_fields=["models_restricted"])
    audit_record(
        action="model.restricted",
        organization=org,
        actor=actor,
        ip=ip,
        old="enabled models only",
        new="every model",
        grants_removed=removed,
    )
    return removed


@transaction.atomic
def platform_model_save(*, actor: User, model: PlatformModel, created: bool) -> PlatformModel:
    """Sales add or change a catalogue model (its name never changes once created). Retiring
    it (active off) withdraws it from every organization that enabled it, audited there."""
    before = None if created else PlatformModel.objects.select_for_update().get(pk=model.pk)
    if before is not None and before.name != model.name:
        raise DomainError(errors={"name": ["A model's name never changes: add a new model."]})
    model.save()
    fields = ("name", "display_name", "kind", "active")
    old = {} if before is None else {f: getattr(before, f) for f in fields}
    new = {f: getattr(model, f) for f in fields}
    audit_record(
        action="model.catalogue",
        actor=actor,
        old=old or "",
        new=new,
        model=model.name,
        change="added" if created else "changed",
    )
    if before is not None and before.active and not model.active:
        _withdraw(actor=actor, model=model)
    return model


def _withdraw(*, actor: User, model: PlatformModel) -> None:
    grants = ModelGrant.objects.filter(model_id=model.name)
    org_ids = sorted(set(grants.values_list("organization_id", flat=True)))
    grants.delete()
    for org in Organization.objects.filter(pk__in=org_ids).order_by("pk"):
        audit_record(
            action="model.access",
            organization=org,
            actor=actor,
            old="enabled",
            new="Nobody (retired from the catalogue)",
            model=model.name,
            display_name=model.display_name,
        )
