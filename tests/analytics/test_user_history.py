"""A member's interaction history, reached from their row in User Management."""

import datetime as dt

import pytest
from django.urls import reverse

from audit.models import AuditLog
from tests.factories import DailyUsageFactory, utc_today

# Pinned mid-month: rows laid out around "today" and the page's days and month must read the
# same day.
pytestmark = pytest.mark.usefixtures("mid_month")


def url(user) -> str:
    return reverse("analytics:user_history", args=[user.pk])


def test_it_shows_logins_usage_by_day_model_and_kind_and_changes(alice_client, audit, bob, org_a):
    audit("auth.login", actor=bob, target_user=bob, ip="198.51.100.9")
    audit("auth.login_failed", actor=None, target_user=bob, ip="198.51.100.10")
    audit(target_user=bob, column="max_inference_tokens", old=200_000, new=350_000)
    audit("user.paid", target_user=bob, column="paid", old=True, new=False)
    today = utc_today()
    DailyUsageFactory(organization=org_a, user=bob, model="gpt-4o", tokens=1_234, day=today)
    DailyUsageFactory(
        organization=org_a, user=bob, kind="embedding", model="embed-3", tokens=55, day=today
    )
    DailyUsageFactory(
        organization=org_a, user=bob, tokens=9, day=today - dt.timedelta(days=45), model="old"
    )

    response = alice_client.get(url(bob))

    assert response.status_code == 200
    context = response.context
    assert [e.action for e in context["logins"]] == ["auth.login_failed", "auth.login"]
    assert [e.action for e in context["changes"]] == ["user.paid", "allocation.changed"]
    [day] = context["usage_days"]
    assert (day.day, day.total) == (today, 1_289)
    assert [(r["kind"], r["model"], r["tokens"]) for r in day.rows] == [
        ("embedding", "embed-3", 55),
        ("inference", "gpt-4o", 1_234),
    ]
    html = response.content.decode()
    assert "198.51.100.9" in html and "200,000 → 350,000" in html
    assert "?target=bob%40example.com" in html


def test_a_longer_period_reaches_older_usage(alice_client, bob, org_a):
    DailyUsageFactory(
        organization=org_a, user=bob, tokens=9, day=utc_today() - dt.timedelta(days=45)
    )

    response = alice_client.get(url(bob), {"range": "90"})

    assert [d.total for d in response.context["usage_days"]] == [9]


def test_it_lists_the_users_token_requests(alice_client, bob, org_a):
    from tokens.models import TokenRequest

    TokenRequest.objects.create(
        organization=org_a, user=bob, kind="inference", amount=5000, reason="demo", current_max=1
    )

    assert "demo" in alice_client.get(url(bob)).content.decode()


def test_another_organizations_user_is_404(client, alice, carol, dave, bob):
    client.force_login(alice)
    assert client.get(url(dave)).status_code == 404
    client.force_login(carol)
    assert client.get(url(bob)).status_code == 404


def test_members_are_refused(bob_client, bob):
    assert bob_client.get(url(bob)).status_code == 403


def test_the_user_table_links_each_name_to_the_history(alice_client, bob):
    html = alice_client.get(reverse("tokens:users")).content.decode()

    assert f'href="{url(bob)}"' in html


def test_the_user_table_offers_an_export_with_its_filters(alice_client, bob):
    html = alice_client.get(reverse("tokens:users"), {"role": "member", "q": "bo"}).content.decode()

    assert reverse("analytics:export", args=["users"]) + "?role=member&amp;q=bo" in html


def test_its_query_count_does_not_grow_with_history(
    alice_client, audit, bob, org_a, django_assert_max_num_queries
):
    AuditLog.objects.bulk_create(
        [AuditLog(organization=org_a, target_user=bob, action="x", actor_label="p")] * 1
        + [AuditLog(organization=org_a, target_user=bob, action="auth.login") for _ in range(30)]
    )
    for n in range(20):
        DailyUsageFactory(organization=org_a, user=bob, day=utc_today() - dt.timedelta(days=n))

    # Session, user, membership, sidebar badge, header bell; member, logins, usage, requests,
    # changes; the session save (inside a savepoint pair in tests).
    with django_assert_max_num_queries(13):
        assert alice_client.get(url(bob)).status_code == 200
