"""Token Distribution: presets, distribution actions, reclamation, per-user overrides, the
alert and auto-approval options, and purchase requests to sales.

Each POST binds its form (tokens/forms.py) and answers in its own section of the page (the
admin is looking there, not at the top of a long page): under htmx that section, with its
message at the section's top and the pool status out of band — 422 on a refusal (the form's,
or a service's `DomainError` put on the form), typed values kept beside their errors; without
htmx a redirect to the section's #anchor, or on refusal the whole page at 422.
"""

from django import forms
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import org_admin_required
from accounts.http import PanelRequest
from accounts.models import Membership
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.htmx import is_partial, page_or_partial, respond
from asksage_admin.lib.http import client_ip
from asksage_admin.lib.inputs import header_text
from asksage_admin.lib.wording import counted
from tokens import selectors
from tokens.forms import (
    DistributionActionForm,
    OptionsForm,
    OverrideForm,
    PresetForm,
    PurchaseRequestForm,
    ReclaimForm,
    add_domain_errors,
)
from tokens.models import TokenKind
from tokens.services import distribution as distribution_services
from tokens.services import policy as policy_services
from tokens.services import purchases as purchase_services
from tokens.views._common import membership_or_404, refusal_text

PAGE = "tokens/distribution.html"
FEEDBACK = "distribution_feedback"  # the session key of a no-JS answer's message
SECTION_OF = {  # each form's section of the page: its answers replace only that section
    "preset_form": "dist-presets",
    "action_form": "dist-actions",
    "reclaim_form": "dist-reclaim",
    "override_form": "dist-overrides",
    "options_form": "dist-options",
    "purchase_form": "dist-purchase",
}


def _context(request: PanelRequest, **extra) -> dict:
    policy = selectors.policy_for(request.org)
    context = {
        "active": "distribution",
        "pools": selectors.pool_statuses(request.org, with_used=True),
        "policy": policy,
        "presets": selectors.preset_rows(),
        "actions": distribution_services.DISTRIBUTION_ACTIONS,
        "overrides": list(selectors.member_overrides(request.org)),
        "purchase_requests": list(selectors.open_purchase_requests(request.org)),
        "kinds": TokenKind.choices,
        "preset_form": {},
        "action_form": {"kind": "inference", "action": "split"},
        "reclaim_form": {"kind": "inference", "idle_days": policy.reclaim_idle_days},
        "field_errors": {},
    }
    context.update(extra)
    return context


def _typed(form: forms.Form, *names: str) -> dict[str, str]:
    """What was typed into these fields, to show again beside the errors or the preview."""
    return {name: form.data.get(name, "") for name in names or form.fields}


def _answer(
    request: PanelRequest, *, section: str, ok: str = "", error: str = "", **extra
) -> HttpResponse:
    """Answer in the section the admin is looking at: under htmx that section (422 on
    refusal) with its message, plus the pool status (out of band); without htmx a redirect
    back to the section (#anchor) whose message shows there once, or on refusal the whole
    page (422) so what was typed stays beside its errors."""
    if ok and not error and not is_partial(request):
        request.session[FEEDBACK] = {"section": section, "ok": ok}
        return redirect(f"{reverse('tokens:distribution')}#{section}")
    return respond(
        request,
        template=PAGE,
        fragment=(section, "dist-status"),
        context=lambda: _context(
            request, feedback={"section": section, "ok": ok, "error": error}, oob=True, **extra
        ),
        redirect_to=reverse("tokens:distribution"),
        ok=ok,
        error=error,
        page_on_error=True,
    )


def _refused(request: PanelRequest, form: forms.Form, form_key: str, *names: str):
    """Answer a refusal: the form's errors (its own, or a service's put on it) by field."""
    errors = {field: list(messages) for field, messages in form.errors.items()}
    return _answer(
        request,
        section=SECTION_OF[form_key],
        error=refusal_text(form),
        field_errors={form_key: errors},  # beside this form's fields only
        **{form_key: _typed(form, *names)},
    )


def _preview(request: PanelRequest, section: str, **extra) -> HttpResponse:
    """A dry run's answer: the section with the preview (a GET-like answer, nothing written)."""
    return page_or_partial(request, PAGE, section, _context(request, **extra))


