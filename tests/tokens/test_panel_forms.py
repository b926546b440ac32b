"""Forms at the panel's edge (issue 14, item 4): the fields /staff/ and the panel share,
one form per POST, and services that take typed values."""

import json
import subprocess
from pathlib import Path

import pytest
from django import forms

from accounts import admin_forms as staff_forms
from asksage_admin.lib import forms as shared
from asksage_admin.lib.errors import DomainError
from tokens import admin_forms as token_staff_forms
from tokens.forms import (
    BulkEditForm,
    CellEditForm,
    DistributionActionForm,
    OptionsForm,
    PresetForm,
    ReclaimForm,
    UserFlagForm,
)
from tokens.models import PendingEdit
from tokens.services import allocations as allocation_services
from tokens.services import distribution as distribution_services

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_amount_field_is_the_one_staff_and_the_panel_share():
    assert token_staff_forms.TokenAmountField is shared.TokenAmountField
    assert not hasattr(staff_forms, "TokenAmountField")
    assert isinstance(CellEditForm().fields["value"], shared.TokenAmountField)
    assert isinstance(BulkEditForm().fields["amount"], shared.TokenAmountField)


def test_add_domain_errors_is_defined_once():
    found = subprocess.run(
        ["grep", "-rln", "def add_domain_errors", "accounts", "tokens", "asksage_admin"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert found == ["asksage_admin/lib/forms.py"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "Enter an amount"),
        ("abc", "is not an amount"),
        ("9" * 5000, "too long"),
        ("-1", "negative"),
    ],
)
def test_a_cell_value_is_parsed_by_the_form_with_words(value, words):
    form = CellEditForm({"value": value})
    assert not form.is_valid()
    assert words in " ".join(form.errors["value"])


def test_a_cell_form_gives_the_service_ints():
    form = CellEditForm({"value": "1.5M", "seen": "200000"})
    assert form.is_valid()
    assert form.cleaned_data == {"value": 1_500_000, "seen": 200_000}


@pytest.mark.parametrize("text", ["bob\x00", "\ud800"])
def test_text_the_databases_cannot_store_is_named_on_its_field(text):
    form = DistributionActionForm({"kind": "inference", "action": "split", "users": text})
    assert not form.is_valid()
    assert form.errors["users"][0].startswith("The “users” field contains")
    assert "users" not in form.cleaned_data


@pytest.mark.parametrize("days", ["³", "9" * 5000, "0", "367"])
def test_whole_numbers_are_ascii_digits_within_bounds(days):
    form = ReclaimForm({"kind": "inference", "idle_days": days})
    assert not form.is_valid()
    assert form.errors["idle_days"] == ["Idle days: enter a whole number from 1 to 366."]


def test_bulk_ids_are_parsed_or_the_selection_is_refused():
    assert BulkEditForm(
        {"column": "max_inference_tokens", "mode": "set", "amount": "5", "users": ["7", "8"]}
    ).is_valid()
    form = BulkEditForm(
        {"column": "max_inference_tokens", "mode": "set", "amount": "5", "users": [str(2**64)]}
    )
    assert not form.is_valid() and "The selection is not valid" in form.errors["users"][0]


def test_options_thresholds_become_a_sorted_list_of_ints():
    form = OptionsForm(
        {
            "thresholds": "95%, 50, 80, 50",
            "auto_approve_below_percent": "50",
            "reclaim_idle_days": "30",
        }
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["thresholds"] == [50, 80, 95]


def test_only_a_custom_preset_parses_its_settings():
    assert PresetForm({"preset": "standard", "trigger_percent": "abc"}).is_valid()
    form = PresetForm(
        {"preset": "custom", "trigger_percent": "abc", "step_mode": "percent", "step_value": "2000"}
    )
    assert not form.is_valid()
    assert form.errors["trigger_percent"] == ["Trigger: enter a whole number from 1 to 100."]
    assert "Percent step" in form.errors["step_value"][0]


def test_a_ceiling_of_none_is_no_ceiling():
    form = PresetForm({"preset": "custom", "ceiling": "None"})
    form.is_valid()
    assert form.cleaned_data["ceiling"] is None


def test_services_refuse_an_unparsed_amount(alice, org_a, bob):
    # The services take ints: text that skipped the form is refused, never parsed there.
    with pytest.raises(DomainError):
        allocation_services.pending_bulk_create(
            admin=alice,
            org=org_a,
            memberships=org_a.memberships.all(),
            column="max_inference_tokens",
            mode="set",
            amount="500k",
        )
    with pytest.raises(DomainError):
        distribution_services.distribution_plan(
            org=org_a, kind="inference", action="set", amount="2M"
        )
    assert not PendingEdit.objects.exists()


def test_a_choice_error_never_quotes_what_was_posted():
    class Choice(shared.InputForm):
        colour = forms.ChoiceField(choices=[("red", "Red")])

    form = Choice({"colour": "<script>"})
    assert not form.is_valid()
    assert form.errors["colour"] == ["Choose one of the options."]


@pytest.mark.parametrize(
    ("posted", "value"),
    [("on", True), ("yes", True), ("off", False), ("<script>", False), ("", False)],
)
def test_a_flag_value_is_a_boolean_whatever_was_posted(posted, value):
    form = UserFlagForm({"value": posted})
    assert form.is_valid() and form.cleaned_data["value"] is value


def test_a_flag_with_a_nul_is_refused_with_words_and_changes_nothing(alice_client, bob):
    before = bob.is_paid
    response = alice_client.post(
        f"/panel/users/{bob.pk}/flags/paid/",
        {"value": "off\x00" if before else "on\x00"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    announced = json.loads(response["HX-Trigger"])["announce"]["text"]
    assert announced == "The “value” field contains a NUL character."
    bob.refresh_from_db()
    assert bob.is_paid == before
