"""The Admin Panel's Models page (/panel/models/): the catalogue, who may use each model,
changed by admins (htmx partials, 422 refusals, audited), read by auditors."""

import pytest
from django.urls import reverse

from accounts.models import Organization
from audit.models import AuditLog
from tests.factories import MembershipFactory, PlatformModelFactory
from tokens.models import ModelGrant

PAGE = reverse("tokens:models")
ACCESS = reverse("tokens:model_access")
UNRESTRICT = reverse("tokens:models_unrestrict")


@pytest.fixture
def catalogue(db):
    return [
        PlatformModelFactory(name="gpt-4o", display_name="GPT-4o"),
        PlatformModelFactory(name="o1", display_name="o1 Reasoning"),
        PlatformModelFactory(name="retired-model", display_name="Old Model", active=False),
    ]


def grants(org) -> list[tuple[str, str]]:
    return sorted(ModelGrant.objects.filter(organization=org).values_list("model", "audience"))


def test_the_page_lists_the_active_catalogue_and_says_everything_is_allowed(
    alice_client, catalogue, django_assert_max_num_queries
):
    with django_assert_max_num_queries(20):
        response = alice_client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Every model is allowed" in html
    assert "GPT-4o" in html and "o1 Reasoning" in html and "Old Model" not in html
    assert "Change who may use o1 Reasoning" in html
    assert "Models</a>" in html


def test_the_page_under_htmx_answers_its_region_only(alice_client, catalogue):
    response = alice_client.get(PAGE, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="models"') and "<html" not in html


def test_disabling_a_model_under_htmx_answers_the_refreshed_region(
    alice_client, alice, org_a, catalogue
):
    response = alice_client.post(ACCESS, {"model": "o1", "mode": "off"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Only the enabled models" in html and "o1 may now be used by: Nobody." in html
    assert grants(org_a) == [("gpt-4o", "")]
    assert AuditLog.objects.filter(organization=org_a, action="model.access", actor=alice).exists()


def test_some_roles_or_some_members_can_be_chosen(alice_client, org_a, bob, catalogue):
    alice_client.post(ACCESS, {"model": "o1", "mode": "roles", "roles": ["admin", "member"]})
    assert ("o1", "admin") in grants(org_a) and ("o1", "member") in grants(org_a)
    alice_client.post(ACCESS, {"model": "gpt-4o", "mode": "users", "emails": "bob@example.com"})
    assert ("gpt-4o", str(bob.pk)) in grants(org_a)
    html = alice_client.get(PAGE).content.decode()
    assert "Admins, Members" in html and "bob@example.com" in html


def test_without_htmx_a_change_redirects_with_a_message(alice_client, org_a, catalogue):
    response = alice_client.post(ACCESS, {"model": "o1", "mode": "off"}, follow=True)
    assert response.redirect_chain == [(PAGE, 302)]
    assert "o1 may now be used by: Nobody." in response.content.decode()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"model": "o1", "mode": "roles"}, "Choose at least one role."),
        ({"model": "o1", "mode": "users", "emails": "nobody@example.com"}, "Not a member"),
        ({"model": "o1", "mode": "sometimes"}, "Choose one of the options."),
        ({"model": "o1"}, "Choose who may use the model."),
        ({"model": "o1", "mode": "roles", "roles": ["owner"]}, "Choose one of the options."),
        ({"model": "retired-model", "mode": "everyone"}, "not in the platform"),
        ({"model": "x" * 500, "mode": "everyone"}, "at most 100 characters"),
        ({"model": "o1\x00", "mode": "everyone"}, "NUL character"),
    ],
)
def test_a_refusal_answers_422_with_words_and_changes_nothing(
    alice_client, org_a, catalogue, data, words
):
    response = alice_client.post(ACCESS, data, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert words.lower() in response.content.decode().lower()
    assert not Organization.objects.get(pk=org_a.pk).models_restricted
    assert not ModelGrant.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="model.").exists()


def test_allowing_every_model_again_removes_the_choices(alice_client, org_a, catalogue):
    alice_client.post(ACCESS, {"model": "o1", "mode": "off"})
    response = alice_client.post(UNRESTRICT, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Every model is allowed" in response.content.decode()
    assert not ModelGrant.objects.exists()
    again = alice_client.post(UNRESTRICT, HTTP_HX_REQUEST="true")
    assert again.status_code == 422 and "already allowed" in again.content.decode()


def test_auditors_read_the_page_without_forms_and_cannot_change_it(client, org_a, catalogue):
    auditor = MembershipFactory(organization=org_a, role="auditor").user
    client.force_login(auditor)
    html = client.get(PAGE).content.decode()
    assert "GPT-4o" in html and "Change who may use" not in html
    assert client.post(ACCESS, {"model": "o1", "mode": "off"}).status_code == 403
    assert client.post(UNRESTRICT).status_code == 403
    assert not ModelGrant.objects.exists()


def test_another_organizations_admin_changes_only_their_own(client, org_a, carol, org_b, catalogue):
    client.force_login(carol)
    client.post(ACCESS, {"model": "o1", "mode": "off", "organization": org_a.pk})
    assert grants(org_a) == [] and not Organization.objects.get(pk=org_a.pk).models_restricted
    assert grants(org_b) == [("gpt-4o", "")]


def test_members_and_strangers_are_kept_out(client, bob, catalogue):
    assert client.get(PAGE).status_code == 302
    client.force_login(bob)
    assert client.get(PAGE).status_code == 403
    assert client.post(ACCESS, {"model": "o1", "mode": "off"}).status_code == 403