@require_GET
@org_admin_required
def distribution(request: PanelRequest) -> HttpResponse:
    """The page; a message left by a no-JS POST (`_answer`) shows once in its section."""
    feedback = request.session.pop(FEEDBACK, None) if not is_partial(request) else None
    extra = {"feedback": feedback} if isinstance(feedback, dict) else {}
    return page_or_partial(request, PAGE, "distribution-body", _context(request, **extra))


@require_POST
@org_admin_required
def distribution_preset(request: PanelRequest) -> HttpResponse:
    """Preview a preset's changes (op=preview), then apply them (op=apply)."""
    form = PresetForm(request.POST)
    if form.is_valid():
        preset = form.cleaned_data["preset"]
        try:
            if request.POST.get("op") == "apply":
                policy = policy_services.policy_apply(
                    admin=request.user,
                    org=request.org,
                    preset=preset,
                    given=form.settings(),
                    ip=client_ip(request),
                )
                raised = getattr(policy, "raised", 0)
                ok = f"The {policy.get_preset_display()} preset is now active."
                if raised:
                    ok += f" {counted(raised, 'user')} raised to its floor."
                return _answer(request, section="dist-presets", ok=ok)
            preview = policy_services.policy_preview(
                org=request.org, preset=preset, given=form.settings()
            )
            return _preview(
                request, "dist-presets", preset_form=_typed(form), preset_preview=preview
            )
        except DomainError as exc:
            add_domain_errors(form, exc)
    return _refused(request, form, "preset_form")


def _user_ids_from_emails(request: PanelRequest, emails: list[str]) -> list[int] | None:
    """The members with these emails (None: no emails, everyone); a stranger is refused."""
    if not emails:
        return None
    found = dict(
        Membership.objects.filter(organization=request.org, user__email__in=emails).values_list(
            "user__email", "user_id"
        )
    )
    missing = [e for e in emails if e not in found]
    if missing:
        # Quote a few, shortened: the field can hold anything (100,000 characters of it).
        listed = ", ".join(header_text(e, 80) for e in missing[:10])
        more = f" and {len(missing) - 10:,} more" if len(missing) > 10 else ""
        raise DomainError(errors={"users": [f"Not in {request.org.name}: {listed}{more}."]})
    return list(found.values())


@require_POST
@org_admin_required
def distribution_action(request: PanelRequest) -> HttpResponse:
    """A distribution action: a dry-run preview first, then apply exactly what was previewed
    (op=apply), or turn it into pending edits to review in User Management (op=pending)."""
    form = DistributionActionForm(request.POST)
    names = ("kind", "action", "amount", "users", "signature")
    if not form.is_valid():
        return _refused(request, form, "action_form", *names)
    data, op = form.cleaned_data, request.POST.get("op")
    try:
        args = {
            "org": request.org,
            "kind": data["kind"],
            "action": data["action"],
            "amount": data["amount"],
            "user_ids": _user_ids_from_emails(request, data["users"]),
        }
        if op == "pending":
            count = distribution_services.distribution_to_pending(admin=request.user, **args)
            return respond(
                request,
                template=PAGE,
                fragment="distribution-body",
                context=dict,
                redirect_to=reverse("tokens:users"),
                ok=f"{counted(count, 'pending change')}: review and save them here.",
                navigate=True,
            )
        if op == "apply":
            result = distribution_services.distribution_apply(
                admin=request.user, signature=data["signature"], ip=client_ip(request), **args
            )
            n, added = len(result.changes), sum(c.new - c.old for c in result.changes)
            return _answer(
                request,
                section="dist-actions",
                ok=f"Applied to {counted(n, 'user')}: "
                f"{counted(added, data['kind'] + ' token', sign=True)} allocated.",
            )
        plan = distribution_services.distribution_plan(**args)
    except DomainError as exc:
        add_domain_errors(form, exc)
        return _refused(request, form, "action_form", *names)
    return _preview(request, "dist-actions", action_form=_typed(form, *names), plan=plan)


