"""User Management's people: invite, resend, revoke, re-role and remove, as an admin would,
with htmx and without; refusals in words (422), nothing changed; other people refused."""

import re
import time

import pytest
import time_machine
from django.db import transaction
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, SsoIdentity, User
from audit.models import AuditLog
from tests.factories import (
    IdentityProviderFactory,
    MembershipFactory,
    UserFactory,
    max_of,
    set_max,
)
from tokens.models import EmailDelivery, Invitation, MonthlyUsage
from tokens.selectors import pool_statuses
from tokens.services.invitations import invitation_create

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
USERS = reverse("tokens:users")


def invited(alice, org_a, email="nina@example.com") -> Invitation:
    return invitation_create(admin=alice, org=org_a, email=email, role="member")


# --- Invitations ----------------------------------------------------------------------------


def test_an_admin_invites_under_htmx_and_sees_the_invitation_pending(alice_client, org_a):
    response = alice_client.post(
        reverse("tokens:invite"), {"email": "nina@example.com", "role": "admin"}, headers=HX
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="invitations"') and "<html" not in html
    assert "Invitation sent to nina@example.com" in html
    assert "Resend the invitation to nina@example.com" in html
    assert Invitation.objects.get().role == "admin"
    assert EmailDelivery.objects.filter(kind="invitation").count() == 1


def test_a_refused_invitation_answers_422_with_words_and_changes_nothing(alice_client, bob):
    response = alice_client.post(
        reverse("tokens:invite"), {"email": "bob@example.com", "role": "member"}, headers=HX
    )
    assert response.status_code == 422
    assert "bob@example.com already belongs to Acme Agency." in response.content.decode()
    assert not Invitation.objects.exists()


def test_a_malformed_invitation_without_htmx_keeps_the_page_with_what_was_typed(alice_client):
    response = alice_client.post(reverse("tokens:invite"), {"email": "nina@", "role": "chief"})
    html = response.content.decode()
    assert response.status_code == 422 and "<html" in html
    assert 'value="nina@"' in html
    assert "Enter a valid email address" in html and "Choose admin, auditor or member." in html
    assert not Invitation.objects.exists()


def test_an_invitation_without_htmx_redirects_with_a_message(alice_client):
    response = alice_client.post(
        reverse("tokens:invite"), {"email": "nina@example.com", "role": "member"}, follow=True
    )
    assert response.redirect_chain[-1][0] == USERS
    assert "Invitation sent to nina@example.com" in response.content.decode()


def test_the_users_page_lists_open_invitations_only(alice_client, alice, org_a):
    pending = invited(alice, org_a)
    revoked = invited(alice, org_a, email="old@example.com")
    revoked.revoked_at = revoked.created_at
    revoked.save()

    html = alice_client.get(USERS).content.decode()

    assert pending.email in html and "Pending" in html
    assert "old@example.com" not in html


def test_resend_and_revoke_answer_the_section(alice_client, alice, org_a):
    invitation = invited(alice, org_a)
    resend = alice_client.post(
        reverse("tokens:invitation_resend", args=[invitation.pk]), headers=HX
    )
    assert resend.status_code == 200
    assert "Sent a new link to nina@example.com" in resend.content.decode()
    assert EmailDelivery.objects.filter(kind="invitation").count() == 2

    revoke = alice_client.post(
        reverse("tokens:invitation_revoke", args=[invitation.pk]), headers=HX
    )
    assert revoke.status_code == 200
    assert "Revoked the invitation to nina@example.com" in revoke.content.decode()
    again = alice_client.post(reverse("tokens:invitation_revoke", args=[invitation.pk]), headers=HX)
    assert again.status_code == 422 and "already revoked" in again.content.decode()


def test_another_organizations_admin_gets_404_for_an_invitation(client, alice, org_a, carol):
    invitation = invited(alice, org_a)
    client.force_login(carol)
    for name in ("tokens:invitation_resend", "tokens:invitation_revoke"):
        assert client.post(reverse(name, args=[invitation.pk])).status_code == 404
    invitation.refresh_from_db()
    assert invitation.is_open and EmailDelivery.objects.count() == 1


@pytest.mark.parametrize("role", ["member", "auditor"])
def test_members_and_auditors_cannot_invite(client, org_a, alice, role):
    someone = MembershipFactory(organization=org_a, role=role).user
    client.force_login(someone)
    response = client.post(reverse("tokens:invite"), {"email": "n@example.com", "role": "member"})
    assert response.status_code == 403
    assert not Invitation.objects.exists()


# --- Role and removal -----------------------------------------------------------------------


def test_an_admin_makes_a_member_an_admin_and_it_is_audited(alice_client, alice, bob):
    response = alice_client.post(
        reverse("tokens:member_role", args=[bob.pk]), {"role": "admin"}, headers=HX
    )
    assert response.status_code == 200
    assert "Bob Member is now admin." in response.content.decode()
    assert Membership.objects.get(user=bob).role == "admin"
    row = AuditLog.objects.get(action="membership.role")
    assert (row.actor, row.target_user, row.old_value, row.new_value) == (
        alice,
        bob,
        "member",
        "admin",
    )
    assert row.ip == "127.0.0.1"  # the test client's address, as for every panel write


def test_an_admin_cannot_change_their_own_role(alice_client, alice, bob):
    response = alice_client.post(
        reverse("tokens:member_role", args=[alice.pk]), {"role": "member"}, headers=HX
    )
    assert response.status_code == 422
    assert "You cannot change the role of yourself" in response.content.decode()
    assert Membership.objects.get(user=alice).role == "admin"


def test_an_unknown_role_is_refused_with_words(alice_client, bob):
    response = alice_client.post(
        reverse("tokens:member_role", args=[bob.pk]), {"role": "owner"}, headers=HX
    )
    assert response.status_code == 422
    assert "Choose admin, auditor or member." in response.content.decode()


def test_removing_a_member_returns_the_allocation_disables_and_keeps_the_history(
    alice_client, alice, bob, org_a
):
    MembershipFactory(organization=org_a)  # a third user: the account keeps 2
    set_max(bob, 900_000)
    MonthlyUsage.objects.create(
        organization=org_a, user=bob, kind="inference", month="2026-01-01", used=5
    )
    before = {p.kind: p.available for p in pool_statuses(org_a)}

    response = alice_client.post(reverse("tokens:member_remove", args=[bob.pk]), headers=HX)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Removed Bob Member (bob@example.com)" in html
    assert 'id="pool-summary"' in html  # refreshed out of band
    after = {p.kind: p.available for p in pool_statuses(org_a)}
    assert after["inference"] == before["inference"] + 900_000
    bob.refresh_from_db()
    assert bob.is_banned and not Membership.objects.filter(user=bob).exists()
    assert MonthlyUsage.objects.filter(user=bob).exists()
    removed = AuditLog.objects.get(action="membership.removed")
    assert removed.details["max_inference_tokens"] == 900_000
    assert AuditLog.objects.filter(action="user.banned", target_user=bob).exists()


def test_removal_keeps_at_least_two_users(alice_client, alice, bob):
    response = alice_client.post(reverse("tokens:member_remove", args=[bob.pk]), headers=HX)
    assert response.status_code == 422
    assert "an enterprise account needs at least 2 users" in response.content.decode()
    assert max_of(bob) == 200_000
    assert not User.objects.get(pk=bob.pk).is_banned


def test_an_admin_cannot_remove_themselves(alice_client, alice, bob, org_a):
    MembershipFactory(organization=org_a)
    response = alice_client.post(reverse("tokens:member_remove", args=[alice.pk]), headers=HX)
    assert response.status_code == 422
    assert "You cannot remove yourself" in response.content.decode()


def test_removal_without_javascript_asks_to_confirm_first(alice_client, bob, org_a):
    MembershipFactory(organization=org_a)
    url = reverse("tokens:member_remove", args=[bob.pk])
    page = alice_client.post(url)
    assert page.status_code == 200 and "Remove Bob Member?" in page.content.decode()
    assert Membership.objects.filter(user=bob).exists()

    done = alice_client.post(url, {"confirmed": "1"})
    assert done.status_code == 302 and done["Location"] == USERS
    assert not Membership.objects.filter(user=bob).exists()


def test_another_organizations_admin_cannot_re_role_or_remove(client, carol, bob):
    client.force_login(carol)
    assert (
        client.post(reverse("tokens:member_role", args=[bob.pk]), {"role": "admin"}).status_code
        == 404
    )
    assert (
        client.post(reverse("tokens:member_remove", args=[bob.pk]), {"confirmed": "1"}).status_code
        == 404
    )
    assert Membership.objects.get(user=bob).role == "member"


# --- Sign-in and second factor columns -------------------------------------------------------


def test_the_table_shows_and_filters_sign_in_and_second_factor(alice_client, alice, bob, org_a):
    TOTPDevice.objects.create(user=bob, name="app", confirmed=True)
    TOTPDevice.objects.create(user=alice, name="app", confirmed=False)  # not set up: none
    nopass = MembershipFactory(organization=org_a, user__name="Nora Nopass").user
    nopass.set_unusable_password()
    nopass.save()

    html = alice_client.get(USERS).content.decode()
    assert "Sign-in" in html and "Second factor" in html

    totp = alice_client.get(USERS, {"second_factor": "totp"}, headers=HX).content.decode()
    assert "bob@example.com" in totp and "alice@example.com" not in totp
    none = alice_client.get(USERS, {"second_factor": "none"}, headers=HX).content.decode()
    assert "alice@example.com" in none and "bob@example.com" not in none
    unset = alice_client.get(USERS, {"sign_in": "none"}, headers=HX).content.decode()
    assert "Nora Nopass" in unset and "Not set" in unset and "bob@example.com" not in unset
    ordered = alice_client.get(USERS, {"sort": "-second_factor"}, headers=HX).content.decode()
    assert ordered.index("bob@example.com") < ordered.index("alice@example.com")


def test_the_sign_in_column_shows_and_filters_single_sign_on(alice_client, bob, org_a):
    idp = IdentityProviderFactory(organization=org_a, domains=["acme.gov"])
    pat = MembershipFactory(organization=org_a, user__name="Pat Single").user
    SsoIdentity.objects.create(user=pat, provider=idp, subject="sub-pat")

    sso = alice_client.get(USERS, {"sign_in": "sso"}, headers=HX).content.decode()

    assert "Pat Single" in sso and ">SSO<" in sso and "bob@example.com" not in sso
    password = alice_client.get(USERS, {"sign_in": "password"}, headers=HX).content.decode()
    assert "bob@example.com" in password and "Pat Single" not in password


def test_an_auditor_sees_roles_as_text_and_no_remove_buttons(client, org_a, alice, bob):
    auditor = MembershipFactory(organization=org_a, role="auditor").user
    client.force_login(auditor)
    html = client.get(USERS).content.decode()
    assert "Role of Bob Member" not in html and "Remove Bob Member" not in html
    assert "Send invitation" not in html


def test_a_role_change_without_javascript_redirects_back_to_the_view(alice_client, bob):
    response = alice_client.post(
        reverse("tokens:member_role", args=[bob.pk]),
        {"role": "auditor", "next": "/panel/users/?q=bob"},
    )
    assert response.status_code == 302 and response["Location"] == "/panel/users/?q=bob"
    assert Membership.objects.get(user=bob).role == "auditor"


def test_the_admin_sees_the_same_answer_for_a_stranger_and_another_organizations_user(
    alice_client, org_a, carol
):
    """No oracle: another organization's user and a disabled account read as strangers."""
    UserFactory(email="gone@example.com", is_banned=True)
    answers, now = set(), time.time()
    for email in ("nina@example.com", "carol@example.com", "gone@example.com"):
        # Each from the same state (the list shows one invitation) on a stopped clock: the
        # list shows each invitation's expiry to the second, and posts may straddle one.
        with time_machine.travel(now, tick=False), transaction.atomic():
            response = alice_client.post(
                reverse("tokens:invite"), {"email": email, "role": "member"}, headers=HX
            )
            assert Invitation.objects.get().email == email
            transaction.set_rollback(True)
        html = response.content.decode().replace(email, "ADDRESS")
        html = re.sub(r"/invitations/\d+/", "/invitations/N/", html)
        html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
        answers.add((response.status_code, html))
    assert len(answers) == 1 and next(iter(answers))[0] == 200
