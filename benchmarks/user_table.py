"""User Management at scale, in depth: median times on an organization of 100,000 users.

`make bench` (benchmarks/run.py) measures the first page, the sorts and the search against
the changelist itself; this script adds saving a 1,000-cell batch. By hand:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/asksage_bench_1m BENCH_ORG=bench-users \
        .venv/bin/python benchmarks/user_table.py

(BENCH_ORG=bench-users reuses the organization `make bench` seeded; another slug is seeded
with `seed_scale`). It reports the median of several runs of (a) the first page sorted by
Max Inference Tokens, (b) a search, (c) saving a 1,000-cell batch, (d) Django admin's
changelist of the same users, and the ratio a/d.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asksage_admin.settings")
os.environ.setdefault("DEBUG", "1")  # a developer's tool: the development settings
os.environ.setdefault("MFA_REQUIRED", "0")  # the clients log in with force_login

import django  # noqa: E402
from common import median_ms  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from accounts.models import Membership, Organization, User  # noqa: E402
from tokens.models import PendingEdit  # noqa: E402
from tokens.services import allocations as allocation_services  # noqa: E402

USERS = int(os.environ.get("BENCH_USERS", "100000"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "200000"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
SLUG = os.environ.get("BENCH_ORG", "bench-org")


def batch_saver(org, admin, members):
    """A function that stages 1,000 pending edits (alternately +1,000 and -1,000 tokens, so
    runs do not drift) and returns the service's save time in ms."""
    batch_ids = list(members.order_by("user_id").values_list("user_id", flat=True)[:1000])
    flip = {"n": 0}

    def save_batch():
        PendingEdit.objects.filter(admin=admin).delete()
        flip["n"] += 1
        current = dict(
            members.filter(user_id__in=batch_ids).values_list("user_id", "max_inference_tokens")
        )
        PendingEdit.objects.bulk_create(
            PendingEdit(
                organization=org,
                admin=admin,
                target_id=uid,
                column="max_inference_tokens",
                old_value=value,
                new_value=value + (1000 if flip["n"] % 2 else -1000),
            )
            for uid, value in current.items()
        )
        start = time.perf_counter()
        allocation_services.allocation_batch_save(
            admin=admin, org=org, column="max_inference_tokens"
        )
        return (time.perf_counter() - start) * 1000

    return save_batch


def main() -> None:
    print(f"database: {connection.vendor}")
    call_command("migrate", verbosity=0)
    if not Organization.objects.filter(slug=SLUG).exists():
        start = time.perf_counter()
        call_command("seed_scale", users=USERS, events=EVENTS, org_slug=SLUG, verbosity=0)
        print(f"seeded {USERS:,} users, {EVENTS:,} events in {time.perf_counter() - start:.1f} s")
    org = Organization.objects.get(slug=SLUG)
    members = Membership.objects.filter(organization=org)
    admin = members.filter(role="admin").select_related("user").first().user
    staff, _ = User.objects.get_or_create(
        email="bench-staff@example.com",
        defaults={"name": "Bench Staff", "is_staff": True, "is_superuser": True},
    )
    print(f"organization {org.slug}: {members.count():,} users")

    panel = Client()
    panel.force_login(admin)
    sales = Client()
    sales.force_login(staff)

    def first_page_sorted():
        assert panel.get("/panel/users/", {"sort": "-max_inference_tokens"}).status_code == 200

    def search():
        assert panel.get("/panel/users/", {"q": "user-4242"}).status_code == 200

    def admin_changelist():
        url = "/staff/accounts/user/"
        params = {"membership__organization__id__exact": org.pk}
        assert sales.get(url, params).status_code == 200

    save_batch = batch_saver(org, admin, members)

    results = {}
    results["a"] = median_ms(first_page_sorted, RUNS)
    results["b"] = median_ms(search, RUNS)
    save_batch()
    save_times = [save_batch() for _ in range(RUNS)]
    results["c"] = (statistics.median(save_times), 0)
    results["d"] = median_ms(admin_changelist, RUNS)

    labels = {
        "a": "first page sorted by Max Inference Tokens",
        "b": "search by name/email",
        "c": "save a 1,000-cell batch (service)",
        "d": "Django admin changelist of the same users",
    }
    print(f"\nmedian of {RUNS} runs")
    for key, (ms, queries) in results.items():
        q = f"  ({queries} queries)" if queries else ""
        print(f"({key}) {labels[key]:<45} {ms:8.1f} ms{q}")
    print(f"ratio a/d: {results['a'][0] / results['d'][0]:.2f}")


if __name__ == "__main__":
    main()
