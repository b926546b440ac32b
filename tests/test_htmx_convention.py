"""One htmx convention (issue 14, item 5): the 4xx policy configured once in base.html,
one helper answering every panel POST, targets declared on containers."""

import json
import re
from pathlib import Path

import pytest
from django.urls import reverse

from tokens.models import PendingEdit, PurchaseRequest

ROOT = Path(__file__).resolve().parent.parent
HX = {"HX-Request": "true"}

pytestmark = pytest.mark.django_db


def htmx_config(html: str) -> dict:
    match = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", html)
    assert match, "base.html declares no htmx-config"
    return json.loads(match.group(1))


def test_the_page_configures_htmx_to_swap_a_422_refusal_and_no_other_error(alice_client):
    config = htmx_config(alice_client.get(reverse("tokens:distribution")).content.decode())
    rules = config["responseHandling"]
    first = {
        code: next(r for r in rules if re.fullmatch(r["code"], code))
        for code in ("200", "204", "422", "400", "403", "500")
    }
    assert first["422"] == {"code": "422", "swap": True, "error": False}
    assert first["200"]["swap"] and not first["204"]["swap"]
    assert not any(first[code]["swap"] for code in ("400", "403", "500"))
    assert config["defaultSwapStyle"] == "outerHTML" and config["allowEval"] is False


def test_no_script_installs_a_response_policy_of_its_own():
    scripts = (ROOT / "static" / "js").glob("*.js")
    assert not [p.name for p in scripts if "responseHandling" in p.read_text()]


def test_templates_declare_swaps_once_and_targets_on_containers():
    templates = list((ROOT / "templates").rglob("*.html"))
    text = "\n".join(p.read_text() for p in templates)
    assert 'hx-swap="outerHTML"' not in text  # the default, set in base.html's htmx-config
    # Each page region is the target of the forms and links inside it.
    for region in (
        "distribution-body",
        "requests-region",
        "api-keys",
        "save-bar",
        "user-table",
        "invitations",
    ):
        assert re.search(rf'id="{region}"[^>]*hx-target="this"', text), region
    assert 'hx-target="#distribution-body"' not in text
    assert text.count("hx-target=") <= 16


def test_a_refused_distribution_action_answers_422_under_htmx_with_its_section(alice_client, bob):
    response = alice_client.post(
        reverse("tokens:distribution_action"),
        {"kind": "inference", "action": "set", "amount": "abc"},
        headers=HX,
    )
    html = response.content.decode()
    assert response.status_code == 422
    assert html.lstrip().startswith('<section id="dist-actions"') and "<html" not in html
    assert 'id="distribution-body"' not in html  # only its section (and the pool status)
    assert "is not an amount" in html
    assert "announce" in response["HX-Trigger"]


def test_a_refusal_without_htmx_keeps_the_whole_page_with_the_typed_values(alice_client, bob):
    response = alice_client.post(
        reverse("tokens:distribution_purchase_request"),
        {"kind": "inference", "blocks": "0", "note": "Q3"},
    )
    assert response.status_code == 422
    assert "<html" in response.content.decode()
    assert not PurchaseRequest.objects.exists()


def test_a_success_without_htmx_redirects_with_a_message(alice_client, bob):
    response = alice_client.post(
        reverse("tokens:distribution_purchase_request"),
        {"kind": "inference", "blocks": "1", "note": "Q3"},
    )
    assert response.status_code == 302
    assert response.url == reverse("tokens:distribution") + "#dist-purchase"  # its section
    page = alice_client.get(response.url).content.decode()
    assert "Sent to sales: 2,000,000 more inference tokens a month." in page


def test_a_bulk_refusal_without_htmx_redirects_to_the_table_with_the_message(alice_client, bob):
    response = alice_client.post(
        reverse("tokens:bulk"),
        {
            "column": "max_inference_tokens",
            "mode": "set",
            "amount": "500k",
            "next": "/panel/users/?q=b",
        },
        follow=True,
    )
    assert response.redirect_chain == [("/panel/users/?q=b", 302)]
    assert "Select at least one user first." in response.content.decode()
    assert not PendingEdit.objects.exists()


def test_a_member_request_refused_under_htmx_answers_422_with_the_form(client, bob):
    client.force_login(bob)
    response = client.post(
        reverse("member:token_request_create"),
        {"kind": "inference", "amount": "abc", "reason": "x"},
        headers=HX,
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert 'id="my-requests"' in html and "is not an amount" in html


def test_a_fields_error_shows_beside_its_own_form_only(alice_client, bob):
    # The preset's custom floor and an override's floor share the name floor_inference.
    response = alice_client.post(
        reverse("tokens:distribution_override"),
        {"email": bob.email, "floor_inference": "abc"},
        headers=HX,
    )
    html = response.content.decode()
    assert response.status_code == 422
    assert 'id="o-fi" name="floor_inference" class="input" value="abc" aria-invalid="true"' in html
    assert 'id="o-fi-error"' in html and "is not an amount" in html
    assert 'id="c-floor-inf-error"' not in html
