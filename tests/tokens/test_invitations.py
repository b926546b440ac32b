"""Invitations, as services: an admin invites by email; the link joins once, before it expires.

The same rules as provisioning (a free person, the pool covering the floors), refused with
words; every write audited; the link's secret never stored.
"""

import datetime as dt
import re

import pytest
import time_machine
from django.utils import timezone

from accounts.models import Membership, User
from asksage_admin.lib.errors import DomainError
from audit.models import AuditLog
from tests.factories import MembershipFactory, UserFactory, set_max
from tokens.models import EmailDelivery, Invitation
from tokens.services.invitations import (
    invitation_accept,
    invitation_accept_registering,
    invitation_create,
    invitation_resend,
    invitation_revoke,
    invitation_token_hash,
)

pytestmark = pytest.mark.django_db


def start() -> dt.datetime:
    """Now, to the minute: the pools are bought from this month on, so the clock is pinned
    here (not a fixed date) and the link's expiry is counted from it."""
    return timezone.now().replace(second=0, microsecond=0)


def link_token(invitation: Invitation) -> str:
    """The secret of the last link emailed for this invitation (read back from the outbox)."""
    delivery = EmailDelivery.objects.filter(kind="invitation", to=[invitation.email]).latest("pk")
    return re.search(r"/invitations/([^/\s]+)/", delivery.body_text).group(1)


def invite(alice, org_a, email="nina@example.com", role="member") -> tuple[Invitation, str]:
    invitation = invitation_create(admin=alice, org=org_a, email=email, role=role)
    return invitation, link_token(invitation)


def refusal(call) -> str:
    with pytest.raises(DomainError) as caught:
        call()
    return " ".join(caught.value.messages)


def test_an_invitation_emails_a_link_whose_secret_is_stored_only_hashed(alice, org_a):
    invitation, token = invite(alice, org_a, email="  Nina@Example.com ")

    assert invitation.email == "nina@example.com"
    assert invitation.token_hash == invitation_token_hash(token) != token
    assert not Invitation.objects.filter(token_hash=token).exists()
    delivery = EmailDelivery.objects.get(kind="invitation")
    assert delivery.to == ["nina@example.com"]
    assert delivery.subject == "Alice Admin invites you to join Acme Agency"
    assert "expires on" in delivery.body_text
    row = AuditLog.objects.get(action="invitation.sent")
    assert (row.actor, row.organization, row.new_value) == (alice, org_a, "member")
    assert row.details["email"] == "nina@example.com"


def test_the_link_expires_after_the_configured_lifetime(alice, org_a, settings):
    settings.INVITATION_TTL_HOURS = 72
    when = start()
    with time_machine.travel(when, tick=False):
        invitation, _ = invite(alice, org_a)
    assert invitation.expires_at == when + dt.timedelta(hours=72)


@pytest.mark.parametrize(
    ("email", "role", "words"),
    [
        ("not-an-email", "member", "“not-an-email” is not a valid email address."),
        ("nina@example.com", "owner", "Unknown role “owner”"),
        ("bob@example.com", "member", "bob@example.com already belongs to Acme Agency."),
    ],
)
def test_it_refuses_a_bad_address_a_bad_role_or_a_member_with_words(
    alice, bob, org_a, email, role, words
):
    assert words in refusal(
        lambda: invitation_create(admin=alice, org=org_a, email=email, role=role)
    )
    assert not Invitation.objects.exists() and not EmailDelivery.objects.exists()


@pytest.mark.parametrize("who", ["another organization's user", "a disabled account"])
def test_an_address_taken_elsewhere_or_disabled_is_invited_like_a_stranger(
    alice, org_a, carol, who
):
    """Refusing at invite time would tell any admin who uses the platform elsewhere."""
    email = "carol@example.com" if who.startswith("another") else "gone@example.com"
    if who == "a disabled account":
        UserFactory(email=email, is_banned=True)
    invitation, _ = invite(alice, org_a, email=email)
    stranger, _ = invite(alice, org_a, email="nina@example.com")
    assert (
        (invitation.status, invitation.role)
        == (stranger.status, stranger.role)
        == (
            "pending",
            "member",
        )
    )
    assert EmailDelivery.objects.filter(kind="invitation", to=[email]).exists()


