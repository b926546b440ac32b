"""`{% row_url 'name' row.pk other_args %}`: `{% url %}` for the many rows of a table, at a
fraction of the cost (see asksage_admin.lib.row_urls). Escaped like any simple tag's output."""

from django import template

from asksage_admin.lib.row_urls import row_url as build

register = template.Library()


@register.simple_tag
def row_url(name: str, pk: int, *rest) -> str:
    return build(name, pk, *rest)
