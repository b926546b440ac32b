"""Single sign-on's identity side: routing an address to its provider from the login page,
"SSO required" against every password door (staff exempt: break-glass), secrets at rest,
the /staff/ page that configures a provider, the SSO session's second factor and the
user table's sign-in column."""

import pytest
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import reverse

from accounts.backends import EmailBackend
from accounts.mfa import session_verified
from accounts.models import IdentityProvider, IdentityProviderDomain, SsoIdentity, User
from accounts.sign_in import sign_in_method
from accounts.sso import (
    SSO_MFA_KEY,
    SSO_REQUIRED_MESSAGE,
    amr_shows_mfa,
    provider_for_email,
    sso_required_for,
)
from accounts.sso_secrets import SecretUnavailable, secret_read, secret_rotate, secret_store
from audit.models import AuditLog
from tests.factories import PASSWORD, IdentityProviderFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = reverse("accounts:login")
ADD_URL = reverse("admin:accounts_identityprovider_add")


@pytest.fixture
def idp(org_a):
    return IdentityProviderFactory(organization=org_a, domains=["acme.gov"])


@pytest.fixture
def pat(org_a):
    return MembershipFactory(organization=org_a, user__email="pat@acme.gov").user


# --- Routing from the login page ----------------------------------------------------------


def test_an_address_routes_to_the_enabled_provider_of_its_domain(idp, org_b):
    IdentityProviderFactory(organization=org_b, domains=["birds.gov"], enabled=False)

    assert provider_for_email("Pat@ACME.gov") == idp
    assert provider_for_email("pat@birds.gov") is None  # disabled
    assert provider_for_email("pat@elsewhere.gov") is None


def test_the_email_alone_goes_to_single_sign_on(client, idp):
    response = client.post(LOGIN, {"username": "pat@acme.gov", "password": "", "next": "/x/"})

    assert response.status_code == 302
    assert response.url == reverse("sso:start")  # the address rides in the session, not the URL
    assert client.session["sso_start"] == {"email": "pat@acme.gov", "next": "/x/"}


def test_the_continue_button_goes_to_single_sign_on_even_with_a_password(client, idp):
    response = client.post(LOGIN, {"username": "pat@acme.gov", "password": "x", "sso": "1"})

    assert response.status_code == 302 and response.url.startswith(reverse("sso:start"))


def test_an_unknown_domain_without_a_password_is_asked_for_it(client, idp):
    response = client.post(LOGIN, {"username": "pat@elsewhere.gov", "password": ""})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()


def test_the_continue_button_with_an_unknown_domain_says_so(client, idp):
    response = client.post(LOGIN, {"username": "pat@elsewhere.gov", "sso": "1"})

    assert response.status_code == 200
    assert "No single sign-on is set up for this address" in response.content.decode()


def test_after_no_sso_for_the_domain_the_cursor_waits_in_the_password(client, idp):
    page = client.post(LOGIN, {"username": "pat@elsewhere.gov", "sso": "1"}).content.decode()

    username = page.split('name="username"', 1)[1].split(">", 1)[0]
    password = page.split('name="password"', 1)[1].split(">", 1)[0]
    assert "autofocus" not in username and "autofocus" in password


def test_the_login_page_offers_single_sign_on_without_requiring_a_password(client):
    page = client.get(LOGIN).content.decode()

    assert "Continue with single sign-on" in page
    assert 'name="password" autocomplete="current-password" required' not in page
    assert 'type="password" name="password" autocomplete="current-password" id=' in page


# --- SSO required -------------------------------------------------------------------------


def test_a_password_login_is_refused_in_words_when_sso_is_required(client, idp, pat):
    idp.sso_required = True
    idp.save()

    response = client.post(LOGIN, {"username": "pat@acme.gov", "password": PASSWORD})

    assert response.status_code == 200
    assert SSO_REQUIRED_MESSAGE.replace("'", "&#x27;") in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert EmailBackend().authenticate(None, username="pat@acme.gov", password=PASSWORD) is None


