"""Search and filters of the user table; every value lives in the query string."""

import django_filters
from django import forms
from django.db.models import F, Q

from accounts.sign_in import SECOND_FACTOR_LABELS, SIGN_IN_LABELS

YES_NO = [("yes", "Yes"), ("no", "No")]


class UserTableFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Name or email", "autocomplete": "off"}
        ),
    )
    role = django_filters.ChoiceFilter(
        field_name="membership__role",
        choices=[("admin", "Admins"), ("member", "Members")],
        empty_label="Any role",
        label="Role",
    )
    paid = django_filters.ChoiceFilter(
        method="flag", choices=YES_NO, empty_label="Paid or not", label="Paid"
    )
    banned = django_filters.ChoiceFilter(
        method="flag", choices=YES_NO, empty_label="Banned or not", label="Banned"
    )
    sign_in = django_filters.ChoiceFilter(
        field_name="sign_in",
        choices=list(SIGN_IN_LABELS.items()),
        empty_label="Any sign-in",
        label="Sign-in",
    )
    second_factor = django_filters.ChoiceFilter(
        field_name="second_factor",
        choices=list(SECOND_FACTOR_LABELS.items()),
        empty_label="Any second factor",
        label="Second factor",
    )
    near_limit = django_filters.BooleanFilter(
        method="over_80",
        label="Over 80 % used",
        widget=forms.CheckboxInput,
    )

    def search(self, queryset, name, value):
        value = value.strip()[:100]
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(email__icontains=value))

    def flag(self, queryset, name, value):
        return queryset.filter(**{f"is_{name}": value == "yes"})

    def over_80(self, queryset, name, value):
        if not value:
            return queryset
        # used / max >= 80 %, in integers: used * 5 >= max * 4 (a zero max never matches).
        return queryset.filter(
            Q(
                inf_used__gt=0,
                inf_used__gte=F("membership__max_inference_tokens") * 4 / 5,
            )
            | Q(
                emb_used__gt=0,
                emb_used__gte=F("membership__max_embedding_tokens") * 4 / 5,
            )
        )
