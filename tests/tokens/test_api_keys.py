"""The API Keys panel page: create (shown once), list, revoke; audited; tenant-scoped."""

import pytest
from django.urls import reverse

from accounts.models import Membership
from audit.models import AuditLog
from tokens.models import ApiKey
from tokens.services import api_keys as api_key_services
from tokens.usage_api.keys import api_key_hash

URL = reverse("tokens:api_keys")


def revoke_url(key: ApiKey) -> str:
    return reverse("tokens:api_key_revoke", args=[key.pk])


@pytest.fixture
def gateway_key(alice, org_a):
    return api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway")[0]


def test_the_page_lists_the_organizations_keys_with_prefix_and_last_use(alice_client, gateway_key):
    response = alice_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Gateway" in html and f"{gateway_key.prefix}…" in html
    assert "Never" in html  # not used yet
    assert 'aria-current="page"' in html and "API Keys" in html


def test_creating_a_key_shows_its_secret_once_and_stores_only_a_hash(alice_client, org_a):
    response = alice_client.post(URL, {"name": "Gateway production"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = response.context["secret"]
    key = ApiKey.objects.get(organization=org_a)
    assert secret.startswith("ask_") and len(secret) > 40
    assert secret in response.content.decode()
    assert key.name == "Gateway production" and secret.startswith(key.prefix)
    assert key.key_hash == api_key_hash(secret) and secret not in key.key_hash
    # Shown once: the list page never shows it again.
    assert secret not in alice_client.get(URL).content.decode()


def test_a_created_key_authenticates_at_once(alice_client, client, bob):
    secret = alice_client.post(URL, {"name": "Gateway"}).context["secret"]
    response = client.get(
        reverse("api:balance", args=["bob@example.com"]), HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert response.status_code == 200


def test_creating_a_key_is_audited(alice_client, alice, org_a):
    alice_client.post(URL, {"name": "Gateway"})
    key = ApiKey.objects.get()
    log = AuditLog.objects.get(action="api_key.created")
    assert (log.organization, log.actor) == (org_a, alice)
    assert log.details["prefix"] == key.prefix and log.details["name"] == "Gateway"
    assert log.ip == "127.0.0.1"


def test_creating_a_key_with_htmx_swaps_the_key_region(alice_client):
    response = alice_client.post(URL, {"name": "Gateway"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="api-keys"') and "<html" not in html
    assert response.context["secret"] in html


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_key_needs_a_reasonable_name(alice_client, name):
    response = alice_client.post(URL, {"name": name})
    assert response.status_code == 422
    assert "secret" not in response.context
    assert not ApiKey.objects.exists() and not AuditLog.objects.filter(action__startswith="api_key")


def test_a_name_error_is_shown_with_422_under_htmx_which_swaps(alice_client):
    # base.html's htmx-config swaps 422 (issue 14, item 5): the form shows its error.
    response = alice_client.post(URL, {"name": ""}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert 'id="api-keys"' in response.content.decode()
    assert "Give the key a name" in response.content.decode()


def test_two_active_keys_cannot_share_a_name(alice_client, gateway_key):
    response = alice_client.post(URL, {"name": "Gateway"})
    assert response.status_code == 422
    assert "already named" in response.content.decode()
    assert ApiKey.objects.count() == 1


def test_revoking_a_key_refuses_it_and_is_audited(alice_client, alice, gateway_key):
    response = alice_client.post(revoke_url(gateway_key))
    assert response.status_code == 302
    gateway_key.refresh_from_db()
    assert gateway_key.revoked_at is not None and gateway_key.revoked_by == alice
    log = AuditLog.objects.get(action="api_key.revoked")
    assert log.actor == alice and log.details["key_id"] == gateway_key.pk
    html = alice_client.get(URL).content.decode()
    assert "Revoked" in html


def test_revoking_with_htmx_answers_the_refreshed_region(alice_client, gateway_key):
    response = alice_client.post(revoke_url(gateway_key), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Revoked “Gateway”" in html


def test_revoking_twice_says_it_is_already_revoked(alice_client, gateway_key):
    alice_client.post(revoke_url(gateway_key))
    response = alice_client.post(revoke_url(gateway_key), follow=True)
    assert "already revoked" in response.content.decode()
    assert AuditLog.objects.filter(action="api_key.revoked").count() == 1


def test_a_revoked_keys_name_can_be_reused(alice_client, gateway_key):
    alice_client.post(revoke_url(gateway_key))
    assert alice_client.post(URL, {"name": "Gateway"}).status_code == 200
    assert ApiKey.objects.filter(name="Gateway").count() == 2


def test_revoke_needs_post(alice_client, gateway_key):
    assert alice_client.get(revoke_url(gateway_key)).status_code == 405


def test_carol_cannot_see_org_a_keys(client, carol, gateway_key):
    client.force_login(carol)
    html = client.get(URL).content.decode()
    assert gateway_key.prefix not in html and "<td>Gateway</td>" not in html


def test_carol_cannot_revoke_org_a_keys(client, carol, gateway_key):
    client.force_login(carol)
    assert client.post(revoke_url(gateway_key)).status_code == 404
    gateway_key.refresh_from_db()
    assert gateway_key.revoked_at is None
    assert not AuditLog.objects.filter(action="api_key.revoked").exists()


def test_members_cannot_reach_the_page(client, bob):
    client.force_login(bob)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"name": "Mine"}).status_code == 403
    assert not ApiKey.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "login" in response["Location"]


def test_auditors_see_keys_but_cannot_create_or_revoke(client, org_a, gateway_key):
    if "auditor" not in Membership.Role.values:
        pytest.fail("the auditor role is expected by this test")  # pragma: no cover
    from tests.factories import MembershipFactory

    auditor = MembershipFactory(organization=org_a, role="auditor").user
    client.force_login(auditor)
    html = client.get(URL).content.decode()
    assert gateway_key.prefix in html and "Create key" not in html and "Revoke" not in html
    assert client.post(URL, {"name": "Sneaky"}).status_code == 403
    assert client.post(revoke_url(gateway_key)).status_code == 403
    assert ApiKey.objects.count() == 1


def test_the_page_query_count_does_not_grow_with_keys(
    alice_client, alice, org_a, django_assert_max_num_queries
):
    for n in range(5):
        api_key_services.api_key_create(actor=alice, org=org_a, name=f"Key {n}")
    alice_client.get(URL)
    with django_assert_max_num_queries(12):
        alice_client.get(URL)
    for n in range(5, 25):
        api_key_services.api_key_create(actor=alice, org=org_a, name=f"Key {n}")
    with django_assert_max_num_queries(12):
        alice_client.get(URL)


def test_a_key_is_created_with_the_scopes_chosen_and_shows_them(alice_client, org_a):
    response = alice_client.post(
        URL, {"name": "Nightly script", "scopes": ["admin:read"], "scopes_shown": "on"}
    )
    assert response.status_code == 200
    key = ApiKey.objects.get(organization=org_a)
    assert key.scopes == ["admin:read"]
    assert response.context["secret"].startswith("ask_adm.")
    html = alice_client.get(URL).content.decode()
    assert "<code>admin:read</code>" in html and "Nightly script" in html


def test_the_form_offers_every_scope_with_usage_ticked(alice_client):
    html = alice_client.get(URL).content.decode()
    assert 'name="scopes" value="usage" checked' in html
    assert 'value="admin:read"' in html and 'value="admin:write"' in html


def test_no_scope_ticked_is_refused_and_nothing_is_created(alice_client, org_a):
    response = alice_client.post(URL, {"name": "Nothing", "scopes_shown": "on"})
    assert response.status_code == 422
    assert "at least one scope" in response.content.decode()
    assert not ApiKey.objects.filter(organization=org_a).exists()


def test_an_unknown_scope_is_refused(alice_client, org_a):
    response = alice_client.post(URL, {"name": "X", "scopes": ["root"], "scopes_shown": "on"})
    assert response.status_code == 422
    assert not ApiKey.objects.filter(organization=org_a).exists()


def test_the_scopes_are_in_the_creation_audit_row(alice_client):
    alice_client.post(URL, {"name": "S", "scopes": ["usage", "admin:write"], "scopes_shown": "on"})
    log = AuditLog.objects.get(action="api_key.created")
    assert log.details["scopes"] == ["usage", "admin:write"]
