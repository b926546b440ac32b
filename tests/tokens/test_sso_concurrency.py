"""First sign-ins racing (real threads, each on its own connection): the organization row
lock makes them take turns, so the pool's last tokens go to one newcomer, and one person
signing in twice at once becomes one user."""

import pytest

from accounts.models import Membership, SsoIdentity, User
from tests.concurrency import run_together
from tests.factories import IdentityProviderFactory
from tokens.sso.services import SsoRefused, sso_sign_in

# Pinned mid-month: the pool check reads this month's purchases.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("mid_month")]


@pytest.fixture
def idp(org_a, alice):
    # 4M inference pool, alice holds 200k: room for one newcomer at a 2M floor, not two.
    org_a.min_inference_tokens, org_a.min_embedding_tokens = 2_000_000, 0
    org_a.save()
    return IdentityProviderFactory(organization=org_a, domains=["acme.gov"])


def signing_in(idp, email: str, sub: str):
    def work():
        claims = {"sub": sub, "email": email, "email_verified": True}
        try:
            return sso_sign_in(provider=idp, claims=claims).email
        except SsoRefused as exc:
            return f"refused: {exc.reason}"

    return work


def test_two_newcomers_racing_for_the_last_tokens_one_joins(idp, org_a):
    outcomes = run_together(
        signing_in(idp, "ann@acme.gov", "sub-ann"), signing_in(idp, "ben@acme.gov", "sub-ben")
    )

    results = sorted(result for _ok, result in outcomes)
    assert [o[0] for o in outcomes] == ["ok", "ok"], outcomes
    assert results[1] == "refused: pool_short" and results[0] in {"ann@acme.gov", "ben@acme.gov"}
    assert (
        Membership.objects.filter(organization=org_a, user__email__endswith="acme.gov").count() == 1
    )
    assert User.objects.filter(email__endswith="@acme.gov").count() == 1


def test_one_person_signing_in_twice_at_once_becomes_one_user(idp):
    outcomes = run_together(
        signing_in(idp, "ann@acme.gov", "sub-ann"), signing_in(idp, "ann@acme.gov", "sub-ann")
    )

    assert outcomes == [("ok", "ann@acme.gov"), ("ok", "ann@acme.gov")], outcomes
    assert User.objects.filter(email="ann@acme.gov").count() == 1
    assert SsoIdentity.objects.count() == 1