def test_another_organizations_user_hears_the_refusal_at_accept(alice, org_a, carol):
    _, token = invite(alice, org_a, email="carol@example.com")
    text = refusal(lambda: invitation_accept(raw_token=token, user=carol, accepted_terms=True))
    assert text.startswith("This address already belongs to another organization")
    assert "Bureau" not in text and carol.membership.organization.name == "Bureau of Birds"
    assert not Invitation.objects.get().accepted_at


def test_a_second_invitation_to_the_same_address_is_refused_until_revoked(alice, org_a):
    first, _ = invite(alice, org_a)
    text = refusal(lambda: invite(alice, org_a))
    assert "already has a pending invitation: resend it or revoke it instead" in text
    invitation_revoke(admin=alice, org=org_a, invitation_id=first.pk)
    second, _ = invite(alice, org_a)
    assert second.pk != first.pk


def test_it_refuses_when_the_pool_cannot_cover_one_more_floor(alice, bob, org_a):
    set_max(bob, 3_700_000)  # 4M purchased, 3.9M allocated: 100K left, the floor is 200K

    text = refusal(lambda: invite(alice, org_a))

    assert text == (
        "Adding nina@example.com needs 200,000 inference tokens (200,000 each) "
        "but only 100,000 are unallocated."
    )


def test_registering_through_the_link_joins_at_the_floors_once(alice, org_a):
    invitation, token = invite(alice, org_a, role="auditor")

    user = invitation_accept_registering(
        raw_token=token, name="Nina New", password="a-long-pass-2026", accepted_terms=True
    )

    membership = Membership.objects.get(user=user)
    assert (membership.organization, membership.role) == (org_a, "auditor")
    assert membership.max_inference_tokens == org_a.min_inference_tokens == 200_000
    assert user.email == "nina@example.com" and user.terms_accepted_at is not None
    invitation.refresh_from_db()
    assert invitation.accepted_by == user and invitation.status == "accepted"
    assert AuditLog.objects.filter(action="invitation.accepted", target_user=user).exists()
    assert AuditLog.objects.filter(action="membership.added", target_user=user).exists()
    again = refusal(lambda: invitation_accept(raw_token=token, user=user, accepted_terms=True))
    assert again == "This invitation has already been used: each link works once."


def test_a_registered_person_accepts_signed_in_and_must_accept_the_terms(alice, org_a):
    nina = UserFactory(email="nina@example.com", terms_accepted_at=None)
    _, token = invite(alice, org_a)

    text = refusal(lambda: invitation_accept(raw_token=token, user=nina, accepted_terms=False))
    assert text == "You must accept the terms and conditions."
    assert not Membership.objects.filter(user=nina).exists()

    invitation_accept(raw_token=token, user=nina, accepted_terms=True)
    nina.refresh_from_db()
    assert nina.terms_accepted_at is not None and nina.membership.organization == org_a


def test_someone_signed_in_under_another_address_is_refused(alice, org_a):
    _, token = invite(alice, org_a)
    other = UserFactory(email="other@example.com")
    text = refusal(lambda: invitation_accept(raw_token=token, user=other, accepted_terms=True))
    assert "is for nina@example.com, but you are signed in as other@example.com" in text
    assert not Membership.objects.filter(user=other).exists()


