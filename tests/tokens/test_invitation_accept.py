"""The invitation link's page, as the invitee (and others) open it."""

import datetime as dt
import re

import pytest
import time_machine
from django.urls import reverse

from accounts.models import Membership, User
from tests.factories import UserFactory, set_max
from tokens.models import EmailDelivery, Invitation
from tokens.services.invitations import invitation_create, invitation_revoke

pytestmark = pytest.mark.django_db


@pytest.fixture
def link(alice, org_a):
    """The path of nina's invitation link to org A, as emailed."""
    invitation_create(admin=alice, org=org_a, email="nina@example.com", role="member")
    body = EmailDelivery.objects.get(kind="invitation").body_text
    return re.search(r"https?://[^/]+(/invitations/[^/\s]+/)", body).group(1)


REGISTRATION = {"name": "Nina New", "password": "a-long-pass-2026", "accept_terms": "on"}


def test_a_new_person_registers_accepts_the_terms_and_joins(client, link, org_a):
    page = client.get(link)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Alice Admin invites nina@example.com to join Acme Agency as member" in html
    assert 'value="nina@example.com" readonly' in html

    response = client.post(link, REGISTRATION, follow=True)

    assert response.redirect_chain[-1][0] == reverse("member:home")
    assert "Welcome to Acme Agency!" in response.content.decode()
    nina = User.objects.get(email="nina@example.com")
    assert nina.membership.organization == org_a and nina.terms_accepted_at is not None
    assert response.context["user"] == nina  # signed in


def test_registration_needs_the_terms(client, link):
    response = client.post(link, {**REGISTRATION, "accept_terms": ""})
    assert response.status_code == 422
    assert "You must accept the terms and conditions." in response.content.decode()
    assert not User.objects.filter(email="nina@example.com").exists()


def test_a_registered_person_is_asked_to_log_in_then_joins(client, link, org_a, password):
    nina = UserFactory(email="nina@example.com")
    html = client.get(link).content.decode()
    assert f"{reverse('accounts:login')}?next={link}" in html
    assert client.post(link, REGISTRATION).status_code == 200  # no form: nothing happens
    assert not Membership.objects.filter(user=nina).exists()

    client.force_login(nina)
    response = client.post(link, {})
    assert response.status_code == 302
    assert Membership.objects.get(user=nina).organization == org_a


def test_someone_signed_in_as_another_person_is_refused(client, link, bob):
    client.force_login(bob)
    response = client.post(link, {"accept_terms": "on"})
    assert response.status_code == 403
    assert "This invitation is for nina@example.com, but you are signed in as bob@example.com" in (
        response.content.decode()
    )
    assert Membership.objects.get(user=bob).organization.name == "Acme Agency"


def test_a_used_link_answers_410_in_words(client, link):
    client.post(link, REGISTRATION)
    client.logout()
    response = client.get(link)
    assert response.status_code == 410
    assert "already been used" in response.content.decode()


def test_an_expired_link_answers_410_in_words(client, link):
    with time_machine.travel(dt.timedelta(hours=73)):
        response = client.post(link, REGISTRATION)
    assert response.status_code == 410
    assert "This invitation expired on" in response.content.decode()
    assert not User.objects.filter(email="nina@example.com").exists()


def test_a_revoked_link_answers_410_in_words(client, link, alice, org_a):
    invitation_revoke(admin=alice, org=org_a, invitation_id=Invitation.objects.get().pk)
    response = client.get(link)
    assert response.status_code == 410 and "revoked" in response.content.decode()


def test_an_unknown_link_answers_404(client, db):
    response = client.get("/invitations/not-a-real-token/")
    assert response.status_code == 404
    assert "This invitation link is not valid" in response.content.decode()


def test_when_the_pool_cannot_cover_the_floor_it_says_so_and_creates_no_account(client, link, bob):
    set_max(bob, 3_700_000)
    response = client.post(link, REGISTRATION)
    assert response.status_code == 422
    assert "needs 200,000 inference tokens (200,000 each) but only 100,000 are unallocated" in (
        response.content.decode()
    )
    assert not User.objects.filter(email="nina@example.com").exists()


def test_the_link_s_secret_never_reaches_the_logs(client, alice, link, caplog):
    """Only the link's hash is stored: the access line names the route, and refusals (here:
    signed in as someone else, a 403 while the link still works) write no warning with it."""
    secret = link.rstrip("/").rsplit("/", 1)[1]
    with caplog.at_level("DEBUG"):
        assert client.get(link).status_code == 200
        client.force_login(alice)
        assert client.get(link).status_code == 403
    lines = [record.getMessage() + repr(record.__dict__) for record in caplog.records]
    assert any("invitations/<str:token>/" in line for line in lines)  # the access lines
    assert not [line for line in lines if secret in line]


@pytest.mark.parametrize("change", ["demoted", "banned"])
def test_a_link_dies_with_its_inviter_s_admin_rights(client, alice, link, org_a, change):
    """An admin being removed could otherwise invite an address of theirs and come back."""
    if change == "demoted":
        Membership.objects.filter(user=alice).update(role="member")
    else:
        User.objects.filter(pk=alice.pk).update(is_banned=True)
    page = client.get(link)
    assert page.status_code == 410
    assert "no longer administers" in page.content.decode()
    client.post(link, {**REGISTRATION})
    assert not User.objects.filter(email="nina@example.com").exists()


def test_an_invitee_held_by_another_organization_hears_why_on_the_link_page(
    client, alice, org_a, carol
):
    invitation_create(admin=alice, org=org_a, email="carol@example.com", role="member")
    body = EmailDelivery.objects.get(kind="invitation").body_text
    path = re.search(r"https?://[^/]+(/invitations/[^/\s]+/)", body).group(1)
    client.force_login(carol)
    response = client.post(path, {"accept_terms": "on"})
    assert response.status_code == 409
    html = response.content.decode()
    assert "This address already belongs to another organization" in html
    assert "Bureau of Birds" not in html.split("<main", 1)[-1].split("</main>")[0]
    assert carol.membership.organization.slug == "bureau-of-birds"