def test_a_session_single_sign_on_opened_lasts_while_sso_is_required(client, idp, pat):
    idp.sso_required = True
    idp.save()
    client.force_login(pat, backend="accounts.backends.EmailBackend")

    response = client.get(reverse("member:home"))

    assert response.status_code == 200
    assert response.wsgi_request.user == pat


def test_a_password_login_works_while_sso_is_optional(client, idp, pat):
    response = client.post(LOGIN, {"username": "pat@acme.gov", "password": PASSWORD})

    assert response.status_code == 302 and response.url == reverse("member:home")


def test_staff_are_never_held_to_sso_required(client, idp):
    # Break-glass: sales sign in with their own password (+ second factor) whatever the IdP.
    idp.sso_required = True
    idp.save()
    sid = UserFactory(email="sid@acme.gov", is_staff=True)

    assert not sso_required_for(sid)
    assert EmailBackend().authenticate(None, username="sid@acme.gov", password=PASSWORD) == sid


def test_no_password_reset_is_sent_to_a_member_who_must_use_sso(client, idp, pat, mailoutbox):
    idp.sso_required = True
    idp.save()

    response = client.post(reverse("accounts:password_reset"), {"email": "pat@acme.gov"})

    assert response.url == reverse("accounts:password_reset_done")  # reads as for anyone
    assert mailoutbox == []


# --- Secrets ------------------------------------------------------------------------------


def test_a_secret_is_stored_encrypted_and_reads_back(idp):
    stored = secret_store("top-secret-value")

    assert "top-secret-value" not in stored
    assert secret_read(stored) == "top-secret-value"


def test_a_secret_survives_a_secret_key_rotation_through_the_fallbacks(settings):
    settings.SECRET_KEY = "old-key-" + "x" * 50
    stored = secret_store("top-secret-value")
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = (
        "new-key-" + "y" * 50,
        [settings.SECRET_KEY],
    )

    assert secret_read(stored) == "top-secret-value"
    rotated = secret_rotate(stored)
    settings.SECRET_KEY_FALLBACKS = []
    assert secret_read(rotated) == "top-secret-value"
    with pytest.raises(SecretUnavailable):
        secret_read(stored)


def test_an_env_reference_is_read_from_the_environment_at_sign_in(monkeypatch):
    stored = secret_store("env:OIDC_ACME_SECRET")
    assert stored == "env:OIDC_ACME_SECRET"
    with pytest.raises(SecretUnavailable, match="OIDC_ACME_SECRET is not set"):
        secret_read(stored)

    monkeypatch.setenv("OIDC_ACME_SECRET", "from-the-vault")
    assert secret_read(stored) == "from-the-vault"


# --- The /staff/ page ---------------------------------------------------------------------


