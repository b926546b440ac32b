"""The Activity Logs page and its integrity badge on a long audit chain, against an anchor.

Run on PostgreSQL (it seeds with COPY):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/asksage_bench_activity \
        .venv/bin/python benchmarks/activity_page.py

It migrates, seeds one organization with `seed_scale` (BENCH_USERS users, no usage events)
and BENCH_AUDIT audit rows on its chain (default 200,000; sealed in Python with the app's own
hashing and written with COPY, so the chain verifies), then reports medians of BENCH_RUNS runs:
  anchor  Django admin's changelist of the organization's users (as in `user_table.py`);
  (a) the Activity page alone (the badge loads after it);
  (b) the badge with BENCH_NEW rows written since the last view (steady state);
  (c) page + badge, what a viewer waits for: the goal is a ratio ≤ 1.0;
  (d) the badge when more than its budget is new (first view, or a long quiet spell): it
      verifies `BADGE_BUDGET` rows and says how far it got;
  (e) once: the whole-chain walk the badge did on every view before checkpoints
      (`audit.integrity.verify`), and `verify_audit --org` (walk + checkpoint refresh).

`measure(...)` returns the rows ({measure, value_ms, anchor_ms, ratio}); run as a script it
prints them.
"""

import datetime as dt
import hashlib
import json
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

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import Membership, Organization, User  # noqa: E402
from audit import chain, integrity  # noqa: E402
from audit.checkpoints import BADGE_BUDGET  # noqa: E402
from audit.models import AuditChain, AuditCheckpoint, AuditLog  # noqa: E402
from audit.services import audit_bulk  # noqa: E402
from tokens.management.commands.seed_scale import bulk_insert  # noqa: E402

