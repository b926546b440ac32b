"""Invitations and member changes racing (real threads, each on its own connection).

On PostgreSQL the threads overlap and row locks serialize them; on SQLite the database lock
does. Either way: one link joins once, one address gets one invitation.
"""

import re
import threading

import pytest
from django.core import mail
from django.db import connection, connections, transaction
from django.utils import timezone

from accounts.models import Membership, User
from tests.concurrency import run_together
from tests.factories import MembershipFactory, UserFactory
from tokens.models import EmailDelivery, Invitation
from tokens.organizations import membership_set_role
from tokens.services.invitations import invitation_accept, invitation_create

# Pinned mid-month: the cast's purchases start this month and an invitation's pool check
# reads this month, so no month may end between the fixtures and the threads' race.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("mid_month")]


def test_the_same_link_accepted_twice_at_once_joins_once(alice, org_a):
    nina = UserFactory(email="nina@example.com")
    invitation_create(admin=alice, org=org_a, email="nina@example.com", role="member")
    body = next(m.body for m in reversed(mail.outbox) if "invites you" in m.subject)
    token = re.search(r"/invitations/([^/\s]+)/", body).group(1)

    outcomes = run_together(
        lambda: invitation_accept(raw_token=token, user=nina, accepted_terms=True),
        lambda: invitation_accept(raw_token=token, user=nina, accepted_terms=True),
    )

    assert sorted(o[0] for o in outcomes) == ["ok", "refused"], outcomes
    refusal = next(o[1] for o in outcomes if o[0] == "refused")
    assert refusal == "This invitation has already been used: each link works once."
    assert Membership.objects.filter(user=nina).count() == 1


def test_two_admins_inviting_the_same_address_at_once_send_one_invitation(alice, org_a):
    admin2 = MembershipFactory(organization=org_a, role="admin").user

    outcomes = run_together(
        lambda: invitation_create(admin=alice, org=org_a, email="nina@example.com", role="member"),
        lambda: invitation_create(admin=admin2, org=org_a, email="nina@example.com", role="admin"),
    )

    assert sorted(o[0] for o in outcomes) == ["ok", "refused"], outcomes
    assert "already has a pending invitation" in next(o[1] for o in outcomes if o[0] == "refused")
    assert Invitation.objects.count() == 1
    assert EmailDelivery.objects.filter(kind="invitation").count() == 1


def test_a_role_change_locks_the_membership_row_and_not_the_user_row(alice, bob, org_a):
    """FOR UPDATE with the joined user would also lock bob's user row (PostgreSQL locks every
    joined row), so it waited behind any write to that row (bob logging in updates his
    last_login) and could deadlock with one waiting for the membership. Locking the membership
    row only, the role change goes through while bob's row is being written. SQLite has no
    row locks (one writer at a time): the role change waits for the write to commit, then
    both land."""
    postgresql = connection.vendor == "postgresql"
    holding, release = threading.Event(), threading.Event()
    logged_in = timezone.now()

    def hold_bobs_user_row():
        try:
            with transaction.atomic():
                User.objects.filter(pk=bob.pk).update(last_login=logged_in)
                holding.set()
                release.wait(timeout=10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_bobs_user_row)
    holder.start()
    assert holding.wait(timeout=10)
    if not postgresql:  # the role change waits for the database lock: the write commits first
        threading.Timer(0.3, release.set).start()
    try:
        with transaction.atomic():
            if postgresql:  # a wait for bob's user row would fail the test, not hang it
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '2s'")
            membership_set_role(actor=alice, membership=bob.membership, role="auditor")
            # PostgreSQL: done while bob's row is still held (the write has not committed).
            assert release.is_set() is not postgresql
    finally:
        release.set()
        holder.join(timeout=10)

    assert Membership.objects.get(user=bob).role == "auditor"
    assert User.objects.get(pk=bob.pk).last_login == logged_in