def provider_form(org, **overrides) -> dict:
    data = {
        "organization": org.pk,
        "enabled": "on",
        "issuer": "https://login.acme.gov/realms/acme",
        "client_id": "console",
        "secret": "shh-its-a-secret",
        "domains": "acme.gov\nAgency.Acme.gov",
        "jit_enabled": "on",
        "require_verified_email": "on",
        "trust_idp_mfa": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_sales_configure_a_provider_audited_with_the_secret_encrypted(client, sales, org_a):
    client.force_login(sales)

    response = client.post(ADD_URL, provider_form(org_a))

    assert response.status_code == 302, response.content.decode()[:2000]
    idp = IdentityProvider.objects.get(organization=org_a)
    assert "shh-its-a-secret" not in idp.client_secret
    assert secret_read(idp.client_secret) == "shh-its-a-secret"
    assert sorted(idp.domains.values_list("domain", flat=True)) == [
        "acme.gov",
        "agency.acme.gov",
    ]
    row = AuditLog.objects.get(action="sso.configured")
    assert (row.actor, row.organization, row.column) == (sales, org_a, "created")
    assert "shh-its-a-secret" not in str(row.details) + row.new_value


def test_the_secret_is_write_only_and_a_blank_keeps_the_stored_one(staff_client, idp):
    url = reverse("admin:accounts_identityprovider_change", args=[idp.pk])
    stored = idp.client_secret

    page = staff_client.get(url).content.decode()
    assert stored not in page and "s3cret" not in page
    assert "/sso/callback/" in page  # the redirect URI to register at the IdP

    data = provider_form(
        idp.organization,
        issuer=idp.issuer,
        client_id=idp.client_id,
        secret="",
        domains="acme.gov",
        sso_required="on",
    )
    response = staff_client.post(url, data)

    assert response.status_code == 302
    idp.refresh_from_db()
    assert idp.client_secret == stored and idp.sso_required
    row = AuditLog.objects.filter(action="sso.configured").latest("id")
    assert "sso_required" in row.column and "client_secret" not in row.column


def test_saving_a_provider_re_encrypts_its_secret_under_the_new_secret_key(
    client, sam, settings, org_a
):
    settings.SECRET_KEY = "old-key-" + "x" * 50
    idp = IdentityProviderFactory(organization=org_a, domains=["acme.gov"])
    old = idp.client_secret
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = (
        "new-key-" + "y" * 50,
        [settings.SECRET_KEY],
    )
    url = reverse("admin:accounts_identityprovider_change", args=[idp.pk])
    client.force_login(sam)

    same = {"issuer": idp.issuer, "client_id": idp.client_id}
    client.post(url, provider_form(org_a, secret="", domains="acme.gov", **same))

    idp.refresh_from_db()
    settings.SECRET_KEY_FALLBACKS = []
    assert idp.client_secret != old
    assert secret_read(idp.client_secret) == "s3cret"


def test_a_domain_of_another_organization_is_refused_in_words(staff_client, idp, org_b):
    response = staff_client.post(ADD_URL, provider_form(org_b, domains="birds.gov\nACME.gov"))

    assert response.status_code == 200
    assert "acme.gov is already used by the single sign-on of another organization." in (
        response.content.decode()
    )
    assert not IdentityProvider.objects.filter(organization=org_b).exists()
    assert IdentityProviderDomain.objects.get(domain="acme.gov").provider == idp


@pytest.mark.parametrize(
    ("issuer", "accepted"),
    [
        ("https://login.microsoftonline.com/tenant-id/v2.0", True),
        ("http://127.0.0.1:9000", True),
        ("http://localhost:9000/oidc", True),
        ("http://[::1]:9000", True),
        ("http://idp.acme.gov", False),
        ("ftp://idp.acme.gov", False),
    ],
)
def test_the_issuer_must_be_https_except_on_loopback(staff_client, org_a, issuer, accepted):
    response = staff_client.post(ADD_URL, provider_form(org_a, issuer=issuer))

    assert (response.status_code == 302) is accepted
    if not accepted:
        assert "The issuer must be an https:// URL" in response.content.decode()


def test_a_domain_that_is_not_one_is_refused(staff_client, org_a):
    response = staff_client.post(ADD_URL, provider_form(org_a, domains="acme.gov\nnot a domain"))

    assert response.status_code == 200
    assert "“not” is not a domain name" in response.content.decode()


def test_the_sales_group_may_add_and_change_providers_but_never_delete(sales):
    perms = {p.codename for p in Group.objects.get(name="Sales").permissions.all()}

    assert {"view_identityprovider", "add_identityprovider", "change_identityprovider"} <= perms
    assert "delete_identityprovider" not in perms


# --- Second factor and the sign-in column -------------------------------------------------


def sso_request(user, provider_id, *, idp_mfa=True):
    """A session single sign-on opened; `idp_mfa`: the id_token's amr showed a second factor."""
    request = RequestFactory().get("/")
    request.user, request.session = user, {"sso_provider": provider_id}
    if idp_mfa:
        request.session[SSO_MFA_KEY] = True
    request.user.is_verified = lambda: False
    return request


def test_an_sso_session_counts_as_verified_when_the_organization_trusts_its_idp(idp, alice, carol):
    assert session_verified(sso_request(alice, idp.pk))
    assert not session_verified(sso_request(carol, idp.pk))  # not this provider's org
    idp.trust_idp_mfa = False
    idp.save()
    assert not session_verified(sso_request(alice, idp.pk))


def test_a_trusted_idp_counts_only_when_its_amr_showed_a_second_factor(idp, alice):
    assert idp.trust_idp_mfa
    assert not session_verified(sso_request(alice, idp.pk, idp_mfa=False))


@pytest.mark.parametrize(
    ("amr", "shows"),
    [
        (["pwd", "mfa"], True),  # Entra ID
        (["mfa"], True),
        (["pwd", "mfa", "otp"], True),  # Okta
        (["pwd", "otp"], True),  # Keycloak's amr mapper
        (["hwk", "pin"], True),
        (["sc", "pin"], True),
        (["pwd", "swk"], True),
        (["pwd", "kba"], True),  # two distinct methods
        (["pwd"], False),
        (["otp"], False),
        (["otp", "otp"], False),
        ([], False),
        (None, False),
        ("mfa", False),  # not a list
        ({"mfa": True}, False),
        ([5, "pwd"], False),
        (["pwd", ""], False),
    ],
)
def test_the_amr_rule_for_a_multi_factor_sign_in(amr, shows):
    assert amr_shows_mfa(amr) is shows


def test_the_sign_in_column_says_sso_for_bound_users_and_sso_required_members(idp, pat, bob):
    def method(user):
        return User.objects.annotate(m=sign_in_method()).get(pk=user.pk).m

    assert method(pat) == "password"
    SsoIdentity.objects.create(user=pat, provider=idp, subject="s")
    assert method(pat) == "sso"
    assert method(bob) == "password"
    idp.sso_required = True
    idp.save()
    assert method(bob) == "sso"


# --- The provider's pages in /staff/ ------------------------------------------------------


def test_the_provider_page_says_a_secret_is_stored_never_what_it_is(staff_client, idp, org_b):
    url = reverse("admin:accounts_identityprovider_change", args=[idp.pk])
    assert "Stored: an encrypted secret." in staff_client.get(url).content.decode()

    env = IdentityProviderFactory(organization=org_b, client_secret="env:OIDC_BIRDS_SECRET")
    url = reverse("admin:accounts_identityprovider_change", args=[env.pk])
    assert "Stored: env:OIDC_BIRDS_SECRET." in staff_client.get(url).content.decode()


def test_a_new_provider_marks_its_secret_required_and_shows_no_dates_yet(staff_client, org_a):
    page = staff_client.get(ADD_URL).content.decode()

    assert '<label class="required" for="id_secret">' in page
    assert "Client ID" in page and "redirect uri to register at the idp" in page.lower()
    assert "Created at" not in page and "Updated at" not in page
    response = staff_client.post(ADD_URL, provider_form(org_a, secret=""))
    assert "Enter the client secret the identity provider gave." in response.content.decode()
    assert not IdentityProvider.objects.exists()


def test_the_providers_list_is_named_in_the_plural(staff_client, idp):
    url = reverse("admin:accounts_identityprovider_changelist")
    page = staff_client.get(url).content.decode()

    assert "Identity providers (SSO)" in page and "provider (SSO)s" not in page


# --- What sales may not do with a provider (the review of 2026-12-02) ---------------------


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "OIDC", "OIDC_A-B"])
def test_a_secret_reference_may_only_name_an_oidc_variable(staff_client, org_a, monkeypatch, name):
    monkeypatch.setenv(name, "the server's own secret")

    response = staff_client.post(ADD_URL, provider_form(org_a, secret=f"env:{name}"))

    assert response.status_code == 200
    assert "starts with OIDC_" in response.content.decode()
    assert not IdentityProvider.objects.exists()
    with pytest.raises(SecretUnavailable, match="may hold a client secret"):
        secret_read(f"env:{name}")  # a reference stored before this rule: never read


