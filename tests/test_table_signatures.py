"""The cached `django_tables2.utils.signature` answers exactly what django-tables2's own does,
for the kinds of callables a column's `render` can be."""

import functools

from django_tables2 import utils

from asksage_admin.lib import tables


class Column:
    def render(self, value, record):
        return value

    def render_all(self, **kwargs):
        return kwargs

    @staticmethod
    def render_static(value):
        return value

    @classmethod
    def render_class(cls, table, value=None):
        return table


def plain(record, *args, bound_column=None):
    return record


class Unhashable:
    __hash__ = None

    def __call__(self, value):
        return value


CALLABLES = [
    Column().render,
    Column().render_all,
    Column.render_static,
    Column.render_class,
    Column.render,  # the function, self included
    plain,
    lambda value: value,
    functools.partial(plain, bound_column=1),
    Unhashable(),
]


def test_the_cache_is_installed_for_the_tables():
    assert utils.signature is tables._signature


def test_the_cached_answer_is_django_tables2s_own_for_every_kind_of_callable():
    for fn in CALLABLES:
        assert tables._signature(fn) == tables._inspect(fn), fn
        assert tables._signature(fn) == tables._inspect(fn), fn  # the second, cached answer


def test_two_columns_of_one_class_share_one_cached_answer():
    tables._cached.cache_clear()
    tables._signature(Column().render)
    tables._signature(Column().render)
    assert tables._cached.cache_info().hits == 1


def test_call_with_appropriate_still_passes_only_what_render_takes():
    assert utils.call_with_appropriate(Column().render, {"value": 1, "record": 2, "x": 3}) == 1
    assert utils.call_with_appropriate(Column().render, {"value": 1}) is None
    assert utils.call_with_appropriate(Column().render_all, {"a": 1}) == {"a": 1}
