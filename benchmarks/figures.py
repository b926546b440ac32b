"""The page figures of one database size, each with its anchor measured in the same process.

Run by `benchmarks/run.py` (which creates the database and reads the rows this prints); by
hand: `DATABASE_URL=postgres://…/asksage_bench_1m python benchmarks/figures.py --events N`.
It migrates, seeds when the database did not record this size (benchmarks/seed.py), then
times with the test client (median of BENCH_RUNS, after a warm-up):
  - Token Statistics over 30 days, 90 days and a custom full year (366 days), 20,000 users;
  - User Management's first page at 100,000 users in its default order (by name), sorted by
    Max Inference Tokens, by Total usage, and a search;
  - the Activity page, when benchmarks/activity_page.py exists (its own rows and anchor);
  - the usage-events CSV export of 90 days against PostgreSQL's COPY of the same rows (two
    fresh processes of exports.py).
The anchor of the pages is Django admin's changelist of the same 100,000 users, timed before
and after them; the mean of the two is used, so a drift of this shared machine's speed
during the run cancels.
"""

import argparse
import datetime as dt
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

from common import Row, bootstrap, median_ms, ms_row, recorded_seed, require_postgres

bootstrap()
import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402
from seed import STATS_SLUG, USERS_SLUG, seed, wanted  # noqa: E402

from accounts.models import Membership, Organization, User  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "7"))
HERE = Path(__file__).resolve().parent
ANCHOR = "changelist"
PAGE_GOAL = ("max", 1.0)  # issue 19: each page at most the changelist's time
EXPORT_GOAL = ("max", 2.0)  # the CSV export takes at most twice COPY's time


def org_admin_client(slug: str) -> tuple[Client, Organization]:
    org = Organization.objects.get(slug=slug)
    admin = Membership.objects.filter(organization=org, role="admin").order_by("user_id")
    client = Client()
    client.force_login(admin.select_related("user").first().user)
    return client, org


def changelist_timer(org: Organization):
    """Django admin's changelist of the organization's users, as a staff superuser sees it."""
    staff, _ = User.objects.get_or_create(
        email="bench-staff@example.com",
        defaults={"name": "Bench Staff", "is_staff": True, "is_superuser": True},
    )
    client = Client()
    client.force_login(staff)
    params = {"membership__organization__id__exact": org.pk}

    def changelist():
        assert client.get("/staff/accounts/user/", params).status_code == 200

    return changelist


def timed_get(client: Client, url: str, params: dict):
    def get():
        response = client.get(url, params)
        assert response.status_code == 200, (url, params, response.status_code)

    return get


def page_timers() -> dict[str, object]:
    """The pages measured against the changelist, by the name they get in the table."""
    stats, _ = org_admin_client(STATS_SLUG)
    users, _ = org_admin_client(USERS_SLUG)
    today = timezone.now().astimezone(dt.UTC).date()
    year = {"range": "custom", "start": today - dt.timedelta(days=365), "end": today}
    table = "/panel/users/"
    return {
        "Token Statistics, 30 days (20,000 users)": timed_get(
            stats, "/panel/statistics/", {"range": "30"}
        ),
        "Token Statistics, 90 days": timed_get(stats, "/panel/statistics/", {"range": "90"}),
        "Token Statistics, custom full year": timed_get(stats, "/panel/statistics/", year),
        "User Management, 100,000 users, first page (sorted by name)": timed_get(users, table, {}),
        "User Management, sorted by Max Inference Tokens": timed_get(
            users, table, {"sort": "-max_inference_tokens"}
        ),
        "User Management, sorted by Total usage": timed_get(users, table, {"sort": "-total_used"}),
        "User Management, search": timed_get(users, table, {"q": "user004242"}),
    }


def activity_rows() -> list[Row]:
    """Rows of benchmarks/activity_page.py's `measure()` (its own anchor: the changelist of
    its organization's users), when that script exists. The pages get the goal; the badge's
    and verify_audit's rows are shown for reading. BENCH_AUDIT sets its chain's length."""
    path = HERE / "activity_page.py"
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location("activity_page", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        measured = module.measure()
    except Exception as error:  # noqa: BLE001 — one figure failing must not lose the others
        return [Row("Activity page", f"failed: {error!r}"[:80], "–", None)]
    audit = int(os.environ.get("BENCH_AUDIT", "200000"))
    rows = []
    for m in measured:
        if m["measure"].startswith("anchor"):
            continue
        goal = PAGE_GOAL if "page" in m["measure"] else None
        name = f"Activity ({audit:,} audit rows): {m['measure']}"
        rows.append(ms_row(name, m["value_ms"], ANCHOR, m["anchor_ms"], goal))
    return rows


def export_row() -> Row:
    """The CSV export of 90 days of events against COPY of the same rows, fresh processes."""
    env = {**os.environ, "BENCH_ORG": STATS_SLUG}

    def run(mode: str) -> tuple[int, float]:
        out = subprocess.run(
            [sys.executable, str(HERE / "exports.py"), mode],
            capture_output=True, text=True, check=True, env=env,
        ).stdout.split()  # fmt: skip
        return int(out[0]), float(out[1])

    rows, seconds = run("--export-only")
    copy_rows, copy_seconds = run("--copy-only")
    return Row(
        f"usage-events CSV export, 90 days ({rows:,} rows)",
        f"{seconds:.1f} s ({rows / seconds:,.0f} rows/s)",
        f"{copy_seconds:.1f} s (COPY, {copy_rows:,} rows)",
        seconds / copy_seconds,
        EXPORT_GOAL,
    )


def ensure_seeded(events: int) -> None:
    call_command("migrate", verbosity=0)
    recorded = recorded_seed(os.environ["DATABASE_URL"])
    if recorded and all(recorded.get(k) == v for k, v in wanted(events).items()):
        print(f"seeded {recorded['seeded_at'][:16]} at this size: reused", flush=True)
        return
    if recorded or Organization.objects.exists():
        raise SystemExit("this database holds other data: let run.py drop and seed it again")
    print(f"seeding {events:,} events (COPY)", flush=True)
    start = time.perf_counter()
    seed(events, log=lambda line: print(line, flush=True))
    print(f"seeded in {time.perf_counter() - start:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--label", default="", help="added to each measure's name")
    parser.add_argument("--seed-only", action="store_true", help="seed, measure nothing")
    args = parser.parse_args()
    require_postgres()
    ensure_seeded(args.events)
    if args.seed_only:
        return
    anchor = changelist_timer(Organization.objects.get(slug=USERS_SLUG))
    before, _ = median_ms(anchor, RUNS)
    pages = {name: median_ms(timer, RUNS)[0] for name, timer in page_timers().items()}
    after, _ = median_ms(anchor, RUNS)
    anchor_ms = (before + after) / 2
    print(f"changelist {before:.0f} ms before the pages, {after:.0f} ms after", flush=True)
    rows = [ms_row(name, ms, ANCHOR, anchor_ms, PAGE_GOAL) for name, ms in pages.items()]
    rows += activity_rows()
    rows.append(export_row())
    suffix = f" [{args.label}]" if args.label else ""
    for row in rows:
        row.measure += suffix
        row.emit()
    connection.close()


if __name__ == "__main__":
    main()
