"""The access-control sweep: every URL of the project, as every outsider, GET and POST.

It walks the URL resolver, fills each pattern's parameters with objects of org A, and
requests it as anonymous, bob (a member of org A), an auditor of org A, carol (admin of
org B), sam (sales staff without a second factor) and stan (staff with a second factor but in
no staff group: least privilege leaves him nothing in /staff/). The answer must be a login or
second-factor redirect, 403, 404 or 405 — never org A's private data, never a 500 — and the
database must not change. A new URL whose parameters or expectations are unknown fails the
test, so every new view is swept from the day it is added.
"""

import hashlib
import re

import pytest
from django.apps import apps
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import User
from audit.models import AuditLog
from tests.factories import (
    IdentityProviderFactory,
    MembershipFactory,
    PlatformModelFactory,
    UserFactory,
)
from tokens.models import AllocationBatch, ApiKey, Notification, TokenRequest
from tokens.services.invitations import invitation_create
from tokens.services.model_access import model_access_set

pytestmark = [pytest.mark.mfa, pytest.mark.django_db]

SECRET = "secret-sally@example.com"  # org A data that none of the visitors may see

# URLs anyone may open (their own account pages); they must still never show org A's data.
PUBLIC = {
    "accounts:login",
    "accounts:register",
    "accounts:terms",  # the visitor's own acceptance: the cast accepted already, nothing changes
    "accounts:logout",
    "accounts:password_reset",
    "accounts:password_reset_done",
    "accounts:password_reset_confirm",
    "accounts:password_reset_complete",
    "member:home",
    "accounts:mfa",
    "accounts:passkeys",  # the visitor's own passkeys and the step to add one
    "accounts:passkey_name",
    # django-otp-webauthn's ceremonies (JSON) and its script's words: the visitor's own
    # account only (tests/accounts/test_passkeys.py covers their refusals).
    "otp_webauthn:credential-registration-begin",
    "otp_webauthn:credential-registration-complete",
    "otp_webauthn:credential-authentication-begin",
    "otp_webauthn:credential-authentication-complete",
    "otp_webauthn:js-i18n-catalog",
    "member:token_request_create",
    "member:notifications",  # the visitor's own notifications only (sally's name her)
    "member:notifications_read_all",  # the visitor's own: none are unread, nothing changes
    "api:openapi",
    "api:",
    "admin:login",
    "admin:logout",
    "tokens:panel",  # a redirect to the user table, which is then checked itself
    "ops:healthz",  # load balancers' probes: "ok", or which check fails, nothing more
    "ops:readyz",
    "admin_api:openapi-json",  # the admin API's document and its Swagger UI: no data
    "admin_api:openapi-view",
    "admin_api:api-root",
}
# Answers only a scraper bearing METRICS_TOKEN (none here): 404 to everyone else.
TOKEN_ONLY = {"ops:metrics"}
# A member's own objects: the sweep's request is sally's, so every visitor (bob included, a
# member of the same organization) is refused: 403 without a membership or as an auditor,
# 404 for someone else's request.
MEMBER_OWN = {"member:token_request_cancel", "member:notification_read"}
# Sally's passkey: no one else may remove it (404, like any id that is not one's own).
OWN_PASSKEY = {"accounts:passkey_remove"}
# An invitation link: open to anyone holding it, so the sweep's made-up token must answer 404
# to everyone (the real links' refusals are tested in tests/tokens/test_invitation_accept.py).
INVITATION_LINK = {"member:invitation"}
# Single sign-on's doors: the start needs an address with an identity provider, the callback
# a sign-in this session started; the sweep's visitors have neither, so everyone reads a 400
# refusal in words (the flow itself: tests/tokens/test_sso_flow.py, tests/browser/test_sso.py).
SSO = {"sso:start", "sso:callback"}
# Parameters that carry an object of org A: carol must get 404 for them.
ORG_A_PARAMS = {
    "user_id",
    "batch_id",
    "request_id",
    "key_id",
    "email",
    "object_id",
    "invitation_id",
    "notification_id",
}
ROLES = ["anonymous", "bob", "auditor", "carol", "sam", "stan"]
# What any staff member may open in /staff/, whatever their groups: the (then empty) index and
# their own password.
STAFF_OWN = {"admin:index", "admin:password_change", "admin:password_change_done", "admin:jsi18n"}
LOGOUT = {"admin:logout", "accounts:logout"}
# Tables whose writes are the point of a visit (sessions, throttling counters, a pending
# authenticator the MFA page prepares) rather than changes to anyone's data.
VOLATILE = {
    "django_session",
    "axes_accessattempt",
    "axes_accesslog",
    "axes_accessfailurelog",
    "otp_totp_totpdevice",
    "otp_static_staticdevice",
    "otp_static_statictoken",
    # The random user handle django-otp-webauthn makes for the visitor when a passkey
    # ceremony begins (no credential, nobody else's row).
    "django_otp_webauthn_webauthnuserhandle",
    "analytics_auditlog",
    "analytics_auditchain",
    # The integrity badge moves the visitor's own chain's verified checkpoint (carol's opens
    # org B's): bookkeeping of the audit trail, like the two tables above. That no one moves
    # another organization's is tested in tests/audit/test_checkpoints.py.
    "audit_auditcheckpoint",
    # Token Statistics stores the visitor's own organization's forecast snapshot when it has
    # none (carol's stores org B's): a cache of the rollups. That another organization's is
    # neither shown nor touched is tested in tests/analytics/test_forecast_snapshots.py.
    "analytics_forecastsnapshot",
}