def test_an_expired_link_is_refused_and_a_resent_one_works_while_the_old_dies(
    alice, org_a, settings
):
    settings.INVITATION_TTL_HOURS = 72
    when = start()
    with time_machine.travel(when, tick=False) as clock:
        invitation, old = invite(alice, org_a)
        clock.shift(dt.timedelta(hours=72, seconds=1))
        assert invitation.status == "expired"
        expired = refusal(
            lambda: invitation_accept_registering(
                raw_token=old, name="Nina", password="a-long-pass-2026", accepted_terms=True
            )
        )
        expiry = when + dt.timedelta(hours=72)
        assert expired.startswith(f"This invitation expired on {expiry:%Y-%m-%d %H:%M} UTC")

        invitation_resend(admin=alice, org=org_a, invitation_id=invitation.pk)
        new = link_token(invitation)
        assert new != old
        invalid = refusal(
            lambda: invitation_accept_registering(
                raw_token=old, name="Nina", password="a-long-pass-2026", accepted_terms=True
            )
        )
        assert invalid == "This invitation link is not valid."
        user = invitation_accept_registering(
            raw_token=new, name="Nina", password="a-long-pass-2026", accepted_terms=True
        )
    assert user.membership.organization == org_a
    assert AuditLog.objects.filter(action="invitation.resent").count() == 1


def test_a_revoked_link_is_refused_and_cannot_be_revoked_or_resent_again(alice, org_a):
    invitation, token = invite(alice, org_a)
    invitation_revoke(admin=alice, org=org_a, invitation_id=invitation.pk)

    text = refusal(
        lambda: invitation_accept_registering(
            raw_token=token, name="Nina", password="a-long-pass-2026", accepted_terms=True
        )
    )
    assert text == "This invitation was revoked by an administrator of Acme Agency."
    assert "already revoked" in refusal(
        lambda: invitation_revoke(admin=alice, org=org_a, invitation_id=invitation.pk)
    )
    assert "already revoked" in refusal(
        lambda: invitation_resend(admin=alice, org=org_a, invitation_id=invitation.pk)
    )
    assert not User.objects.filter(email="nina@example.com").exists()


def test_another_organization_cannot_resend_or_revoke_it(alice, org_a, carol, org_b):
    invitation, _ = invite(alice, org_a)
    for service in (invitation_resend, invitation_revoke):
        text = refusal(lambda s=service: s(admin=carol, org=org_b, invitation_id=invitation.pk))
        assert text == "That invitation does not exist."
    invitation.refresh_from_db()
    assert invitation.is_open


def test_accepting_when_the_pool_no_longer_covers_the_floor_leaves_no_account(alice, bob, org_a):
    _, token = invite(alice, org_a)
    set_max(bob, 3_700_000)  # the pool moved after the invitation was sent

    text = refusal(
        lambda: invitation_accept_registering(
            raw_token=token, name="Nina", password="a-long-pass-2026", accepted_terms=True
        )
    )

    assert "but only 100,000 are unallocated" in text
    assert not User.objects.filter(email="nina@example.com").exists()
    assert Invitation.objects.get().status == "pending"


def test_a_suspended_organization_takes_no_new_member(alice, org_a):
    _, token = invite(alice, org_a)
    org_a.status = "suspended"
    org_a.save()
    text = refusal(
        lambda: invitation_accept_registering(
            raw_token=token, name="Nina", password="a-long-pass-2026", accepted_terms=True
        )
    )
    assert text == "Acme Agency is not active at the moment, so it cannot take new members."


def test_someone_who_joined_elsewhere_meanwhile_is_refused_at_accept(alice, org_a, org_b):
    _, token = invite(alice, org_a)
    nina = MembershipFactory(organization=org_b, user__email="nina@example.com").user
    text = refusal(lambda: invitation_accept(raw_token=token, user=nina, accepted_terms=True))
    assert "This address already belongs to another organization" in text


def test_status_reads_pending_until_the_expiry_instant(alice, org_a):
    invitation, _ = invite(alice, org_a)
    with time_machine.travel(invitation.expires_at - dt.timedelta(seconds=1), tick=False):
        assert invitation.status == "pending"
    with time_machine.travel(invitation.expires_at, tick=False):
        assert invitation.status == "expired"
    assert invitation.expires_at > timezone.now()
