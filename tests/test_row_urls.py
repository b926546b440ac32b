"""`row_url` (and the `{% row_url %}` tag) give exactly what `reverse` gives, for the URLs a
User Management row links to, under a script prefix too."""

import pytest
from django.template import Context, Template
from django.urls import clear_script_prefix, reverse, set_script_prefix

from asksage_admin.lib.row_urls import row_url

ROW_URLS = [
    ("analytics:user_history", ()),
    ("tokens:cell", ("max_inference_tokens",)),
    ("tokens:cell_edit", ("max_embedding_tokens",)),
    ("tokens:user_flag", ("banned",)),
    ("tokens:user_flag", ("paid",)),
    ("tokens:member_role", ()),
    ("tokens:member_remove", ()),
]


@pytest.mark.parametrize(("name", "rest"), ROW_URLS)
@pytest.mark.parametrize("pk", [1, 42, 9_081_726_354, 2**63 - 1])
def test_row_url_is_what_reverse_gives(name, rest, pk):
    assert row_url(name, pk, *rest) == reverse(name, args=[pk, *rest])


def test_row_url_follows_the_script_prefix():
    expected_plain = reverse("tokens:cell", args=[7, "max_inference_tokens"])
    set_script_prefix("/console/")
    try:
        prefixed = row_url("tokens:cell", 7, "max_inference_tokens")
        assert prefixed == reverse("tokens:cell", args=[7, "max_inference_tokens"])
        assert prefixed.startswith("/console/")
    finally:
        clear_script_prefix()
    assert row_url("tokens:cell", 7, "max_inference_tokens") == expected_plain


def test_row_url_refuses_an_id_that_is_not_a_number():
    with pytest.raises(ValueError):
        row_url("tokens:member_role", "7/../../staff")


def test_the_tag_renders_the_same_url_as_the_url_tag():
    context = Context({"pk": 5})
    tag = Template("{% load row_urls %}{% row_url 'tokens:user_flag' pk 'paid' %}")
    url = Template("{% url 'tokens:user_flag' pk 'paid' %}")
    assert tag.render(context) == url.render(context) == "/panel/users/5/flags/paid/"