def test_a_new_issuer_or_client_id_needs_the_secret_typed_again(staff_client, idp):
    url = reverse("admin:accounts_identityprovider_change", args=[idp.pk])
    stored = idp.client_secret
    same = {"issuer": idp.issuer, "client_id": idp.client_id, "domains": "acme.gov"}

    for moved in ({"issuer": "https://evil.example"}, {"client_id": "another"}):
        response = staff_client.post(
            url, provider_form(idp.organization, **{**same, **moved}, secret="")
        )
        assert response.status_code == 200
        assert "type the client secret again" in response.content.decode()
        idp.refresh_from_db()
        assert (idp.issuer, idp.client_id, idp.client_secret) == (
            same["issuer"],
            same["client_id"],
            stored,
        )

    data = provider_form(
        idp.organization, **{**same, "issuer": "https://new.example"}, secret="new"
    )
    assert staff_client.post(url, data).status_code == 302
    idp.refresh_from_db()
    assert (idp.issuer, secret_read(idp.client_secret)) == ("https://new.example", "new")


def test_a_new_issuer_unbinds_every_identity_of_the_provider_audited(
    staff_client, idp, pat, carol, org_b
):
    """Subjects are the issuer's: the new one's `sub` for one person may be the old one's for
    another. Everyone binds again at their next sign-in, by their verified email."""
    other = IdentityProviderFactory(organization=org_b, domains=["birds.gov"])
    SsoIdentity.objects.create(user=pat, provider=idp, subject="pat-at-old")
    kept = SsoIdentity.objects.create(user=carol, provider=other, subject="carol-elsewhere")
    url = reverse("admin:accounts_identityprovider_change", args=[idp.pk])
    data = provider_form(
        idp.organization, issuer="https://new.example", client_id=idp.client_id, domains="acme.gov"
    )

    assert staff_client.post(url, data).status_code == 302

    assert list(SsoIdentity.objects.all()) == [kept]
    row = AuditLog.objects.get(action="sso.identities_unlinked")
    assert (row.old_value, row.new_value) == ("https://idp.example.net", "https://new.example")
    assert row.details["count"] == 1 and row.organization == idp.organization


