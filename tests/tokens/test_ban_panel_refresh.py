"""The panel's Banned toggle under htmx answers the Banned cell and, out of band, what the ban
moved under the organization's policy: the member's Max cells and the pool summary."""

import re

import pytest
from django.urls import reverse

from accounts.models import Membership, Organization

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def _oob_cell(html: str, user, column: str) -> str:
    match = re.search(rf'<div [^>]*id="cell-{user.pk}-{column}"[^>]*>.*?</div>', html, re.S)
    assert match, f"no {column} cell for {user.email}"
    return match.group(0)


def test_a_ban_answers_the_max_cells_and_the_pool_summary_out_of_band(alice_client, bob):
    Membership.objects.filter(user=bob).update(max_inference_tokens=900_000)

    response = alice_client.post(
        reverse("tokens:user_flag", args=[bob.pk, "banned"]), {"value": "on"}, headers=HX
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith("<form") and 'aria-checked="true"' in html
    assert re.search(r'id="pool-summary"[^>]*hx-swap-oob="true"', html)
    # 4M purchased, alice's 200K left allocated: the 900K came back.
    assert "<dt>Available</dt><dd>3,800,000</dd>" in html
    for column in ("max_inference_tokens", "max_embedding_tokens"):
        cell = _oob_cell(html, bob, column)
        assert 'hx-swap-oob="true"' in cell and re.search(r">\s*0\s*</button>", cell)


def test_a_refused_unban_answers_422_with_the_cells_as_they_are(alice_client, org_a, alice, bob):
    url = reverse("tokens:user_flag", args=[bob.pk, "banned"])
    alice_client.post(url, {"value": "on"}, headers=HX)
    Membership.objects.filter(user=alice).update(max_inference_tokens=4_000_000)

    response = alice_client.post(url, {}, headers=HX)

    html = response.content.decode()
    assert response.status_code == 422 and 'aria-checked="true"' in html
    assert re.search(r">\s*0\s*</button>", _oob_cell(html, bob, "max_inference_tokens"))


def test_under_the_keep_policy_the_cells_keep_their_values(alice_client, org_a, bob):
    Organization.objects.filter(pk=org_a.pk).update(on_deactivation="keep")
    response = alice_client.post(
        reverse("tokens:user_flag", args=[bob.pk, "banned"]), {"value": "on"}, headers=HX
    )
    cell = _oob_cell(response.content.decode(), bob, "max_inference_tokens")
    assert re.search(r">\s*200,000\s*</button>", cell)


def test_the_paid_toggle_answers_its_cell_alone(alice_client, bob):
    response = alice_client.post(reverse("tokens:user_flag", args=[bob.pk, "paid"]), {}, headers=HX)
    html = response.content.decode()
    assert "hx-swap-oob" not in html and 'id="pool-summary"' not in html


def test_without_htmx_a_ban_still_redirects_to_the_table(alice_client, bob):
    response = alice_client.post(
        reverse("tokens:user_flag", args=[bob.pk, "banned"]), {"value": "on", "confirmed": "1"}
    )
    assert response.status_code == 302
