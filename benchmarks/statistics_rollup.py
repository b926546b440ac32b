"""Token Statistics on the organization rollup, against Django admin's changelist, same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/asksage_bench_stats \
        .venv/bin/python benchmarks/statistics_rollup.py

Seeds one organization once (BENCH_USERS users, BENCH_EVENTS usage events over 60 days,
the rollups built from them), then reports the median time and query count of the
statistics page (30 days, 90 days, a custom full year), of each of its reads alone, and of
the Django admin changelist of the organization's users (the anchor). BENCH_CODE=<checkout>
runs another checkout's code on the same database (the before/after comparison; it must be
seeded by this one first, as the rollup's migrations are ours).
"""

import datetime as dt
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CODE = Path(os.environ.get("BENCH_CODE", HERE.parent))
sys.path[:0] = [str(CODE), str(HERE)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asksage_admin.settings")
os.environ.setdefault("DEBUG", "1")  # a developer's tool: the development settings
os.environ.setdefault("MFA_REQUIRED", "0")  # the clients log in with force_login

import django  # noqa: E402
from benchtools import median_ms  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from accounts.models import Membership, Organization, User  # noqa: E402
from analytics.filters import today  # noqa: E402
from analytics.selectors import forecast, statistics  # noqa: E402
from tokens import models as token_models  # noqa: E402

USERS = int(os.environ.get("BENCH_USERS", "20000"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "200000"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
SLUG = os.environ.get("BENCH_ORG", "bench-rollup")


def seed() -> Organization:
    """The organization, seeded once with `exports.py`'s events; the rollups from them."""
    from exports import rollup, seed_events  # noqa: PLC0415 - sets Django up on import

    if not Organization.objects.filter(slug=SLUG).exists():
        start = time.perf_counter()
        call_command("seed_scale", users=USERS, events=0, org_slug=SLUG, verbosity=0)
        seed_events(Organization.objects.get(slug=SLUG), EVENTS)
        print(f"seeded {USERS:,} users, {EVENTS:,} events in {time.perf_counter() - start:.1f} s")
    org = Organization.objects.get(slug=SLUG)
    rollup(org)
    if hasattr(token_models, "OrgDailyUsage"):
        from tokens.rollup import org_daily_usage_rebuild  # noqa: PLC0415 - ours only

        if not token_models.OrgDailyUsage.objects.filter(organization=org).exists():
            org_daily_usage_rebuild(organization_ids=[org.pk])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return org


def main() -> None:
    print(f"database: {connection.vendor}; code: {CODE}")
    if HERE.parent == CODE:
        call_command("migrate", verbosity=0)
    org = seed()
    daily = token_models.DailyUsage.objects.filter(organization=org).count()
    events = token_models.UsageEvent.objects.filter(organization=org).count()
    print(f"organization {org.slug}: {events:,} events, {daily:,} DailyUsage rows")
    if hasattr(token_models, "OrgDailyUsage"):
        rows = token_models.OrgDailyUsage.objects.filter(organization=org).count()
        print(f"  {rows:,} OrgDailyUsage rows")

    admin = Membership.objects.filter(organization=org, role="admin").first().user
    staff, _ = User.objects.get_or_create(
        email="bench-staff@example.com",
        defaults={"name": "Bench Staff", "is_staff": True, "is_superuser": True},
    )
    panel, sales = Client(), Client()
    panel.force_login(admin)
    sales.force_login(staff)
    last = today()
    year = {"range": "custom", "start": last - dt.timedelta(days=364), "end": last}

    def page(params):
        return lambda: panel.get("/panel/statistics/", params).status_code == 200 or 1 / 0

    def changelist():
        params = {"membership__organization__id__exact": org.pk}
        assert sales.get("/staff/accounts/user/", params).status_code == 200

    start30 = last - dt.timedelta(days=29)
    cases = {
        "anchor: admin changelist of the org's users": changelist,
        "statistics page, 30 days": page({"range": "30"}),
        "statistics page, 90 days": page({"range": "90"}),
        "statistics page, custom full year": page(year),
        "  usage_by_month": lambda: statistics.usage_by_month(org),
        "  period_usage, 30 days": lambda: statistics.period_usage(org, start30, last),
        "  top_users, 30 days": lambda: statistics.top_users(org, start30, last),
        "  forecast": lambda: forecast.forecast(org),
    }
    results = {name: median_ms(func, RUNS) for name, func in cases.items()}
    anchor = results["anchor: admin changelist of the org's users"][0]
    print(f"\nmedian of {RUNS} runs")
    for name, (ms, queries) in results.items():
        print(f"{name:<46} {ms:9.1f} ms  {queries:3d} queries  {ms / anchor:5.2f}× anchor")


if __name__ == "__main__":
    main()