def test_a_save_that_keeps_the_issuer_keeps_the_identities(staff_client, idp, pat):
    SsoIdentity.objects.create(user=pat, provider=idp, subject="pat-at-idp")
    url = reverse("admin:accounts_identityprovider_change", args=[idp.pk])
    data = provider_form(
        idp.organization,
        issuer=idp.issuer + "/",
        client_id=idp.client_id,
        secret="",
        domains="acme.gov",
        sso_required="on",
    )

    assert staff_client.post(url, data).status_code == 302

    assert SsoIdentity.objects.filter(user=pat).exists()
    assert not AuditLog.objects.filter(action="sso.identities_unlinked").exists()


def test_the_trust_switch_says_it_needs_the_idps_amr(staff_client, idp):
    url = reverse("admin:accounts_identityprovider_change", args=[idp.pk])

    page = staff_client.get(url).content.decode()

    assert "only when the IdP's id_token shows a multi-factor sign-in" in page
    assert "Keycloak needs an “amr” mapper" in page


def test_an_address_of_an_sso_domain_cannot_be_registered(client, idp):
    response = client.post(
        reverse("accounts:register"),
        {
            "email": "victim@acme.gov",
            "name": "Not Victim",
            "password": "a-long-enough-password-2026",
            "accept_terms": "on",
        },
    )

    assert response.status_code == 200
    assert "signs in through single sign-on" in response.content.decode()
    assert not User.objects.filter(email__iexact="victim@acme.gov").exists()
