"""Token Distribution answers where the admin is looking (issue 16, item 2): each action
replaces only its own section, with its message at that section's top; without JS the
browser lands on the section (#anchor) and the message shows there once. And the wording
(item 10): "1 inference token", "Step 500,000"."""

import re
from types import SimpleNamespace

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from asksage_admin.lib.wording import counted
from tests.factories import max_of
from tokens.models import AllocationPolicy, MemberOverride
from tokens.services import distribution as distribution_services
from tokens.services import policy as policy_services

pytestmark = pytest.mark.django_db

URL = reverse("tokens:distribution")
HX = {"HX-Request": "true"}
SECTIONS = ("presets", "actions", "reclaim", "overrides", "options", "purchase")


def section_html(html: str, name: str) -> str:
    """The markup of one section (up to the next section's start)."""
    start = html.index(f'<section id="dist-{name}"')
    rest = html.find("<section ", start + 1)
    return html[start : rest if rest != -1 else len(html)]


def test_a_saved_override_answers_its_own_section_and_the_pool_status_out_of_band(
    alice_client, bob
):
    response = alice_client.post(
        reverse("tokens:distribution_override"), {"email": bob.email, "pinned": "1"}, headers=HX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="dist-overrides"')
    assert '<section id="dist-status" aria-labelledby="status-title" class="stack" hx-swap-oob' in (
        html
    )
    for other in ("presets", "actions", "reclaim", "options", "purchase"):
        assert f'id="dist-{other}"' not in html
    feedback = section_html(html, "overrides")
    assert 'role="status" tabindex="-1">Saved the override for bob@example.com.' in feedback
    assert MemberOverride.objects.get(user=bob).pinned


def test_a_refused_override_shows_its_refusal_at_the_top_of_its_own_section(alice_client, bob):
    response = alice_client.post(
        reverse("tokens:distribution_override"),
        {"email": "nobody@example.com"},
        headers=HX,
    )
    html = response.content.decode()
    assert response.status_code == 422
    section = section_html(html, "overrides")
    message = section.index('class="message message-error" role="alert"')
    assert message < section.index("<form")  # above the form, under the heading
    assert "No member of" in section[message:]
    assert not MemberOverride.objects.exists()


def test_without_js_a_success_lands_on_its_section_and_says_so_there_once(alice_client, bob):
    response = alice_client.post(
        reverse("tokens:distribution_options"),
        {
            "thresholds": "50, 90",
            "auto_approve_max": "100000",
            "auto_approve_below_percent": "80",
            "reclaim_idle_days": "30",
        },
    )
    assert response.status_code == 302
    assert response.url == f"{URL}#dist-options"
    page = alice_client.get(response.url).content.decode()
    assert "settings saved." in section_html(page, "options")
    assert "settings saved." not in page.replace(section_html(page, "options"), "")
    assert "settings saved." not in alice_client.get(URL).content.decode()  # shown once


def test_without_js_a_refusal_renders_the_page_with_the_message_in_its_section(alice_client, bob):
    response = alice_client.post(
        reverse("tokens:distribution_override"), {"email": bob.email, "floor_inference": "abc"}
    )
    html = response.content.decode()
    assert response.status_code == 422 and "<html" in html
    section = section_html(html, "overrides")
    assert 'class="message message-error" role="alert"' in section
    assert 'class="message message-error"' not in section_html(html, "presets")
    assert not MemberOverride.objects.exists()


def test_every_form_posts_back_to_its_own_section_without_js(alice_client, bob):
    alice_client.post(reverse("tokens:distribution_override"), {"email": bob.email, "pinned": "1"})
    html = alice_client.get(URL).content.decode()
    for name in SECTIONS:
        actions = re.findall(r'<form[^>]* action="([^"]*)"', section_html(html, name))
        assert actions, name
        assert all(a.endswith(f"#dist-{name}") for a in actions), (name, actions)
    assert "Remove the override of bob@example.com" in section_html(html, "overrides")
    assert "hx-swap-oob" not in html  # the whole page marks nothing out of band


def test_the_whole_page_has_one_target_per_section_and_disables_buttons_while_busy(
    alice_client,
):
    html = alice_client.get(URL).content.decode()
    assert 'hx-target="closest section" hx-disabled-elt="find button"' in html
    assert "js/distribution.js" in html


def test_an_apply_of_one_token_to_one_user_says_it_in_the_singular(alice_client, bob, org_a):
    args = {"org": org_a, "kind": "inference", "action": "set", "amount": 200_001}
    plan = distribution_services.distribution_plan(user_ids=[bob.pk], **args)
    response = alice_client.post(
        reverse("tokens:distribution_action"),
        {
            "op": "apply",
            "kind": "inference",
            "action": "set",
            "amount": "200001",
            "users": bob.email,
            "signature": plan.signature,
        },
        headers=HX,
    )
    html = response.content.decode()
    assert response.status_code == 200, html
    assert "Applied to 1 user: +1 inference token allocated." in html
    assert max_of(bob) == 200_001


def test_counted_pluralises_and_groups_digits():
    assert counted(1, "inference token") == "1 inference token"
    assert counted(2_000_000, "inference token") == "2,000,000 inference tokens"
    assert counted(0, "user") == "0 users"
    assert counted(-1, "token", sign=True) == "-1 token"
    assert counted(1_500, "token", sign=True) == "+1,500 tokens"


def test_the_preset_preview_groups_the_digits_of_a_fixed_step(org_a):
    preview = policy_services.policy_preview(
        org=org_a,
        preset="custom",
        given={
            "floor_inference": 200_000,
            "floor_embedding": 100_000,
            "ceiling": None,
            "trigger_percent": 90,
            "cooldown_minutes": 60,
            "step_mode": "fixed",
            "step_value": 500_000,
        },
    )
    step = [new for label, _old, new in preview.changes if label == "Step"]
    assert step == ["500,000"]
    assert not AllocationPolicy.objects.exists()


def test_an_email_about_one_token_says_token_and_is():
    subject = render_to_string(
        "emails/pool_alert.subject.txt",
        {"org": SimpleNamespace(name="Acme"), "free": 1, "kind": "inference"},
    )
    assert subject.strip() == "Acme: only 1 inference token is unallocated"
    subject = render_to_string(
        "emails/pool_alert.subject.txt",
        {"org": SimpleNamespace(name="Acme"), "free": 2_500, "kind": "inference"},
    )
    assert subject.strip() == "Acme: only 2,500 inference tokens are unallocated"


def test_no_template_comment_leaks_onto_the_page(alice_client, bob):
    # `{# … #}` is one line only: a multi-line one is printed as text (it was, above the page).
    html = alice_client.get(URL).content.decode()
    assert "{#" not in html and "#}" not in html
