"""Times in the viewer's time zone: rendered in UTC with a machine-readable datetime and a UTC
title, rewritten in the browser by static/js/local-time.js (served by us, no inline script)."""

import datetime as dt

import pytest
import time_machine
from django.contrib.staticfiles import finders
from django.template import Context, Template
from django.urls import reverse

MOMENT = dt.datetime(2026, 1, 15, 15, 4, 5, tzinfo=dt.UTC)


def test_a_time_is_written_in_utc_for_the_script_to_show_in_local_time():
    html = Template("{% load local_time %}{{ t|local_time }}|{{ t|local_time:'date' }}").render(
        Context({"t": MOMENT.astimezone(dt.timezone(dt.timedelta(hours=-5)))})
    )

    assert html == (
        '<time datetime="2026-01-15T15:04:05Z" title="2026-01-15 15:04:05 UTC" '
        'data-local="minutes">2026-01-15 15:04 UTC</time>|'
        '<time datetime="2026-01-15T15:04:05Z" title="2026-01-15 15:04:05 UTC" '
        'data-local="date">2026-01-15</time>'
    )


def test_no_time_renders_nothing_so_a_default_can_say_never():
    html = Template("{% load local_time %}{{ t|local_time|default:'never' }}").render(
        Context({"t": None})
    )

    assert html == "never"


def test_the_activity_log_shows_times_for_the_local_time_script(alice_client, audit, bob):
    with time_machine.travel(MOMENT, tick=False):
        audit(target_user=bob)

    html = alice_client.get(reverse("analytics:activity")).content.decode()

    assert (
        '<time datetime="2026-01-15T15:04:05Z" title="2026-01-15 15:04:05 UTC" '
        'data-local="seconds">2026-01-15 15:04:05 UTC</time>'
    ) in html
    assert '<script src="/static/js/local-time.js"' in html.split("</head>")[0]
    assert finders.find("js/local-time.js")


def test_a_members_last_login_is_labelled_and_shown_for_the_local_time_script(alice_client, bob):
    bob.last_login = MOMENT
    bob.save(update_fields=["last_login"])

    html = alice_client.get(reverse("analytics:user_history", args=[bob.pk])).content.decode()

    assert (
        '<dt>Last login</dt><dd><time datetime="2026-01-15T15:04:05Z" '
        'title="2026-01-15 15:04:05 UTC" data-local="minutes">2026-01-15 15:04 UTC</time></dd>'
    ) in html


def test_the_user_table_shows_last_login_for_the_local_time_script(alice_client, bob):
    bob.last_login = MOMENT
    bob.save(update_fields=["last_login"])

    html = alice_client.get(reverse("tokens:users")).content.decode()

    assert '<time datetime="2026-01-15T15:04:05Z"' in html
    assert ">Last login<" in html or "Last login</a>" in html


@pytest.mark.parametrize("what", ["usage-events", "token-requests", "activity"])
def test_exports_keep_times_in_utc_and_say_so_in_their_header(alice_client, what):
    response = alice_client.get(reverse("analytics:export", args=[what]))

    header = next(iter(response.streaming_content)).decode("utf-8-sig").splitlines()[0]
    assert "(UTC)" in header
