"""Usage API under load, compared with PostgreSQL's own rate for the same conditional UPDATE.

Run with (PostgreSQL, the database is created if missing; and wrk: apt-get install -y wrk):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/asksage_bench_usage \\
        .venv/bin/python benchmarks/usage_api.py

It migrates, seeds an organization of 1,000 users (one in ten with a small max, so refusals
happen) and serves the app as deployed: gunicorn with uvicorn's worker on
`asksage_admin.asgi` (DEBUG off, on 127.0.0.1, its output in a log file). wrk drives
`POST /api/v1/usage` from BENCH_CLIENTS keep-alive connections (random user, tokens and
model, a fresh Idempotency-Key each; the Lua script is usage_load.lua.tmpl filled in): 2 s
of warm-up, then BENCH_SECONDS measured. wrk, not a Python client, because on 2 CPUs the load
generator must leave them to the app and PostgreSQL; the CPU seconds each used are reported.

It reports requests/s, p50/p95/p99, answers and errors; checks that no user's usage exceeds
their max and that the tokens and answers the client saw accepted agree with the events, daily
rollups and monthly totals (exit status 1 if not); runs `pgbench` with as many clients,
doing the same single-row `UPDATE … SET used = used + n WHERE … AND used + n <= max` on the
same table, for half as long before the usage API's run and half after it (on a shared host
the machine's speed drifts; the mean of the two brackets the run), and gives our throughput
as a share of that mean; measures for scale the same server answering a database-free
document through Django (5 s); and gives a verdict on the goals (≥ 30 % of pgbench, p99 <
50 ms, no acceptance over a max), where a MISS does not fail the run.

Knobs (environment): BENCH_SECONDS=30, BENCH_CLIENTS=32, BENCH_USERS=1000, BENCH_WORKERS=2
(gunicorn workers), BENCH_WORKER_CLASS=uvicorn_worker.UvicornWorker (gunicorn's own: asgi),
BENCH_PORT=8765, BENCH_FAST_PATH=1 (USAGE_FAST_PATH for the server; 0 measures the plain
Django view under the same server). BENCH_LABEL: when set (benchmarks/run.py sets it), the
figures are also printed as rows of the harness's table, named with that label.
The load side (server, wrk, pgbench, CPU accounting) is in usage_load.py.
"""

import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Row, bootstrap, ensure_database, require_postgres  # noqa: E402
from usage_load import (  # noqa: E402
    BIG_MAX,
    CLIENTS,
    CPUS,
    FAST_PATH,
    PGBENCH_SECONDS,
    SECONDS,
    USERS,
    WARM_UP,
    WORKER_CLASS,
    WORKERS,
    CpuSample,
    Load,
    baseline,
    cpu_used,
    log_tail,
    run_pgbench,
    run_wrk,
    start_gunicorn,
    stop_gunicorn,
    vacuum,
    write_lua_script,
)

bootstrap()

SLUG = "bench-usage-api"
SMALL_MAX = 3_000  # one user in ten: they reach it within the run, and are refused after
GOAL_RATIO, GOAL_P99_MS = 30.0, 50.0
LABEL = os.environ.get("BENCH_LABEL", "")


