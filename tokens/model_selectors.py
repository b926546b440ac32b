"""The Models page's reads: the active catalogue with who may use each model, in three
queries whatever the number of models and grants."""

from dataclasses import dataclass, field

from accounts.models import Membership, Organization, User
from tokens.models import EVERYONE, ModelGrant, PlatformModel
from tokens.services.model_access import (
    EVERYONE_MODE,
    OFF_MODE,
    ROLE_LABELS,
    ROLES_MODE,
    USERS_MODE,
    audience_words,
)


@dataclass
class ModelRow:
    name: str
    display_name: str
    kind: str
    mode: str
    words: str
    roles: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return self.mode != OFF_MODE


def model_rows(org: Organization) -> list[ModelRow]:
    """Each active catalogue model with its audience: everyone while unrestricted."""
    models = list(
        PlatformModel.objects.filter(active=True)
        .order_by("kind", "display_name", "name")
        .values_list("name", "display_name", "kind")
    )
    grants: dict[str, list[str]] = {}
    if org.models_restricted:
        for name, audience in ModelGrant.objects.filter(organization=org).values_list(
            "model_id", "audience"
        ):
            grants.setdefault(name, []).append(audience)
    ids = {int(a) for audiences in grants.values() for a in audiences if a.isdigit()}
    emails = dict(User.objects.filter(pk__in=ids).values_list("pk", "email")) if ids else {}
    emails = {str(pk): email for pk, email in emails.items()}
    rows = []
    for name, display, kind in models:
        audiences = sorted(grants.get(name, [])) if org.models_restricted else [EVERYONE]
        rows.append(_row(name, display, kind, audiences, emails))
    return rows


def _row(name, display, kind, audiences: list[str], emails: dict[str, str]) -> ModelRow:
    roles = [a for a in audiences if a in ROLE_LABELS]
    users = sorted(emails[a] for a in audiences if a in emails)
    if not audiences:
        mode = OFF_MODE
    elif EVERYONE in audiences:
        mode = EVERYONE_MODE
    elif users and not roles:
        mode = USERS_MODE
    else:
        mode = ROLES_MODE
    return ModelRow(
        name=name,
        display_name=display,
        kind=kind,
        mode=mode,
        words=audience_words(audiences, emails),
        roles=roles,
        emails=users,
    )


def display_names() -> dict[str, str]:
    """Every catalogue model's display name by its gateway name (statistics, exports)."""
    return dict(PlatformModel.objects.values_list("name", "display_name"))


def models_allowed_for(membership: Membership) -> list[dict]:
    """The catalogue's active models the member may use, in one query. Unrestricted, that is
    every active model (and a name outside the catalogue is accepted too)."""
    rows = PlatformModel.objects.filter(active=True)
    if membership.organization.models_restricted:
        rows = rows.filter(
            grants__organization_id=membership.organization_id,
            grants__audience__in=[EVERYONE, membership.role, str(membership.user_id)],
        ).distinct()
    return [
        {"name": name, "display_name": display, "kind": kind}
        for name, display, kind in rows.order_by("kind", "display_name", "name").values_list(
            "name", "display_name", "kind"
        )
    ]
