"""Who a single sign-on signs in (`tokens.sso.services.sso_sign_in`), from checked claims:
subject binding, domains, other organizations, bans, staff, and members created just in time
at the floors when the pool covers them (else a refusal and one alert to the admins)."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from accounts.models import Membership, SsoIdentity, User
from audit.models import AuditLog
from tests.factories import IdentityProviderFactory, MembershipFactory, UserFactory
from tokens.models import AlertSent, EmailDelivery, Notification
from tokens.sso import services
from tokens.sso.services import SsoRefused, sso_sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def idp(org_a, alice):
    org_a.min_inference_tokens, org_a.min_embedding_tokens = 100_000, 0
    org_a.save()
    return IdentityProviderFactory(organization=org_a, domains=["acme.gov"])


def claims(email: str, sub: str = "sub-1", **extra) -> dict:
    return {"sub": sub, "email": email, "email_verified": True, "name": "Pat Person", **extra}


def refusal(idp, data: dict) -> SsoRefused:
    with pytest.raises(SsoRefused) as caught:
        sso_sign_in(provider=idp, claims=data)
    return caught.value


def test_first_sign_in_matches_by_email_and_binds_the_subject(idp, org_a):
    pat = MembershipFactory(organization=org_a, user__email="pat@acme.gov").user

    assert sso_sign_in(provider=idp, claims=claims("PAT@acme.gov")) == pat

    identity = SsoIdentity.objects.get(provider=idp)
    assert (identity.user, identity.subject) == (pat, "sub-1")
    assert AuditLog.objects.filter(action="sso.linked", target_user=pat).count() == 1


def test_later_sign_ins_match_by_subject_even_when_the_address_changed(idp, org_a):
    pat = MembershipFactory(organization=org_a, user__email="pat@acme.gov").user
    sso_sign_in(provider=idp, claims=claims("pat@acme.gov"))

    assert sso_sign_in(provider=idp, claims=claims("patricia@acme.gov")) == pat
    assert SsoIdentity.objects.count() == 1


def test_a_subject_bound_to_another_user_is_refused(idp, org_a):
    MembershipFactory(organization=org_a, user__email="pat@acme.gov")
    MembershipFactory(organization=org_a, user__email="kim@acme.gov")
    sso_sign_in(provider=idp, claims=claims("pat@acme.gov", sub="one"))

    error = refusal(idp, claims("kim@acme.gov", sub="one"))

    assert error.reason == "subject_bound_to_another_user"
    assert "bound to another account" in error.message


def test_a_user_bound_to_one_subject_is_refused_with_another(idp, org_a):
    MembershipFactory(organization=org_a, user__email="pat@acme.gov")
    sso_sign_in(provider=idp, claims=claims("pat@acme.gov", sub="one"))

    assert refusal(idp, claims("pat@acme.gov", sub="two")).reason == (
        "user_bound_to_another_subject"
    )


def test_an_address_of_another_domain_is_refused_and_no_user_is_created(idp, carol):
    # carol@example.com is org B's admin: org A's IdP must not sign her in, nor create anyone.
    users = User.objects.count()

    error = refusal(idp, claims("carol@example.com"))

    assert error.reason == "domain_not_allowed"
    assert User.objects.count() == users
    assert not SsoIdentity.objects.exists()
    row = AuditLog.objects.get(action="sso.refused")
    assert (row.organization, row.details["reason"]) == (idp.organization, "domain_not_allowed")


def test_a_member_of_another_organization_is_refused(idp, org_b):
    # Even with an address of org A's domain, a user whose membership is in org B stays out.
    MembershipFactory(organization=org_b, user__email="mole@acme.gov")

    error = refusal(idp, claims("mole@acme.gov"))

    assert error.reason == "other_organization"
    assert not SsoIdentity.objects.exists()


def test_a_banned_user_is_refused(idp, org_a):
    MembershipFactory(organization=org_a, user__email="pat@acme.gov", user__is_banned=True)

    assert refusal(idp, claims("pat@acme.gov")).reason == "banned"


def test_a_staff_account_never_signs_in_through_an_organizations_idp(idp):
    UserFactory(email="sid@acme.gov", is_staff=True)

    assert refusal(idp, claims("sid@acme.gov")).reason == "staff"
    assert not SsoIdentity.objects.exists()


def test_an_unverified_address_is_refused_unless_the_provider_says_not_to_ask(idp, org_a):
    MembershipFactory(organization=org_a, user__email="pat@acme.gov")
    assert refusal(idp, claims("pat@acme.gov", email_verified=False)).reason == (
        "email_not_verified"
    )

    idp.require_verified_email = False  # Entra ID sends no email_verified claim
    idp.save()
    unverified = claims("pat@acme.gov")
    del unverified["email_verified"]
    assert sso_sign_in(provider=idp, claims=unverified).email == "pat@acme.gov"


def test_a_newcomer_becomes_a_member_at_the_floors(idp, org_a):
    user = sso_sign_in(provider=idp, claims=claims("new@acme.gov"))

    membership = Membership.objects.get(user=user)
    assert (membership.organization, membership.role) == (org_a, "member")
    assert (membership.max_inference_tokens, membership.max_embedding_tokens) == (100_000, 0)
    assert not user.has_usable_password()
    assert user.terms_accepted_at is None  # the first-sign-in page asks for the terms
    assert user.name == "Pat Person"
    actions = set(AuditLog.objects.filter(target_user=user).values_list("action", "details__via"))
    assert {("user.created", "sso"), ("membership.added", "sso"), ("sso.linked", "sso")} <= (
        actions
    )


def test_a_newcomer_is_refused_when_the_organization_creates_no_members(idp):
    idp.jit_enabled = False
    idp.save()

    error = refusal(idp, claims("new@acme.gov"))

    assert error.reason == "jit_disabled"
    assert "Ask your organization's administrator" in error.message
    assert not User.objects.filter(email="new@acme.gov").exists()


def test_a_newcomer_is_refused_when_the_pool_cannot_cover_the_floor_and_admins_hear_once(
    idp, org_a, alice
):
    org_a.min_inference_tokens = 5_000_000  # above the 4M pool
    org_a.save()

    with time_machine.travel(dt.datetime(2026, 6, 17, 10, 5, tzinfo=dt.UTC), tick=False):
        first = refusal(idp, claims("new@acme.gov"))
        refusal(idp, claims("new@acme.gov"))  # retried: no second alert within the hour
        refusal(idp, claims("other@acme.gov", sub="sub-2"))

    assert first.reason == "pool_short"
    assert "administrators have been told" in first.message
    assert not User.objects.filter(email__endswith="@acme.gov").exists()
    assert Notification.objects.filter(recipient=alice).count() == 1
    assert "new@acme.gov" in Notification.objects.get(recipient=alice).text
    assert EmailDelivery.objects.filter(kind="sso_pool_alert", to=["alice@example.com"]).count()
    assert EmailDelivery.objects.filter(kind="sso_pool_alert").count() == 1
    assert AuditLog.objects.filter(action="alert.sso_pool").count() == 1
    assert AuditLog.objects.filter(action="sso.refused").count() == 3

    with time_machine.travel(dt.datetime(2026, 6, 17, 11, 5, tzinfo=dt.UTC), tick=False):
        refusal(idp, claims("new@acme.gov"))  # an hour later the admins hear again
    assert AlertSent.objects.filter(key__startswith="sso_pool:").count() == 2


def test_a_registered_user_without_an_organization_joins_it_just_in_time(idp, org_a):
    pat = UserFactory(email="pat@acme.gov")

    assert sso_sign_in(provider=idp, claims=claims("pat@acme.gov")) == pat
    assert Membership.objects.get(user=pat).organization == org_a


def test_the_admins_alert_is_its_own_kind_and_links_to_the_users_page(client, idp, org_a, alice):
    org_a.min_inference_tokens = 5_000_000  # above the 4M pool
    org_a.save()

    refusal(idp, claims("new@acme.gov"))

    alert = Notification.objects.get(recipient=alice)
    assert alert.kind == Notification.Kind.SSO_POOL_SHORT
    assert alert.link == reverse("tokens:users")
    client.force_login(alice)
    page = client.get(reverse("member:notifications")).content.decode()
    assert f'<a href="{reverse("tokens:users")}">new@acme.gov could not join through single' in page
    assert "Free tokens on the Users page" in page
    assert "Single sign-on refused ·" in page and "Usage alert" not in page


def test_an_account_registered_before_its_owners_first_sign_in_loses_every_way_in(
    idp, org_a, client
):
    """Registration checks no mailbox: whoever registered the address first keeps nothing
    once the IdP proves it is someone else's (password, second factor, sessions)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    squatter = UserFactory(email="victim@acme.gov")  # a password of the squatter's choosing
    TOTPDevice.objects.create(user=squatter, name="theirs", confirmed=True)
    client.force_login(squatter)

    assert sso_sign_in(provider=idp, claims=claims("victim@acme.gov")) == squatter

    squatter.refresh_from_db()
    assert not squatter.has_usable_password()
    assert not TOTPDevice.objects.filter(user=squatter).exists()
    assert client.get(reverse("member:home")).status_code == 302  # the old session ended
    assert AuditLog.objects.filter(action="sso.account_reclaimed", target_user=squatter).exists()


