"""Query-string filters of the analytics pages and exports; every value lives in the URL."""

import datetime as dt

import django_filters
from django import forms
from django.db.models import Q
from django.utils import timezone

from asksage_admin.lib.audit_actions import FAMILIES, filter_choices

MAX_SPAN_DAYS = 366
EARLIEST = dt.date(2000, 1, 1)
RANGES = [("7", "Last 7 days"), ("30", "Last 30 days"), ("90", "Last 90 days")]

# The filter's choices come from the vocabulary: a family filters every `<family>.*`.
ACTIONS = filter_choices()


def today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def day_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start 00:00, the day after end 00:00) in UTC: `end` is included."""
    low = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    end = min(end, dt.date.max - dt.timedelta(days=1))  # 9999-12-31 has no next day
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    return low, high


class DateRangeForm(forms.Form):
    """A period: one of the presets, or a custom start and end (both included, UTC days)."""

    range = forms.ChoiceField(choices=[*RANGES, ("custom", "Custom")], required=False)
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")

    def __init__(self, data=None, *, default: str = "30", **kwargs):
        self.default = default
        super().__init__(data, **kwargs)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        start, end = data.get("start"), data.get("end")
        preset = data.get("range") or ("custom" if start or end else self.default)
        last = today()
        if preset != "custom":
            start, end = last - dt.timedelta(days=int(preset) - 1), last
        else:
            if not start or not end:
                raise forms.ValidationError("A custom range needs both a From and a To date.")
            if start > end:
                raise forms.ValidationError(
                    f"From ({start:%Y-%m-%d}) is after To ({end:%Y-%m-%d}): swap them."
                )
            if start < EARLIEST or end > last + dt.timedelta(days=366):
                raise forms.ValidationError(
                    f"Dates must fall between {EARLIEST:%Y-%m-%d} and next year."
                )
            if (end - start).days + 1 > MAX_SPAN_DAYS:
                raise forms.ValidationError(
                    f"A range covers at most {MAX_SPAN_DAYS} days; this one covers "
                    f"{(end - start).days + 1:,}."
                )
        data.update(range=preset, start=start, end=end)
        return data

    def period(self) -> tuple[dt.date, dt.date]:
        return self.cleaned_data["start"], self.cleaned_data["end"]

    def error_text(self) -> str:
        messages = [m for errors in self.errors.values() for m in errors]
        return " ".join(messages)


class ActivityFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(method="by_actor", label="Actor")
    target = django_filters.CharFilter(method="by_target", label="Target user")
    action = django_filters.ChoiceFilter(
        method="by_action", choices=ACTIONS, empty_label="Any action", label="Action"
    )
    start = django_filters.DateFilter(method="since", label="From")
    end = django_filters.DateFilter(method="until", label="To")

    def by_actor(self, queryset, name, value):
        value = value.strip()[:100]
        if not value:
            return queryset
        return queryset.filter(
            Q(actor__email__icontains=value)
            | Q(actor__name__icontains=value)
            | Q(actor_label__icontains=value)
        )

    def by_target(self, queryset, name, value):
        value = value.strip()[:100]
        if not value:
            return queryset
        return queryset.filter(
            Q(target_user__email__icontains=value) | Q(target_user__name__icontains=value)
        )

    def by_action(self, queryset, name, value):
        if value in FAMILIES:
            return queryset.filter(action__startswith=f"{value}.")
        return queryset.filter(action=value)

    def since(self, queryset, name, value):
        return queryset.filter(created_at__gte=day_bounds(value, value)[0])

    def until(self, queryset, name, value):
        return queryset.filter(created_at__lt=day_bounds(value, value)[1])

    def is_valid(self):
        valid = super().is_valid()
        start, end = self.form.cleaned_data.get("start"), self.form.cleaned_data.get("end")
        if valid and start and end and start > end:
            self.form.add_error("end", f"To ({end:%Y-%m-%d}) is before From ({start:%Y-%m-%d}).")
            return False
        return valid

    def error_text(self) -> str:
        return " ".join(
            f"{self.form.fields[field].label if field in self.form.fields else ''}: {m}".lstrip(
                ": "
            )
            for field, errors in self.form.errors.items()
            for m in errors
        )