def walk(patterns, prefix="", namespace=None):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(
                pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace or namespace
            )
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name or ''}" if namespace else (pattern.name or "")
            yield prefix + str(pattern.pattern), name


def fill(route: str, values: dict) -> tuple[str, set[str]]:
    """Replace <conv:name> and (?P<name>…) with values; returns the path and the names used."""
    used = set()

    def sub(match):
        name = match.group("name")
        used.add(name)
        if name not in values:
            raise AssertionError(f"the sweep has no value for <{name}> in {route!r}: add one")
        return str(values[name])

    path = re.sub(r"<(?:\w+:)?(?P<name>\w+)>", sub, route)
    path = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", sub, path)
    path = path.replace("^", "").replace("$", "").replace("\\", "")
    return "/" + path, used


def snapshot() -> dict[str, str]:
    """A digest of every table's rows, by table."""
    tables = {}
    for model in apps.get_models():
        if model._meta.db_table in VOLATILE:
            continue
        rows = list(model._default_manager.order_by("pk").values_list())
        tables[model._meta.db_table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return tables


def verified(user) -> Client:
    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    request = type("R", (), {"session": client.session, "user": user})()
    otp_login(request, device)
    request.session.save()
    return client


@pytest.fixture
def cast(org_a, alice, bob, carol, sam):
    sally = MembershipFactory(
        organization=org_a, user__email=SECRET, user__name="Secret Sally"
    ).user
    auditor = MembershipFactory(organization=org_a, role="auditor").user
    batch = AllocationBatch.objects.create(
        organization=org_a,
        actor=alice,
        column="max_inference_tokens",
        changes=[{"user": sally.pk, "old": 200_000, "new": 200_000}],
    )
    request = TokenRequest.objects.create(
        organization=org_a,
        user=sally,
        kind="inference",
        amount=100_000,
        reason="more",
        current_max=200_000,
    )
    notification = Notification.objects.create(
        recipient=sally,
        organization=org_a,
        kind="request_denied",
        text=f"Your request was denied ({SECRET})",
        key="sweep",
    )
    key = ApiKey.objects.create(
        organization=org_a, name="gateway", prefix="ak_x", key_hash="x" * 64
    )
    # Org A restricts its models, one of them to sally alone: the Models page shows her email.
    model_access_set(
        actor=alice,
        org=org_a,
        model_name=PlatformModelFactory(name="o1").name,
        mode="users",
        emails=[SECRET],
    )
    invitation = invitation_create(
        admin=alice, org=org_a, email="invited@example.com", role="admin"
    )
    # Org A signs in through an identity provider: its /staff/ page is swept too.
    IdentityProviderFactory(organization=org_a, domains=["acme.gov"], sso_required=True)
    sallys_passkey = WebAuthnCredential.objects.create(
        user=sally, name="Sally's key", credential_id=b"sally", public_key=b"k", confirmed=True
    )
    bob_client = Client()
    bob_client.force_login(bob)
    sam_client = Client()
    sam_client.force_login(sam)
    stan = UserFactory(email="stan@example.com", name="Stan Staff", is_staff=True)
    clients = {
        "anonymous": Client(),
        "bob": bob_client,
        "auditor": verified(auditor),
        "carol": verified(carol),
        "sam": sam_client,
        "stan": verified(stan),
    }
    values = {
        "user_id": sally.pk,
        "batch_id": batch.pk,
        "request_id": request.pk,
        "notification_id": notification.pk,
        "key_id": key.pk,
        "invitation_id": invitation.pk,
        "passkey_id": sallys_passkey.pk,
        "email": SECRET,
        "column": "max_inference_tokens",
        "flag": "banned",
        "what": "users",
        "uidb64": "MQ",
        "token": "set-password",
        "rest": "nothing-here",
        "object_id": sally.pk,
        "app_label": "accounts",
        "content_type_id": "1",
        "url": "nothing",
        "pk": 1,
        "id": 1,
    }
    return clients, values, stan


def expected(name: str, path: str, role: str, method: str, used: set[str]) -> set[int] | None:
    """The allowed status codes, or None when any non-500 answer is fine (own pages)."""
    if name in PUBLIC:
        return None
    if name in TOKEN_ONLY:
        return {404}
    if name in INVITATION_LINK:
        return {404}
    if name in SSO:
        return {400}
    if name in OWN_PASSKEY:
        return {302, 405} if role == "anonymous" else {404, 405}
    if name in MEMBER_OWN:
        return {302, 405} if role == "anonymous" else {403, 404, 405}
    if path.startswith("/staff/") and role == "stan":
        # Django's unnamed redirects (<id>/ to <id>/change/, a slash), and a missing object's
        # history, which Django answers with a redirect to the index before any check.
        if name == "admin:" or name.endswith("_history"):
            return {302, 403, 404, 405}
        return None if name in STAFF_OWN else {403, 404, 405}
    if path.startswith("/staff/"):
        return {302}  # admin login, or the second factor for sam
    if name.startswith("api:"):
        return {401, 404, 405}
    if name.startswith("scim:"):
        return {401}  # a session is not a SCIM token: tests/tokens/test_scim.py
    if name.startswith("admin_api:"):
        return {401, 405}  # a session is not a key: tests/security/test_admin_api_sweep.py
    if role == "anonymous":
        return {302, 405}
    if role in {"bob", "sam", "stan"}:
        return {403, 405}
    if role == "auditor":
        return None if method == "GET" else {403, 405}
    if role == "carol":
        return {404, 405} if used & ORG_A_PARAMS else None
    raise AssertionError(f"no expectation for {name} as {role}")


def test_every_url_refuses_every_outsider(cast):
    clients, values, stan = cast
    routes = list(walk(get_resolver().url_patterns))
    before = snapshot()
    stans_last_login = User.objects.get(pk=stan.pk).last_login
    audit_before = set(AuditLog.objects.values_list("pk", flat=True))
    checked = 0
    problems = []
    for route, name in routes:
        path, used = fill(route, values)
        for role in ROLES:
            for method in ("GET", "POST"):
                client = clients[role]
                response = getattr(client, method.lower())(path, follow=False)
                body = b"" if getattr(response, "streaming", False) else response.content
                if getattr(response, "streaming", False):
                    body = b"".join(response.streaming_content)
                allowed = expected(name, path, role, method, used)
                status = response.status_code
                if status >= 500:
                    problems.append(f"{method} {path} as {role}: {status}")
                elif allowed is not None and status not in allowed:
                    problems.append(f"{method} {path} as {role}: {status}, expected {allowed}")
                if SECRET.encode() in body and not (role == "auditor" and method == "GET"):
                    problems.append(f"{method} {path} as {role}: shows org A's data")
                checked += 1
                if role == "anonymous":
                    client.cookies.clear()
                elif role == "stan" and name in LOGOUT:
                    # The rest of /staff/ as him again; logging in is not a change to check.
                    clients["stan"] = verified(stan)
                    User.objects.filter(pk=stan.pk).update(last_login=stans_last_login)
    assert not problems, "\n".join(problems)
    changed = [table for table, digest in snapshot().items() if before.get(table) != digest]
    assert not changed, f"an outsider's request changed {changed}"
    new_actions = set(
        AuditLog.objects.exclude(pk__in=audit_before).values_list("action", flat=True)
    )
    # A refused attempt in /staff/ (stan posting a password) is recorded: "staff.denied".
    allowed_actions = {"login.failed", "mfa.failed", "export.csv", "staff.denied"}
    assert new_actions <= allowed_actions, new_actions
    assert checked == len(routes) * len(ROLES) * 2
    print(f"swept {len(routes)} URL patterns × {len(ROLES)} roles × GET/POST = {checked}")
