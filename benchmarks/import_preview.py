"""Importing allocations from a 5,000-row CSV: the preview, the apply, the two saves.

By hand, on SQLite (the worktree's db.sqlite3) or PostgreSQL:

    [DATABASE_URL=postgres://…/asksage_bench_1m] .venv/bin/python benchmarks/import_preview.py

It seeds an organization `BENCH_ORG` (default bench-import, `BENCH_USERS` users, default 6,000)
with `seed_scale` when missing, writes a CSV raising both Max columns of 5,000 of them
(`BENCH_ROWS`), and reports the median over `BENCH_RUNS` runs of (a) the preview (upload,
parse, match, pool after, render), (b) the apply (pending edits + audit row), and, once,
(c) saving each column's 5,000-cell batch and undoing it.
"""

import hashlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asksage_admin.settings")
os.environ.setdefault("DEBUG", "1")  # a developer's tool: the development settings
os.environ.setdefault("MFA_REQUIRED", "0")  # the client logs in with force_login

import django  # noqa: E402
from common import median_ms  # noqa: E402

django.setup()

from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from accounts.models import Membership, Organization  # noqa: E402
from tokens.models import AllocationBatch, PendingEdit  # noqa: E402

USERS = int(os.environ.get("BENCH_USERS", "6000"))
ROWS = int(os.environ.get("BENCH_ROWS", "5000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SLUG = os.environ.get("BENCH_ORG", "bench-import")
HX = {"HX-Request": "true"}


def timed(label: str, func) -> float:
    start = time.perf_counter()
    func()
    ms = (time.perf_counter() - start) * 1000
    print(f"{label:<55} {ms:8.1f} ms")
    return ms


def main() -> None:
    print(f"database: {connection.vendor}")
    call_command("migrate", verbosity=0)
    if not Organization.objects.filter(slug=SLUG).exists():
        call_command("seed_scale", users=USERS, events=1000, org_slug=SLUG, verbosity=0)
    org = Organization.objects.get(slug=SLUG)
    members = Membership.objects.filter(organization=org)
    admin = members.filter(role="admin").select_related("user").first().user
    rows = members.exclude(user=admin).order_by("user_id")
    rows = rows.values_list("user__email", "max_inference_tokens", "max_embedding_tokens")[:ROWS]
    lines = ["email,max_inference_tokens,max_embedding_tokens"]
    lines += [f"{email},{inf + 1000},{emb + 1000}" for email, inf, emb in rows]
    data = ("\n".join(lines) + "\n").encode()
    digest = hashlib.sha256(data).hexdigest()
    print(f"organization {org.slug}: {members.count():,} users; file {len(data) / 1024:.0f} KB")

    client = Client()
    client.force_login(admin)

    def post(step: str):
        upload = SimpleUploadedFile("bench.csv", data, content_type="text/csv")
        body = {"file": upload, "step": step, "previewed": digest}
        response = client.post("/panel/users/import/", body, headers=HX)
        assert response.status_code == 200, response.content[:500]

    def apply():
        PendingEdit.objects.filter(admin=admin).delete()
        post("apply")

    preview_ms, queries = median_ms(lambda: post("preview"), RUNS)
    print(
        f"(a) preview of {len(lines) - 1:,} rows, median of {RUNS}"
        f"   {preview_ms:8.1f} ms ({queries} queries)"
    )
    apply_ms, queries = median_ms(apply, RUNS)
    print(
        f"(b) apply → pending edits, median of {RUNS}        {apply_ms:8.1f} ms ({queries} queries)"
    )
    for column in ("max_inference_tokens", "max_embedding_tokens"):
        url = f"/panel/users/batches/{column}/save/"
        timed(f"(c) save the {column} batch", lambda url=url: client.post(url, headers=HX))
    for batch in AllocationBatch.objects.filter(organization=org, undoes=None).order_by(
        "-created_at"
    )[:2]:
        timed(
            "(c) undo it",
            lambda b=batch: client.post(f"/panel/users/batches/{b.pk}/undo/", headers=HX),
        )


if __name__ == "__main__":
    main()
