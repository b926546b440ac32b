"""The passkeys page (list, name and add, remove) and django-otp-webauthn's ceremony
endpoints, subclassed to name and audit a new passkey and to audit a verification.

The ceremonies answer JSON to the library's own script; they keep its URL names
(namespace `otp_webauthn`) so its template tag's configuration finds them.
"""

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_otp_webauthn import exceptions as webauthn_errors
from django_otp_webauthn import views as webauthn
from django_otp_webauthn.templatetags.otp_webauthn import get_configuration

from accounts import mfa as mfa_services
from accounts import passkeys
from accounts.decorators import member_required
from accounts.http import AuthedRequest
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.http import client_ip

PENDING_NAME = "passkey_pending_name"
CODES_TO_SHOW = "passkey_recovery_codes"  # new codes, until the next page shows them once
AUTH_STATE = "otp_webauthn_authentication_state"  # the library's session key for a challenge


def _next(request) -> str:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return ""
    return next_url


def _must_verify_first(request) -> bool:
    """Someone with a second factor manages passkeys only once this session passed it."""
    return not mfa_services.session_verified(request) and mfa_services.is_enrolled(request.user)


def _to_mfa(request) -> HttpResponse:
    return redirect(
        f"{reverse('accounts:mfa')}?{urlencode({'next': reverse('accounts:passkeys')})}"
    )


def _page(request, *, error: str | None = None) -> dict:
    return {
        "passkeys": passkeys.passkeys_of(request.user),
        "pending_name": "" if error else request.session.get(PENDING_NAME, ""),
        "next": _next(request),
        "error": error,
        "name_max": passkeys.NAME_MAX_LENGTH,
        "webauthn_config": get_configuration(request),
    }


@member_required
def passkey_list(request: AuthedRequest) -> HttpResponse:
    """One's passkeys, and the steps to add one: name it, then create it in the browser."""
    if _must_verify_first(request):
        return _to_mfa(request)
    if codes := request.session.pop(CODES_TO_SHOW, None):
        context = {"codes": codes, "next": _next(request) or reverse("accounts:passkeys")}
        return render(request, "registration/mfa_codes.html", context)
    if request.GET.get("created") and _next(request):
        return redirect(_next(request))  # a passkey was just made on the way somewhere
    return render(request, "registration/passkeys.html", _page(request))


@require_POST
@member_required
def passkey_name(request: AuthedRequest) -> HttpResponse:
    """Step one of adding a passkey: its name, kept in the session for the ceremony's end."""
    if _must_verify_first(request):
        return _to_mfa(request)
    next_url = _next(request)
    try:
        name = passkeys.clean_passkey_name(request.POST.get("name"))
    except DomainError as exc:
        context = _page(request, error=" ".join(exc.messages))
        return render(request, "registration/passkeys.html", context, status=422)
    request.session[PENDING_NAME] = name
    url = reverse("accounts:passkeys")
    return redirect(f"{url}?{urlencode({'next': next_url})}" if next_url else url)


@require_POST
@member_required
def passkey_remove(request: AuthedRequest, passkey_id: int) -> HttpResponse:
    """Remove one of one's own passkeys; anyone else's id answers 404."""
    if _must_verify_first(request):
        return _to_mfa(request)
    try:
        name = passkeys.passkey_remove(user=request.user, passkey_id=passkey_id)
    except DomainError as exc:
        raise Http404(" ".join(exc.messages)) from exc
    messages.success(request, f"Passkey “{name}” removed.")
    return redirect("accounts:passkeys")


class RegistrationComplete(webauthn.CompleteCredentialRegistrationView):
    """The library stores the credential; we name it and audit it in the same transaction."""

    def post(self, *args, **kwargs):
        name = self.request.session.get(PENDING_NAME) or passkeys.DEFAULT_NAME
        with transaction.atomic():
            response = super().post(*args, **kwargs)
            passkey_id = json.loads(response.content)["id"]
            passkeys.passkey_registered(user=self.request.user, passkey_id=passkey_id, name=name)
            codes = mfa_services.mfa_passkey_recovery_codes(user=self.request.user)
        self.request.session.pop(PENDING_NAME, None)
        if codes:  # shown once, by the page the script goes to next (passkey_list)
            self.request.session[CODES_TO_SHOW] = codes
        return response


class PasskeyWait(webauthn_errors.OTPWebAuthnApiError):
    """The second factor waits out its delay after wrong tries: no assertion is checked."""

    status_code = 429
    default_code = "too_many_attempts"


class AuthenticationComplete(webauthn.CompleteCredentialAuthenticationView):
    """A passkey as the second factor of a password login (never passwordless), throttled
    and audited like a code (accounts.mfa): while the wait after wrong tries lasts nothing is
    checked; a failed assertion counts as a wrong code; a good one clears the count."""

    def post(self, *args, **kwargs):
        user = self.request.user
        if not user.is_authenticated:
            return super().post(*args, **kwargs)  # refused: see complete_auth
        if (wait := mfa_services.mfa_wait(user)) is not None:
            self.request.session.pop(AUTH_STATE, None)  # that challenge is spent too
            raise PasskeyWait(detail=" ".join(wait.messages))
        try:
            return super().post(*args, **kwargs)
        except webauthn_errors.InvalidState:
            raise  # no ceremony was begun: nothing was verified, nothing to count
        except webauthn_errors.OTPWebAuthnApiError as exc:
            mfa_services.mfa_passkey_failed(user=user, ip=client_ip(self.request), reason=exc.code)
            raise

    def complete_auth(self, device) -> None:
        if not self.request.user.is_authenticated:  # settings also refuse passwordless login
            raise webauthn_errors.PasswordlessLoginDisabled()
        passkeys.passkey_verified(
            request=self.request,
            user=self.request.user,
            passkey=device,
            ip=client_ip(self.request),
        )
        mfa_services.mfa_passkey_passed(self.request.user)
