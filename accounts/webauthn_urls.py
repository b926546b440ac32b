"""django-otp-webauthn's endpoints, under the library's URL names (its script's configuration
reverses them), with our naming and auditing subclasses (accounts.passkey_views)."""

from django.urls import path
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import views as webauthn

from accounts import passkey_views

app_name = "otp_webauthn"

urlpatterns = [
    path(
        "registration/begin/",
        webauthn.BeginCredentialRegistrationView.as_view(),
        name="credential-registration-begin",
    ),
    path(
        "registration/complete/",
        passkey_views.RegistrationComplete.as_view(),
        name="credential-registration-complete",
    ),
    path(
        "authentication/begin/",
        webauthn.BeginCredentialAuthenticationView.as_view(),
        name="credential-authentication-begin",
    ),
    path(
        "authentication/complete/",
        passkey_views.AuthenticationComplete.as_view(),
        name="credential-authentication-complete",
    ),
    # The script's words (gettext), served locally.
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
        name="js-i18n-catalog",
    ),
]
