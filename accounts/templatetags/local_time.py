"""Times in the viewer's time zone: `{{ moment|local_time }}`.

The server writes every time in UTC inside `<time datetime="…Z" data-local="…">`, labelled
"UTC", so it reads right without JavaScript. static/js/local-time.js then rewrites the text in
the browser's own time zone (Intl.DateTimeFormat), its zone named, and UTC stays on hover.
"""

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()

# style: (text in UTC before the script runs, whether the text names the zone)
STYLES = {
    "minutes": ("%Y-%m-%d %H:%M", True),
    "seconds": ("%Y-%m-%d %H:%M:%S", True),
    "date": ("%Y-%m-%d", False),
}


@register.filter(is_safe=True)
def local_time(moment: dt.datetime | None, style: str = "minutes") -> str:
    """A `<time>` in UTC for the script to show in local time; "" for no time."""
    if not isinstance(moment, dt.datetime):
        return ""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    utc = moment.astimezone(dt.UTC)
    text, zoned = STYLES.get(style, STYLES["minutes"])
    return format_html(
        '<time datetime="{}" title="{} UTC" data-local="{}">{}{}</time>',
        utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        utc.strftime("%Y-%m-%d %H:%M:%S"),
        style if style in STYLES else "minutes",
        utc.strftime(text),
        " UTC" if zoned else "",
    )