@require_POST
@org_admin_required
def distribution_reclaim(request: PanelRequest) -> HttpResponse:
    """Reclaim idle members' unused allocation: a preview first, then apply (op=apply)."""
    form = ReclaimForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if request.POST.get("op") == "apply":
                result = distribution_services.reclaim_apply(
                    admin=request.user,
                    org=request.org,
                    kind=data["kind"],
                    idle_days=data["idle_days"],
                    signature=data["signature"],
                    ip=client_ip(request),
                )
                freed = sum(c.old - c.new for c in result.changes)
                return _answer(
                    request,
                    section="dist-reclaim",
                    ok=f"Reclaimed {counted(freed, data['kind'] + ' token')} to the pool.",
                )
            plan = distribution_services.reclaim_plan(
                org=request.org, kind=data["kind"], idle_days=data["idle_days"]
            )
            return _preview(request, "dist-reclaim", reclaim_form=_typed(form), reclaim_plan=plan)
        except DomainError as exc:
            add_domain_errors(form, exc)
    return _refused(request, form, "reclaim_form")


@require_POST
@org_admin_required
def distribution_override(request: PanelRequest) -> HttpResponse:
    """A member's own floors and ceilings (or a pin): found by email in this organization."""
    form = OverrideForm(request.POST)
    names = (
        "email",
        "floor_inference",
        "ceiling_inference",
        "floor_embedding",
        "ceiling_embedding",
    )
    if form.is_valid():
        data = form.cleaned_data
        membership = (
            Membership.objects.filter(
                organization=request.org, user__email__iexact=data["email"].strip()
            )
            .select_related("user")
            .first()
        )
        try:
            if membership is None:
                raise DomainError(
                    errors={"email": [f"No member of {request.org.name} has that email."]}
                )
            policy_services.member_override_set(
                admin=request.user,
                org=request.org,
                membership=membership,
                pinned=data["pinned"],
                bounds={name: data[name] for name in names[1:]},
                ip=client_ip(request),
            )
            return _answer(
                request,
                section="dist-overrides",
                ok=f"Saved the override for {membership.user.email}.",
            )
        except DomainError as exc:
            add_domain_errors(form, exc)
    return _refused(request, form, "override_form", *names)


@require_POST
@org_admin_required
def distribution_override_remove(request: PanelRequest, user_id: int) -> HttpResponse:
    membership = membership_or_404(request, user_id)  # another organization's user: 404
    try:
        user = policy_services.member_override_remove(
            admin=request.user, org=request.org, user_id=membership.user_id, ip=client_ip(request)
        )
    except DomainError as exc:
        return _answer(request, section="dist-overrides", error=refusal_text(exc))
    return _answer(
        request,
        section="dist-overrides",
        ok=f"Removed the override for {user.email}: the policy applies again.",
    )


@require_POST
@org_admin_required
def distribution_options(request: PanelRequest) -> HttpResponse:
    """Alert thresholds, the auto-approval rule and reclamation's idle days."""
    form = OptionsForm(request.POST)
    names = (
        "thresholds",
        "low_unallocated",
        "auto_approve_max",
        "auto_approve_below_percent",
        "reclaim_idle_days",
    )
    if form.is_valid():
        try:
            policy_services.policy_options_update(
                admin=request.user, org=request.org, ip=client_ip(request), **form.cleaned_data
            )
            return _answer(
                request,
                section="dist-options",
                ok="Alerts, auto-approval and reclamation settings saved.",
            )
        except DomainError as exc:
            add_domain_errors(form, exc)
    return _refused(request, form, "options_form", *names)


@require_POST
@org_admin_required
def distribution_purchase_request(request: PanelRequest) -> HttpResponse:
    """Ask sales for more tokens a month (blocks of 2,000,000)."""
    form = PurchaseRequestForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            created = purchase_services.purchase_request_create(
                admin=request.user,
                org=request.org,
                kind=data["kind"],
                blocks=data["blocks"],
                note=data["note"],
                ip=client_ip(request),
            )
            return _answer(
                request,
                section="dist-purchase",
                ok=f"Sent to sales: {counted(created.tokens, 'more ' + created.kind + ' token')}"
                " a month.",
            )
        except DomainError as exc:
            add_domain_errors(form, exc)
    return _refused(request, form, "purchase_form")