def test_a_member_the_organization_already_had_keeps_their_password(idp, org_a):
    pat = MembershipFactory(organization=org_a, user__email="pat@acme.gov").user

    sso_sign_in(provider=idp, claims=claims("pat@acme.gov"))

    pat.refresh_from_db()
    assert pat.has_usable_password()
    assert not AuditLog.objects.filter(action="sso.account_reclaimed").exists()


# --- Claims that do not fit, and a race lost -------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        claims("pat@acme.gov", sub="s" * 256),
        claims("p" * 250 + "@acme.gov"),
    ],
    ids=["sub past 255", "email past 254"],
)
def test_a_claim_longer_than_its_column_is_refused_in_words(idp, data):
    users = User.objects.count()

    error = refusal(idp, data)

    assert error.reason == "claim_too_long"
    assert "longer than" in error.message
    assert User.objects.count() == users
    assert not SsoIdentity.objects.exists()
    assert AuditLog.objects.get(action="sso.refused").details["reason"] == "claim_too_long"


@pytest.mark.parametrize(
    "data", [claims("pat@acme.gov", sub="s\x00b"), claims("p\x00t@acme.gov")], ids=["sub", "email"]
)
def test_a_claim_with_a_nul_is_refused_in_words(idp, data):
    error = refusal(idp, data)

    assert error.reason == "claim_unusable"
    assert not SsoIdentity.objects.exists()


