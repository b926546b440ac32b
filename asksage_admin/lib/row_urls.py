"""URLs of a table's rows: one `reverse` per URL name and shape, the row's id put in after.

Django's `reverse` costs about 30 µs (it walks the resolver and checks every argument against
its converter); a User Management page asks for 11 URLs a row, 550 a page: 17 ms of a page
of about 150. Each distinct (URL name, the arguments other than the id) is reversed once with
a sentinel id, and the row's id replaces the sentinel. The cache key includes the URLconf and
the script prefix (a deployment under a sub-path, a test's `ROOT_URLCONF`), which `reverse`
reads from the current thread.
"""

from functools import lru_cache

from django.urls import get_script_prefix, get_urlconf, reverse

# An id no row has and no URL contains otherwise: replaced by the row's id.
_SENTINEL = "9081726354"


@lru_cache(maxsize=512)
def _pattern(urlconf: str | None, prefix: str, name: str, rest: tuple) -> tuple[str, str]:
    url = reverse(name, urlconf=urlconf, args=[int(_SENTINEL), *rest])
    if url.count(_SENTINEL) != 1:
        raise ValueError(f"{name}: the sentinel id must appear once in {url!r}")
    before, after = url.split(_SENTINEL)
    return before, after


def row_url(name: str, pk: int, *rest) -> str:
    """`reverse(name, args=[pk, *rest])` for a URL whose first argument is an integer id."""
    before, after = _pattern(get_urlconf(), get_script_prefix(), name, tuple(rest))
    return f"{before}{int(pk)}{after}"
