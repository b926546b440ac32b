"""Email login, case-insensitive."""

from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """ModelBackend looking users up by email whatever its case.

    Banned users still authenticate here so that the login form can tell them why they are
    refused (`LoginForm.confirm_login_allowed`) instead of a generic "wrong password".
    """

    def authenticate(self, request, username=None, password=None, email=None, **kwargs):
        return super().authenticate(
            request, username=username or email, password=password, **kwargs
        )
