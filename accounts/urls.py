from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from accounts import passkey_views, sso_logout, terms_views, views
from accounts.forms import LoginForm, PasswordResetForm

app_name = "accounts"

urlpatterns = [
    path("accounts/register/", views.register, name="register"),
    path("accounts/terms/", terms_views.terms, name="terms"),
    # Before logout: the access sweep visits routes in this order, still logged in.
    path("accounts/mfa/passkeys/", passkey_views.passkey_list, name="passkeys"),
    path("accounts/mfa/passkeys/name/", passkey_views.passkey_name, name="passkey_name"),
    path(
        "accounts/mfa/passkeys/<id:passkey_id>/remove/",
        passkey_views.passkey_remove,
        name="passkey_remove",
    ),
    path(
        "accounts/login/",
        views.EmailFirstLoginView.as_view(
            authentication_form=LoginForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("accounts/logout/", sso_logout.LogoutView.as_view(), name="logout"),
    path("accounts/mfa/", views.mfa, name="mfa"),
    path(
        "accounts/password-reset/",
        auth_views.PasswordResetView.as_view(
            form_class=PasswordResetForm,
            success_url=reverse_lazy("accounts:password_reset_done"),
            email_template_name="registration/password_reset_email.txt",
        ),
        name="password_reset",
    ),
    path(
        "accounts/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            success_url=reverse_lazy("accounts:password_reset_complete")
        ),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
