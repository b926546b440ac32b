"""Email login, case-insensitive."""

from django.contrib.auth.backends import ModelBackend

from accounts.sso import sso_required_for


class EmailBackend(ModelBackend):
    """ModelBackend looking users up by email whatever its case.

    Banned users still authenticate here so that the login form can tell them why they are
    refused (`LoginForm.confirm_login_allowed`) instead of a generic "wrong password".
    Members of an organization whose single sign-on is required never do, whatever the door
    (the login form tells them why before asking this); staff always may (break-glass).
    """

    def authenticate(self, request, username=None, password=None, email=None, **kwargs):
        user = super().authenticate(
            request, username=username or email, password=password, **kwargs
        )
        # Not in `user_can_authenticate`: that also runs for every request of a session
        # (`get_user`), and would end the sessions single sign-on opened.
        return None if user is not None and sso_required_for(user) else user


def axes_username(request, credentials: dict | None = None) -> str | None:
    """The account a login attempt is against, for django-axes: the email the login form
    posts as `username` (or a backend was given as `email`), trimmed and lower-cased, so
    every spelling of one address counts against the same account."""
    credentials = credentials or {}
    raw = credentials.get("username") or credentials.get("email")
    if raw is None and request is not None:
        raw = getattr(request, "POST", {}).get("username")
    if raw is None:
        return None
    return str(raw).strip().lower()[:254] or None
