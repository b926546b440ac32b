"""User Management → Import: an allocation file previewed, then turned into pending edits."""

import csv
import hashlib

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from accounts.decorators import org_admin_required
from accounts.http import PanelRequest
from accounts.models import Membership
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.htmx import respond
from asksage_admin.lib.http import client_ip
from asksage_admin.lib.sheets import SheetError, read_sheet
from asksage_admin.lib.uploads import CappedUploadHandler, declared_too_large
from tokens.forms import AllocationImportForm, readable_size, too_large_message
from tokens.imports.parse import TEMPLATE_HEADER, is_formula, parse_allocation_file
from tokens.imports.preview import import_preview
from tokens.models import COLUMN_LABELS, MAX_COLUMNS
from tokens.services import imports as import_services
from tokens.views._common import refusal_text

PAGE = "tokens/import.html"
SHOWN_PER_LIST = 100  # rows listed per section of the preview; the counts say the rest


def _context(request: PanelRequest, **extra) -> dict:
    context = {
        "active": "users",
        "max_rows": settings.IMPORT_MAX_ROWS,
        "max_size": readable_size(settings.IMPORT_MAX_BYTES),
        "shown": SHOWN_PER_LIST,
        "column_labels": COLUMN_LABELS,
    }
    context.update(extra)
    return context


def _refuse(request: PanelRequest, error: str) -> HttpResponse:
    return respond(
        request,
        template=PAGE,
        fragment="import-form",
        context=lambda: _context(request, error=error),
        redirect_to=None,
        error=error,
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
@org_admin_required
def allocation_import(request: PanelRequest) -> HttpResponse:
    """Before the body is read: a declared size over the cap is refused, and the upload is
    held in memory up to the cap (never spooled to disk); then CSRF is checked as usual."""
    if request.method == "POST":
        limit = settings.IMPORT_MAX_BYTES
        declared = request.META.get("CONTENT_LENGTH")
        if declared_too_large(declared, limit):
            if not str(declared).isdigit():  # a broken header: no size to quote
                return _refuse(request, "The upload's size could not be read: send it again.")
            return _refuse(request, too_large_message(int(declared), limit))
        request.upload_handlers = [CappedUploadHandler(request, max_bytes=limit)]
    return _allocation_import(request)


@csrf_protect
def _allocation_import(request: PanelRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, PAGE, _context(request))
    form = AllocationImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _refuse(request, refusal_text(form))
    upload = form.cleaned_data["file"]
    data = upload.read()
    digest = hashlib.sha256(data).hexdigest()
    try:
        parsed = parse_allocation_file(
            read_sheet(data, upload.name or "", max_rows=settings.IMPORT_MAX_ROWS)
        )
    except SheetError as exc:
        return _refuse(request, str(exc))
    if form.cleaned_data["step"] == "apply":
        if form.cleaned_data["previewed"] != digest:
            return _refuse(request, "This is not the file you previewed: preview it again.")
        return _apply(request, parsed, upload.name or "upload", digest)
    preview = import_preview(admin=request.user, org=request.org, file=parsed)
    return respond(
        request,
        template=PAGE,
        fragment="import-form",
        context=lambda: _context(request, preview=preview, digest=digest, name=upload.name),
        redirect_to=None,
        ok=_preview_text(preview),
    )


def _preview_text(preview) -> str:
    rows = preview.rows
    return (
        f"Preview: {len(rows.changes):,} rows change, {len(rows.unchanged):,} unchanged, "
        f"{len(rows.unknown):,} unknown emails, {len(rows.under_floor):,} under the floor, "
        f"{len(rows.invalid):,} invalid."
    )


def _apply(request: PanelRequest, parsed, name: str, digest: str) -> HttpResponse:
    try:
        result = import_services.allocation_import_apply(
            admin=request.user,
            org=request.org,
            file=parsed,
            filename=name,
            digest=digest,
            ip=client_ip(request),
        )
    except DomainError as exc:
        return _refuse(request, refusal_text(exc))
    parts = [f"{n:,} to {COLUMN_LABELS[c]}" for c, n in result.pending.items()]
    text = (
        f"Imported {name}: {result.total:,} pending change{'s' * (result.total != 1)}"
        f"{' (' + ', '.join(parts) + ')' if parts else ''}. Review them and use Save Changes "
        "for each column."
    )
    if result.skipped:
        text += f" {result.skipped:,} row{'s' * (result.skipped != 1)} left out."
    return respond(
        request,
        template=PAGE,
        fragment="import-form",
        context=lambda: _context(request),
        redirect_to=reverse("tokens:users"),
        ok=text,
        navigate=True,
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@org_admin_required
def allocation_import_template(request: PanelRequest) -> StreamingHttpResponse:
    """The template: the header and every member with their current maxima, ready to edit
    and upload again (UTF-8 with a byte-order mark, so Excel opens it as UTF-8)."""
    writer = csv.writer(_Echo())
    rows = (
        Membership.objects.filter(organization=request.org)
        .order_by("user__email")
        .values_list("user__email", *MAX_COLUMNS)
    )

    def lines():
        yield "\ufeff" + writer.writerow(TEMPLATE_HEADER)
        for email, *maxima in rows.iterator(chunk_size=2000):
            # An address like "=1+2@x.co" is valid; a spreadsheet must show it, not run it.
            yield writer.writerow(("'" + email if is_formula(email) else email, *maxima))

    day = timezone.now().date().isoformat()
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{request.org.slug}-allocations-template-{day}.csv"'
    )
    return response
