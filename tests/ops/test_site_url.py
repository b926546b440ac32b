"""Links in emails start with SITE_URL (before it existed they read "See your limits at /")."""

import pytest
from django.core import mail

from tokens.models import TokenRequest
from tokens.services import emails


@pytest.mark.django_db
def test_an_approval_email_links_to_the_console_at_site_url(
    org_a, bob, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://admin.example.gov"
    request = TokenRequest.objects.create(
        organization=org_a,
        user=bob,
        kind="inference",
        amount=100_000,
        reason="more",
        current_max=200_000,
    )
    with django_capture_on_commit_callbacks(execute=True):
        emails.request_approved(
            token_request=request, amount=100_000, new_max=300_000, actor=None, note=""
        )
    assert "See your limits at https://admin.example.gov/\n" in mail.outbox[-1].body
