"""Registration, the second factor and the locked-out page (the member's home page is in
`tokens.member_views`: it shows the pools' numbers)."""

from base64 import b32encode

import segno
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.views import LoginView
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp_webauthn.templatetags.otp_webauthn import get_configuration

from accounts import mfa as mfa_services
from accounts import services
from accounts.decorators import member_required
from accounts.forms import RegistrationForm
from accounts.http import AuthedRequest
from accounts.passkeys import has_passkey
from accounts.sso import SSO_START, provider_for_email
from asksage_admin.lib.durations import in_words
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.http import client_ip

NO_SSO_FOR_DOMAIN = "No single sign-on is set up for this address: enter your password."


class EmailFirstLoginView(LoginView):
    """The login page, email first: an address whose domain has an identity provider goes
    to it (the "Continue with single sign-on" button, or the email sent without a password);
    any other address logs in with its password as before."""

    def post(self, request, *args, **kwargs):
        email = request.POST.get("username", "").strip()
        wants_sso = "sso" in request.POST
        if wants_sso or not request.POST.get("password"):
            if email and provider_for_email(email) is not None:
                # Through the session, never the URL: a link to /sso/start/ cannot start a
                # sign-in in someone else's browser (login CSRF).
                request.session[SSO_START] = {"email": email, "next": self.get_redirect_url()}
                return redirect("sso:start")
            if wants_sso:
                form = self.get_form()
                form.errors.clear()
                form.add_error("username", NO_SSO_FOR_DOMAIN)
                # The message says "enter your password": the cursor waits there.
                form.fields["username"].widget.attrs.pop("autofocus", None)
                form.fields["password"].widget.attrs["autofocus"] = True
                return self.form_invalid(form)
        return super().post(request, *args, **kwargs)


SSO_DOMAIN_REGISTRATION = (
    "Your organization signs in through single sign-on: use “Continue with single sign-on” "
    "on the login page."
)


def _sso_domain_refused(form: RegistrationForm) -> bool:
    """Registration checks no mailbox: an address of a domain an identity provider signs in
    could otherwise be registered by someone else before its owner's first sign-in."""
    if provider_for_email(form.cleaned_data["email"]) is None:
        return False
    form.add_error("email", SSO_DOMAIN_REGISTRATION)
    return True


def register(request: AuthedRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("member:home")
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and not _sso_domain_refused(form):
        try:
            data = form.cleaned_data
            user = services.user_register(
                email=data["email"],
                name=data["name"],
                password=data["password"],
                accepted_terms=data["accept_terms"],
            )
        except DomainError as exc:
            for field, errors in exc.errors.items():
                for error in errors:
                    form.add_error(None if field == "__all__" else field, error)
        else:
            login(request, user, backend="accounts.backends.EmailBackend")
            messages.success(request, "Welcome! Your account is ready.")
            return redirect("member:home")
    return render(request, "registration/register.html", {"form": form})


@transaction.non_atomic_requests  # a wrong code's failure count must commit (accounts.mfa)
@member_required
def mfa(request: AuthedRequest) -> HttpResponse:
    """Set up the authenticator (QR code rendered here, no network), or enter a code or use a
    passkey (accounts.passkey_views)."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    enrolled = mfa_services.is_enrolled(request.user)
    context = {
        "next": next_url,
        "enrolled": enrolled,
        "error": None,
        "has_totp": mfa_services.has_totp(request.user),
        "has_passkey": has_passkey(request.user),
        "has_codes": mfa_services.has_recovery_codes(request.user),
        "webauthn_config": get_configuration(request),
    }
    status, headers = 200, {}
    if request.method == "POST":
        token = request.POST.get("token", "")
        try:
            if enrolled:
                mfa_services.mfa_verify(
                    request=request,
                    user=request.user,
                    token=token,
                    ip=client_ip(request),
                )
            else:
                codes = mfa_services.mfa_enroll_confirm(
                    request=request, user=request.user, token=token
                )
                return render(
                    request, "registration/mfa_codes.html", {"codes": codes, "next": next_url}
                )
        except mfa_services.TooManyWrongCodes as exc:
            context["error"] = " ".join(exc.messages)
            status, headers = 429, {"Retry-After": str(exc.retry_after_seconds)}
        except DomainError as exc:
            context["error"] = " ".join(exc.messages)
            status = 422
        else:
            return redirect(next_url or "member:home")
    if not enrolled:
        device = mfa_services.pending_totp_device(request.user)
        context["qr_svg"] = segno.make(device.config_url, error="m").svg_inline(
            scale=4, title="QR code for your authenticator app"
        )
        context["secret"] = b32encode(device.bin_key).decode()
    response = render(request, "registration/mfa.html", context, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def locked_out(request, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a login refused for too many failures (AXES_LOCKOUT_CALLABLE):
    the wait in words ("15 minutes"), not axes' ISO 8601 duration."""
    cool_off = get_cool_off(request)
    context = {"cooloff": in_words(cool_off.total_seconds()) if cool_off else None}
    response = render(
        request, "registration/locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE
    )
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
