"""The IdP's second factor counts only when its id_token proves it: with trust_idp_mfa on,
an SSO session is second-factor verified when the `amr` claim shows a multi-factor sign-in
(accounts.sso.amr_shows_mfa); otherwise the admin passes this site's own second factor, as
when the switch is off. End to end against the real test provider (tests/oidc_provider),
its login form filled over HTTP."""

import re
from html import unescape
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from accounts.sso_secrets import secret_store
from audit.models import AuditLog
from tests.factories import IdentityProviderFactory, MembershipFactory
from tests.tokens.sso_e2e import idp_login_over_http
from tokens.sso.client import clients_clear

pytestmark = [pytest.mark.django_db, pytest.mark.mfa]

PANEL = reverse("tokens:users")
MFA = reverse("accounts:mfa")


@pytest.fixture
def trusted_idp(oidc_provider, org_a):
    oidc_provider.reset()
    oidc_provider.add_client("amr-console", "amr-secret", "http://testserver/sso/callback/")
    clients_clear()
    return IdentityProviderFactory(
        organization=org_a,
        issuer=oidc_provider.issuer,
        client_id="amr-console",
        client_secret=secret_store("amr-secret"),
        domains=["acme.gov"],
        trust_idp_mfa=True,
    )


@pytest.fixture
def ada(org_a):
    return MembershipFactory(organization=org_a, user__email="ada@acme.gov", role="admin").user


def sign_in(client, email: str):
    page = client.post(reverse("sso:start"), {"email": email}).content.decode()
    authorize_url = unescape(re.search(r'url=([^"]+)"', page).group(1))
    callback = urlsplit(idp_login_over_http(authorize_url, email))
    response = client.get(f"{callback.path}?{callback.query}")
    assert response.status_code == 302, response.content.decode()
    return response


@pytest.mark.parametrize("amr", [["pwd", "mfa"], ["pwd", "otp"], ["hwk", "pin"]])
def test_an_amr_that_shows_a_second_factor_opens_the_panel_without_a_code(
    client, oidc_provider, trusted_idp, ada, amr
):
    oidc_provider.set_amr(amr)

    sign_in(client, "ada@acme.gov")

    assert client.get(PANEL).status_code == 200
    login = AuditLog.objects.get(action="auth.login", target_user=ada)
    assert login.details["idp_mfa"] is True


@pytest.mark.parametrize("amr", [None, ["pwd"], ["otp"]], ids=repr)
def test_without_that_proof_the_admin_passes_this_sites_second_factor(
    client, oidc_provider, trusted_idp, ada, amr
):
    oidc_provider.set_amr(amr)

    sign_in(client, "ada@acme.gov")

    response = client.get(PANEL)
    assert response.status_code == 302 and response.url.startswith(MFA)
    login = AuditLog.objects.get(action="auth.login", target_user=ada)
    assert login.details == {**login.details, "via": "sso", "idp_mfa": False}


def test_with_the_switch_off_even_an_mfa_amr_needs_this_sites_second_factor(
    client, oidc_provider, trusted_idp, ada
):
    trusted_idp.trust_idp_mfa = False
    trusted_idp.save()
    oidc_provider.set_amr(["pwd", "mfa"])

    sign_in(client, "ada@acme.gov")

    response = client.get(PANEL)
    assert response.status_code == 302 and response.url.startswith(MFA)
