"""The model catalogue in /staff/: sales add and retire models (audited); nobody deletes one
or renames it; staff in no group see nothing."""

from django.urls import reverse

from audit.models import AuditLog
from tests.factories import PlatformModelFactory, UserFactory
from tokens.models import ModelGrant, PlatformModel
from tokens.services.model_access import model_access_set

ADD = reverse("admin:tokens_platformmodel_add")
LIST = reverse("admin:tokens_platformmodel_changelist")


def change_url(model) -> str:
    return reverse("admin:tokens_platformmodel_change", args=[model.pk])


def test_sales_add_a_model_and_it_is_audited(client, sales):
    client.force_login(sales)
    response = client.post(
        ADD, {"name": "gpt-5", "display_name": "GPT-5", "kind": "inference", "active": "on"}
    )
    assert response.status_code == 302, response.content
    model = PlatformModel.objects.get(name="gpt-5")
    assert (model.display_name, model.kind, model.active) == ("GPT-5", "inference", True)
    entry = AuditLog.objects.get(action="model.catalogue")
    assert entry.actor == sales and entry.organization is None and entry.details["model"] == "gpt-5"


def test_retiring_a_model_in_staff_withdraws_it_from_the_organizations(client, sales, alice, org_a):
    model = PlatformModelFactory(name="o1", display_name="o1")
    model_access_set(actor=alice, org=org_a, model_name="o1", mode="roles", roles=["admin"])
    client.force_login(sales)
    response = client.post(change_url(model), {"display_name": "o1", "kind": "inference"})
    assert response.status_code == 302, response.content
    assert not PlatformModel.objects.get(pk=model.pk).active
    assert not ModelGrant.objects.filter(model_id="o1").exists()
    assert AuditLog.objects.filter(organization=org_a, action="model.access", actor=sales).exists()


def test_the_name_is_read_only_once_created_and_nothing_is_deleted(client, sales):
    model = PlatformModelFactory(name="o1")
    client.force_login(sales)
    page = client.get(change_url(model))
    assert page.status_code == 200
    assert 'name="name"' not in page.content.decode()
    client.post(change_url(model), {"name": "renamed", "display_name": "X", "kind": "inference"})
    assert PlatformModel.objects.get(pk=model.pk).name == "o1"
    delete = reverse("admin:tokens_platformmodel_delete", args=[model.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert PlatformModel.objects.filter(pk=model.pk).exists()


def test_staff_in_no_group_do_not_see_the_catalogue(client, db):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(LIST).status_code == 403
    assert (
        client.post(ADD, {"name": "x", "display_name": "x", "kind": "inference"}).status_code == 403
    )
    assert not PlatformModel.objects.exists()


def test_a_bad_kind_is_refused_with_words(client, sales):
    client.force_login(sales)
    response = client.post(ADD, {"name": "m", "display_name": "M", "kind": "training"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not PlatformModel.objects.exists()