def _organization():
    """The organization and its USERS + 1 members (created once, reused by later runs)."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Membership, Organization, User

    org, _ = Organization.objects.get_or_create(
        slug=SLUG,
        defaults={
            "name": "Bench Usage API",
            "billing_address": "1 Bench Road",
            "status": Organization.Status.ACTIVE,
            "activated_at": timezone.now(),
        },
    )
    start = Membership.objects.filter(organization=org).count()
    if start < USERS + 1:
        with transaction.atomic():
            users = User.objects.bulk_create(
                User(
                    email=f"bench-usage-{i}@example.com",
                    name=f"Bench User {i}",
                    password="!",  # unusable: these users never log in
                    terms_accepted_at=timezone.now(),
                )
                for i in range(start, USERS + 1)
            )
            Membership.objects.bulk_create(
                Membership(
                    user=user,
                    organization=org,
                    role="admin" if user.email == "bench-usage-0@example.com" else "member",
                    max_inference_tokens=SMALL_MAX if i % 10 == 0 else BIG_MAX,
                )
                for i, user in enumerate(users, start=start)
            )
    return org


def seed():
    """The organization, its users and an API key; usage from earlier runs is cleared."""
    from django.db import transaction

    from accounts.models import Membership, User
    from asksage_admin.lib.months import current_month
    from tokens.models import ApiKey, DailyUsage, MonthlyUsage, OrgDailyUsage, UsageEvent
    from tokens.rollup import membership_totals_rebuild
    from tokens.services import api_keys as api_key_services

    org = _organization()
    members = Membership.objects.filter(organization=org)
    # Every run starts from the same maxes, whatever an earlier run or version left.
    members.update(max_inference_tokens=BIG_MAX)
    small = [f"bench-usage-{i}@example.com" for i in range(0, USERS + 1, 10)]
    members.filter(user__email__in=small).update(max_inference_tokens=SMALL_MAX)
    with transaction.atomic():
        for model in (UsageEvent, DailyUsage, OrgDailyUsage, MonthlyUsage, ApiKey):
            model.objects.filter(organization=org).delete()
        # Mid-month: most users have used part of their max (below the 80 % alerts).
        rng = random.Random(7)
        MonthlyUsage.objects.bulk_create(
            MonthlyUsage(
                organization=org,
                user_id=user_id,
                kind="inference",
                month=current_month(),
                used=rng.randint(0, BIG_MAX * 6 // 10),
            )
            for user_id, limit in members.values_list("user_id", "max_inference_tokens")
            if limit == BIG_MAX
        )
        membership_totals_rebuild(organization_ids=[org.pk])  # the seeded usage, as a start
    vacuum(
        *(m._meta.db_table for m in (UsageEvent, DailyUsage, OrgDailyUsage, MonthlyUsage)),
        full=True,
    )
    admin = members.get(role="admin").user
    secret = api_key_services.api_key_create(actor=admin, org=org, name="bench")[1]
    emails = list(
        User.objects.filter(pk__in=members.values("user_id"))
        .exclude(email="bench-usage-0@example.com")
        .values_list("email", flat=True)
    )
    return org, secret, emails


def verify(org, seeded_usage: int) -> dict:
    """No acceptance over a max; events, daily rollups and monthly totals agree."""
    from django.db.models import Count, Sum

    from accounts.models import Membership
    from tokens.models import DailyUsage, MonthlyUsage, OrgDailyUsage, UsageEvent

    maxes = dict(
        Membership.objects.filter(organization=org).values_list("user_id", "max_inference_tokens")
    )
    over = sum(
        1
        for user_id, used in MonthlyUsage.objects.filter(organization=org).values_list(
            "user_id", "used"
        )
        if used > maxes[user_id]
    )
    monthly = MonthlyUsage.objects.filter(organization=org).aggregate(t=Sum("used"))["t"] or 0
    monthly -= seeded_usage
    members = Membership.objects.filter(organization=org).aggregate(t=Sum("total_used"))["t"]
    events = UsageEvent.objects.filter(organization=org).aggregate(t=Sum("tokens"), n=Count("id"))
    daily = DailyUsage.objects.filter(organization=org).aggregate(t=Sum("tokens"), n=Sum("events"))
    rollup = OrgDailyUsage.objects.filter(organization=org).aggregate(
        t=Sum("tokens"), n=Sum("events")
    )
    full = (
        MonthlyUsage.objects.filter(
            organization=org, user__membership__max_inference_tokens=SMALL_MAX
        )
        .filter(used__gt=SMALL_MAX - 2_000)
        .count()
    )
    return {
        "over_limit_users": over,
        "monthly_tokens": monthly,
        "event_tokens": events["t"] or 0,
        "events": events["n"],
        "daily_tokens": daily["t"] or 0,
        "daily_events": daily["n"] or 0,
        "rollup_tokens": rollup["t"] or 0,
        "rollup_events": rollup["n"] or 0,
        "member_totals": (members or 0) - seeded_usage,
        "small_max_users_full": full,
    }


def server_env() -> dict:
    """The server's environment: as deployed (DEBUG off), this process's SECRET_KEY (the API
    key was hashed with it), alert emails sent (their work is measured) to nowhere."""
    from django.conf import settings

    return {
        **os.environ,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "ERROR",
        "USAGE_FAST_PATH": "1" if FAST_PATH else "0",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "SECRET_KEY": settings.SECRET_KEY,
    }


def drive(wrk: str, script: str, log):
    """Serve, warm up, measure under load, then the database-free baseline."""
    server = start_gunicorn(server_env(), log)
    try:
        # Warm up workers and their connections; its usage counts in the totals checked.
        warm = run_wrk(wrk, script, WARM_UP)
        before, start = CpuSample.take(server.pid), time.monotonic()
        load = run_wrk(wrk, script, SECONDS)
        after, wall = CpuSample.take(server.pid), time.monotonic() - start
        cpu = cpu_used(before, after), CPUS * wall
        floor = baseline(wrk)
    finally:
        stop_gunicorn(server)
    return warm, load, cpu, floor


def main() -> None:
    db_url = require_postgres()
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    ensure_database(db_url)
    # The server runs as deployed (DEBUG off), which refuses the development key; this process
    # and the server share one random key (the API key is hashed with it).
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))

    import django

    django.setup()
    from django.core.management import call_command
    from django.db.models import Sum

    from asksage_admin.lib.months import current_month
    from tokens.models import MonthlyUsage

    call_command("migrate", verbosity=0)
    org = seed()[0]
    # pgbench brackets the API's run: half before it (the seed below undoes its updates),
    # half after, and the share is of their mean, so a steady drift of the host cancels.
    pgbench_before = run_pgbench(db_url, org, current_month(), PGBENCH_SECONDS)
    org, secret, emails = seed()
    seeded = MonthlyUsage.objects.filter(organization=org).aggregate(t=Sum("used"))["t"] or 0
    path = "usage fast path on (USAGE_FAST_PATH=1)" if FAST_PATH else (
        "usage fast path off (USAGE_FAST_PATH=0): the plain Django view"
    )  # fmt: skip
    print(
        f"{len(emails):,} users (one in ten with a max of {SMALL_MAX:,}); "
        f"gunicorn -k {WORKER_CLASS}, {WORKERS} workers; {path}; wrk, {CLIENTS} connections; "
        f"{SECONDS:g} s; {CPUS} CPUs shared by the app, PostgreSQL and wrk"
    )
    script = write_lua_script(secret, emails)
    failed = True
    with tempfile.NamedTemporaryFile(
        "w", prefix="usage_api-gunicorn-", suffix=".log", delete=False
    ) as log:
        try:
            warm, load, cpu, floor = drive(wrk, script, log)
            checks = check(org, seeded, emails, warm, load)
            pgbench_after = run_pgbench(db_url, org, current_month(), PGBENCH_SECONDS)
            report(load, cpu, floor, (pgbench_before, pgbench_after))
            failed = bool(load.errors or warm.errors or checks["unanswered"] or floor[1])
        finally:
            os.unlink(script)
            if failed:
                print(f"\nlast lines of the server's log, {log.name}:\n{log_tail(log.name)}")
            else:
                os.unlink(log.name)


def print_load(load: Load, cpu) -> None:
    latency = load.latency_ms
    bad = {status: n for status, n in load.statuses.items() if status not in (200, 402)}
    socket_errors = {kind: n for kind, n in load.socket_errors.items() if n}
    print(f"\nPOST /api/v1/usage, {'fast path' if FAST_PATH else 'plain Django view'}")
    print(
        f"  requests            {load.requests:,} in {load.seconds:.1f} s = "
        f"{load.rate:,.0f} requests/s"
    )
    print(f"  answers             {dict(sorted(load.statuses.items()))}  (402 = over the max)")
    print(
        f"  latency ms          p50 {latency['p50']:.1f}   p95 {latency['p95']:.1f}   "
        f"p99 {latency['p99']:.1f}   mean {latency['mean']:.1f}"
    )
    details = " ".join(str(what) for what in (bad, socket_errors) if what)
    print(f"  errors              {load.errors} {details}".rstrip())
    used, available = cpu
    print(
        f"  CPU seconds during the run: app {used['app']:.1f}, PostgreSQL {used['postgres']:.1f}"
        f", wrk {used['wrk']:.1f} (of {available:.1f} available)"
    )
    print(
        f"  not this benchmark's: {used['other_databases']:.1f} of PostgreSQL's (backends of "
        f"other databases), and {used['other']:.1f} by other processes"
    )


def check(org, seeded, emails, warm: Load, load: Load) -> dict:
    """Print the consistency checks (warm-up included); SystemExit when the data disagrees."""
    checks = verify(org, seeded)
    accepted = warm.accepted_tokens + load.accepted_tokens
    answers = warm.statuses[200] + load.statuses[200]
    checks["unanswered"] = unanswered = warm.unanswered + load.unanswered
    print("\nconsistency after the run (warm-up included)")
    print(f"  users over their max          {checks['over_limit_users']}")
    print(
        f"  small-max users filled up     {checks['small_max_users_full']} "
        f"of {len(emails) // 10 + 1}"
    )
    tokens = (
        accepted,
        checks["monthly_tokens"],
        checks["event_tokens"],
        checks["daily_tokens"],
        checks["rollup_tokens"],
        checks["member_totals"],
    )
    tokens_agree = len(set(tokens)) == 1
    print(
        f"  accepted tokens               {tokens[0]:,} (client) = {tokens[1]:,} (monthly, less "
        f"the seeded usage) = {tokens[2]:,} (events) = {tokens[3]:,} (daily) = "
        f"{tokens[4]:,} (organization rollup) = {tokens[5]:,} (members' totals, less the "
        f"seeded usage): {'agree' if tokens_agree else 'DISAGREE'}"
    )
    events_agree = answers == checks["events"] == checks["daily_events"] == checks["rollup_events"]
    print(
        f"  events                        {answers:,} (client, 200 answers) = "
        f"{checks['events']:,} (events) = {checks['daily_events']:,} (daily) = "
        f"{checks['rollup_events']:,} (organization rollup): "
        f"{'agree' if events_agree else 'DISAGREE'}"
    )
    if unanswered:
        print(f"  requests never answered       {unanswered} (their outcome is unknown to us)")
    if checks["over_limit_users"] or not tokens_agree or not events_agree:
        raise SystemExit("consistency check failed")
    return checks


def report(load: Load, cpu, floor, pgbench) -> None:
    """The run's figures, pgbench around it and the verdict on the goals (a MISS does not
    fail the run); with BENCH_LABEL, the harness's rows too."""
    print_load(load, cpu)
    tps = (pgbench[0][0] + pgbench[1][0]) / 2
    ratio = 100 * load.rate / tps
    print(
        f"\npgbench, same conditional UPDATE, same table, same clients: {PGBENCH_SECONDS} s "
        "before the usage API's run and as long after it"
    )
    for when, (when_tps, when_latency) in zip(("before", "after"), pgbench, strict=True):
        print(f"  {when:6}  {when_tps:,.0f} transactions/s, mean latency {when_latency:.2f} ms")
    print(f"  mean    {tps:,.0f} transactions/s (a steady drift of the host's speed cancels)")
    print(f"\nusage API / pgbench: {ratio:.1f} %")
    floor_rate, floor_failed = floor
    print(
        f"usage API / the same server answering GET /api/v1/openapi.json through Django, no "
        f"database ({floor_rate:,.0f}/s{f', {floor_failed} not 2xx' if floor_failed else ''}):"
        f" {100 * load.rate / floor_rate:.0f} %"
    )
    p99 = load.latency_ms["p99"]
    print("\ngoals")
    for met, text in (
        (ratio >= GOAL_RATIO, f"throughput ≥ {GOAL_RATIO:g} % of pgbench's: {ratio:.1f} %"),
        (p99 < GOAL_P99_MS, f"p99 < {GOAL_P99_MS:g} ms: {p99:.1f} ms"),
        (True, "no acceptance over a max (checked above)"),
    ):
        print(f"  {'PASS' if met else 'MISS'}  {text}")
    if LABEL:
        rows(load, tps)


def rows(load: Load, tps: float) -> None:
    """The harness's rows: the rate as a share of pgbench's, and p99 against its goal."""
    p99 = load.latency_ms["p99"]
    Row(
        f"usage API rate, share of pgbench [{LABEL}]",
        f"{load.rate:,.0f} requests/s",
        f"{tps:,.0f} tps (pgbench, same UPDATE)",
        load.rate / tps,
        ("min", GOAL_RATIO / 100),
        unit="%",
    ).emit()
    Row(
        f"usage API p99 latency [{LABEL}]",
        f"{p99:.1f} ms (p50 {load.latency_ms['p50']:.1f} ms)",
        "–",
        None,
        ("max", GOAL_P99_MS),
        check_ms=p99,
    ).emit()


if __name__ == "__main__":
    main()