def test_a_name_with_a_nul_is_kept_without_it(idp):
    user = sso_sign_in(provider=idp, claims=claims("pat@acme.gov", name="Pat\x00 Person"))

    assert user.name == "Pat Person"


def test_a_claim_as_long_as_its_column_signs_in(idp):
    user = sso_sign_in(provider=idp, claims=claims("pat@acme.gov", sub="s" * 255))

    assert SsoIdentity.objects.get(user=user).subject == "s" * 255


def _first_read_misses(monkeypatch):
    """The first look-up of the identity and the user sees neither, as a sign-in does that
    read just before another committed them; later look-ups see the database."""
    real = services._known
    calls = []

    def known(*args):
        calls.append(args)
        return (None, None) if len(calls) == 1 else real(*args)

    monkeypatch.setattr(services, "_known", known)
    return calls


def test_a_sign_in_that_lost_the_race_to_create_the_user_signs_in_the_winners_user(
    idp, org_a, monkeypatch
):
    winner = sso_sign_in(provider=idp, claims=claims("ann@acme.gov", sub="sub-ann"))
    calls = _first_read_misses(monkeypatch)

    loser = sso_sign_in(provider=idp, claims=claims("ann@acme.gov", sub="sub-ann"))

    assert loser == winner and len(calls) == 2
    assert User.objects.filter(email="ann@acme.gov").count() == 1
    assert SsoIdentity.objects.filter(user=winner).count() == 1
    assert Membership.objects.filter(user=winner).count() == 1
    assert AuditLog.objects.filter(action="user.created", target_user=winner).count() == 1


def test_a_sign_in_that_loses_twice_asks_to_try_again(idp, monkeypatch):
    sso_sign_in(provider=idp, claims=claims("ann@acme.gov", sub="sub-ann"))
    monkeypatch.setattr(services, "_known", lambda *args: (None, None))

    error = refusal(idp, claims("ann@acme.gov", sub="sub-ann"))

    assert error.reason == "concurrent_sign_in"
    assert "Try again" in error.message
    assert User.objects.filter(email="ann@acme.gov").count() == 1