USERS = int(os.environ.get("BENCH_USERS", "20000"))
AUDIT_ROWS = int(os.environ.get("BENCH_AUDIT", "200000"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
NEW_ROWS = int(os.environ.get("BENCH_NEW", "50"))
SLUG = os.environ.get("BENCH_ORG", "bench-activity")

COLUMNS = [
    "organization",
    "actor",
    "actor_label",
    "action",
    "target_user",
    "column",
    "old_value",
    "new_value",
    "batch_id",
    "details",
    "ip",
    "created_at",
    "chain",
    "seq",
    "prev_hash",
    "hash",
]


def _sealed_rows(
    org_id: int, actor_id: int, targets: list[int], count: int, start_seq: int, prev: str
):
    """Audit rows as COPY tuples, sealed exactly as `audit.chain` seals them; the last hash."""
    key = chain.chain_key(org_id)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    rows = []
    for n in range(count):
        seq = start_seq + n
        created = start + dt.timedelta(seconds=seq * 30)
        target = targets[n % len(targets)]
        old, new = str(200_000 + n % 7 * 50_000), str(250_000 + n % 5 * 50_000)
        values = [key, seq, prev, org_id, actor_id, "", "allocation.changed", target,
                  "max_inference_tokens", old, new, None, {}, None, created]  # fmt: skip
        digest = hashlib.sha256(chain.values_content(values).encode()).hexdigest()
        rows.append((org_id, actor_id, "", "allocation.changed", target, "max_inference_tokens",
                     old, new, None, "{}", None, created, key, seq, prev, digest))  # fmt: skip
        prev = digest
    return rows, prev


def seed_audit(org: Organization, admin: User, count: int) -> float:
    """Seed the org's chain up to `count` rows (what is missing); seconds taken."""
    key = chain.chain_key(org.pk)
    head = AuditChain.objects.filter(key=key).first()
    have = head.last_seq if head else 0
    if have >= count:
        return 0.0
    started = time.perf_counter()
    targets = list(
        Membership.objects.filter(organization=org).values_list("user_id", flat=True)[:1000]
    )
    prev = head.last_hash if head else chain.GENESIS
    with transaction.atomic():
        for offset in range(have, count, 50_000):
            rows, prev = _sealed_rows(
                org.pk, admin.pk, targets, min(50_000, count - offset), offset + 1, prev
            )
            bulk_insert(AuditLog, COLUMNS, rows)
        AuditChain.objects.update_or_create(
            key=key, defaults={"last_seq": count, "last_hash": prev}
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(AuditLog._meta.db_table)}")
    return time.perf_counter() - started


def timed(func, runs: int, setup=None) -> tuple[float, int]:
    """Median ms of `func` over `runs` (after a warm-up), `setup` run untimed before each."""
    if setup:
        setup()
    func()
    times, queries = [], 0
    for _ in range(runs):
        if setup:
            setup()
        with CaptureQueriesContext(connection) as captured:
            begin = time.perf_counter()
            func()
            times.append((time.perf_counter() - begin) * 1000)
        queries = len(captured.captured_queries)
    return statistics.median(times), queries


def _bench_org(audit_rows: int, users: int) -> tuple[Organization, User, User]:
    """The organization (seeded once), its admin, and a superuser for the anchor."""
    call_command("migrate", verbosity=0)
    slug = f"{SLUG}-{users}"
    if not Organization.objects.filter(slug=slug).exists():
        call_command("seed_scale", users=users, events=0, org_slug=slug, verbosity=0)
    org = Organization.objects.get(slug=slug)
    admin = Membership.objects.filter(organization=org, role="admin").first().user
    seeded = seed_audit(org, admin, audit_rows)
    if seeded:
        print(f"seeded {audit_rows:,} audit rows in {seeded:.1f} s")
    staff, _ = User.objects.get_or_create(
        email="bench-staff@example.com",
        defaults={"name": "Bench Staff", "is_staff": True, "is_superuser": True},
    )
    return org, admin, staff


def _actions(org: Organization, admin: User, staff: User) -> dict:
    """The timed requests and the untimed setups, by name."""
    key = chain.chain_key(org.pk)
    panel, sales = Client(), Client()
    panel.force_login(admin)
    sales.force_login(staff)

    def get(client, url, params=None, headers=None):
        response = client.get(url, params or {}, headers=headers or {})
        assert response.status_code == 200, (url, response.status_code)
        return response

    def badge():
        html = get(panel, "/panel/activity/integrity/", headers={"HX-Request": "true"})
        assert "is-intact" in html.content.decode()

    def write_new():
        rows = [AuditLog(organization=org, action="allocation.changed") for _ in range(NEW_ROWS)]
        audit_bulk(rows)

    def forget_checkpoint():
        write_new()
        # As if the chain had never been checked (the full run's record stays).
        AuditCheckpoint.objects.filter(key=key).update(seq=0, hash=chain.GENESIS)

    def page():
        get(panel, "/panel/activity/")

    return {
        "anchor": lambda: get(
            sales, "/staff/accounts/user/", {"membership__organization__id__exact": org.pk}
        ),
        "page": page,
        "badge": badge,
        "page_and_badge": lambda: (page(), badge()),
        "write_new": write_new,
        "forget_checkpoint": forget_checkpoint,
    }


def _ms(func) -> float:
    begin = time.perf_counter()
    func()
    return (time.perf_counter() - begin) * 1000


def measure(audit_rows: int = AUDIT_ROWS, users: int = USERS, runs: int = RUNS) -> list[dict]:
    """Seed (once) and time the page, the badge and the anchor; rows with their ratios."""
    org, admin, staff = _bench_org(audit_rows, users)
    key = chain.chain_key(org.pk)
    act = _actions(org, admin, staff)
    quiet = open(os.devnull, "w")  # noqa: SIM115
    # The full run first: it times the authority and makes the checkpoint current.
    full_ms = _ms(lambda: call_command("verify_audit", "--org", org.slug, stdout=quiet))
    # The anchor before and after the rest, averaged: this machine's speed drifts.
    anchor_before, _ = timed(act["anchor"], runs)
    results = [
        ("(a) Activity page", *timed(act["page"], runs)),
        (f"(b) badge, {NEW_ROWS} new rows", *timed(act["badge"], runs, act["write_new"])),
        (
            f"(c) page + badge, {NEW_ROWS} new rows",
            *timed(act["page_and_badge"], runs, act["write_new"]),
        ),
        (
            f"(d) badge, > budget new ({BADGE_BUDGET:,} verified)",
            *timed(act["badge"], runs, act["forget_checkpoint"]),
        ),
        (
            "(d) page + badge, > budget new",
            *timed(act["page_and_badge"], runs, act["forget_checkpoint"]),
        ),
    ]
    anchor_after, _ = timed(act["anchor"], runs)
    anchor_ms = (anchor_before + anchor_after) / 2
    walk_ms = _ms(lambda: integrity.verify(key))
    call_command("verify_audit", "--org", org.slug, stdout=quiet)  # leave the checkpoint current
    results = [
        ("anchor: admin changelist of users", anchor_ms, None),
        *results,
        ("(e) before: the badge's whole-chain walk", walk_ms, None),
        ("(e) verify_audit --org (full walk, refreshes the checkpoint)", full_ms, None),
    ]
    rows_total = AuditChain.objects.get(key=key).last_seq
    print(f"database: {connection.vendor}; {rows_total:,} audit rows in the chain; {users:,} users")
    print(f"anchor before {anchor_before:.1f} ms, after {anchor_after:.1f} ms")
    for name, _value, queries in results:
        if queries is not None:
            print(f"queries of {name}: {queries}")
    return [
        {
            "measure": name,
            "value_ms": round(value, 1),
            "anchor_ms": round(anchor_ms, 1),
            "ratio": round(value / anchor_ms, 2),
        }
        for name, value, _queries in results
    ]


if __name__ == "__main__":
    for row in measure():
        print(json.dumps(row))
