"""Audit values in words: rows store text ("True", "-750000"); people read "yes", "-750,000"."""

import re

from django import template

from tokens.models import COLUMN_LABELS

register = template.Library()

_WHOLE = re.compile(r"-?[0-9]+\Z")
_WORDS = {"True": "yes", "False": "no", "": "—"}


@register.filter
def audit_value(value) -> str:
    text = "" if value is None else str(value)
    if text in _WORDS:
        return _WORDS[text]
    if _WHOLE.match(text) and len(text) <= 20:
        return f"{int(text):,}"
    return text


@register.filter
def audit_column(column: str) -> str:
    return COLUMN_LABELS.get(column) or column.replace("_", " ").capitalize()
