"""Token Statistics: SVG charts with their numbers, a forecast, and a constant query count."""

import calendar
import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from analytics import charts
from analytics.selectors import forecast as forecast_selectors
from analytics.selectors import statistics as statistics_selectors
from asksage_admin.lib.months import add_months, current_month
from tests.factories import (
    DailyUsageFactory,
    MembershipFactory,
    MonthlyUsageFactory,
    PlatformModelFactory,
    set_max,
    usage_recorded,
    utc_today,
)
from tokens.models import OrgDailyUsage

URL = reverse("analytics:statistics")


def month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


@pytest.fixture(autouse=True)
def clock():
    """A fixed day in the middle of a month: the usage below, the 7-day window and the
    presets' last days lie in March, whatever day the suite runs."""
    with time_machine.travel(dt.datetime(2026, 3, 18, 12, tzinfo=dt.UTC), tick=False):
        yield


@pytest.fixture
def usage(org_a, org_b, bob, alice, dave):
    """This month: bob 195,000 (10,000 a day over the last 7 days), alice 3,460,000
    inference (630,000 today) and 5,000 embedding; bob 123,456 thirteen months ago; dave
    777,777 in the other organization. Each as the recording writes it: days and months."""
    today = utc_today()
    set_max(alice, 10_000_000)
    for n in range(7):  # 70,000 over the last 7 days: 10,000 a day for bob
        usage_recorded(
            organization=org_a, user=bob, tokens=10_000, day=today - dt.timedelta(days=n)
        )
    usage_recorded(organization=org_a, user=bob, tokens=125_000, day=today.replace(day=2))
    usage_recorded(
        organization=org_a,
        user=bob,
        tokens=123_456,
        day=add_months(current_month(), -13).replace(day=10),
    )
    usage_recorded(organization=org_a, user=alice, tokens=630_000, day=today, model="acme-o1-model")
    usage_recorded(organization=org_a, user=alice, tokens=2_830_000, day=today.replace(day=3))
    usage_recorded(
        organization=org_a, user=alice, kind="embedding", model="embed-3", tokens=5_000, day=today
    )
    usage_recorded(organization=org_b, user=dave, tokens=424_242, day=today, model="bird-lm")
    usage_recorded(organization=org_b, user=dave, tokens=353_535, day=today.replace(day=4))


def test_it_draws_each_chart_as_svg_with_its_numbers_in_a_table(alice_client, usage):
    response = alice_client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<svg class="chart-svg"') == 5
    for title in [
        "Tokens used per month",
        "Tokens used per day",
        "Purchased, allocated and used this month",
        "Top users",
        "Usage by model",
    ]:
        assert "<title id=" in html and title in html
    assert "<script" not in html.split("<main")[1]  # charts need no JavaScript
    assert "123,456" in html  # 13 months ago, in the year/month table
    assert "3,655,000" in html  # this month, both users
    assert "630,000" in html and "acme-o1-model" in html and "embed-3" in html


def test_the_tables_are_grouped_by_year_with_year_totals(alice_client, usage):
    years = alice_client.get(URL).context["years"]

    assert [y["year"] for y in years] == sorted(
        {current_month().year, add_months(current_month(), -13).year}, reverse=True
    )
    assert sum(y["total"] for y in years) == 3_655_000 + 5_000 + 123_456


def test_it_never_shows_another_organizations_usage(carol_client, usage):
    html = carol_client.get(URL).content.decode()

    assert "bird-lm" in html and "424,242" in html
    assert "acme-o1-model" not in html and "Bob Member" not in html


def test_top_users_and_models_cover_the_chosen_range(alice_client, usage):
    response = alice_client.get(URL, {"range": "7"})

    assert [u["user__email"] for u in response.context["top"]] == [
        "alice@example.com",
        "bob@example.com",
    ]
    assert response.context["top"][1]["total"] == 70_000
    assert [(m["model"], m["total"]) for m in response.context["models"]] == [
        ("acme-o1-model", 630_000),
        ("gpt-4o", 70_000),
        ("embed-3", 5_000),
    ]
    assert len(response.context["days"]) == 7


def test_models_read_as_the_catalogue_names_them(alice_client, usage):
    PlatformModelFactory(name="acme-o1-model", display_name="Acme Reasoning o1")
    response = alice_client.get(URL, {"range": "7"})

    assert [m["label"] for m in response.context["models"]] == [
        "Acme Reasoning o1",
        "gpt-4o",
        "embed-3",
    ]
    html = response.content.decode()
    assert "Acme Reasoning o1 (Inference)" in html  # the chart's bar
    assert '<code class="muted">acme-o1-model</code>' in html  # the table keeps the name


def test_a_custom_range_is_honoured(alice_client, usage):
    today = utc_today()
    start = today - dt.timedelta(days=2)
    response = alice_client.get(URL, {"range": "custom", "start": start, "end": today})

    assert [d["day"] for d in response.context["days"]] == [
        start + dt.timedelta(days=n) for n in range(3)
    ]
    assert response.context["top"][1]["total"] == 30_000


@pytest.mark.parametrize(
    "query",
    [
        {"range": "custom", "start": "2026-05-02", "end": "2026-05-01"},
        {"range": "custom", "start": "1999-01-01", "end": "2026-05-01"},
        {"range": "365000"},
        {"start": "tomorrow"},
    ],
)
def test_a_bad_range_says_why_and_shows_the_last_30_days(alice_client, usage, query):
    response = alice_client.get(URL, query)

    assert response.status_code == 200
    assert response.context["period_error"]
    assert "Showing the last 30 days instead." in response.content.decode()
    assert len(response.context["days"]) == 30


def test_the_forecast_gives_the_day_each_pool_runs_out(alice_client, usage):
    # Inference: 4,000,000 purchased, 3,655,000 used, 700,000 in 7 days = 100,000 a day;
    # 345,000 left run out on the fourth day from today.
    pools = {p.kind: p for p in alice_client.get(URL).context["pools"]}
    today = utc_today()
    expected = today + dt.timedelta(days=3)

    assert pools["inference"].daily_rate == 100_000
    assert pools["inference"].runs_out == (expected if expected <= month_end(today) else None)
    assert pools["embedding"].daily_rate == 714
    assert pools["embedding"].runs_out is None  # lasts the month


def test_the_forecast_lists_users_who_reach_their_max_before_month_end(alice_client, usage, org_a):
    idle = MembershipFactory(organization=org_a, max_inference_tokens=1_000_000).user
    MonthlyUsageFactory(organization=org_a, user=idle, used=10_000)
    DailyUsageFactory(organization=org_a, user=idle, tokens=7)

    response = alice_client.get(URL)

    at_risk = response.context["at_risk"]
    assert [(u.email, u.kind, u.daily_rate, u.reaches) for u in at_risk] == [
        ("bob@example.com", "inference", 10_000, utc_today())
    ]
    html = response.content.decode()
    assert "Method: the daily rate is the tokens used in the last 7 days" in html
    assert reverse("analytics:user_history", args=[at_risk[0].user_id]) in html


@pytest.mark.parametrize("users", [2, 25])
def test_its_query_count_does_not_grow_with_users_or_days(
    alice_client, org_a, users, django_assert_max_num_queries
):
    today = utc_today()
    for membership in MembershipFactory.create_batch(users, organization=org_a):
        # At their max already: at risk whatever the day of the month (at 150,000 they were
        # not in the month's last days, and the test failed on those days).
        MonthlyUsageFactory(organization=org_a, user=membership.user, used=200_000)
        for n in range(3):
            DailyUsageFactory(
                organization=org_a,
                user=membership.user,
                tokens=20_000,
                day=today - dt.timedelta(days=n),
            )
    # Session, user, membership, sidebar badge, the header bell; 8 reads of the rollups (this
    # month's pool use comes with the months, the users at risk from their snapshot); the
    # catalogue's display names; the session save. The first view finds no snapshot: it
    # computes the users at risk and stores them (2 more).
    with django_assert_max_num_queries(19):
        response = alice_client.get(URL, {"range": "90"})
    assert len(response.context["at_risk"]) == users
    with django_assert_max_num_queries(17):
        response = alice_client.get(URL, {"range": "90"})
    assert len(response.context["at_risk"]) == users


def test_members_are_refused(bob_client):
    assert bob_client.get(URL).status_code == 403


def test_an_empty_organization_gets_empty_charts(alice_client):
    html = alice_client.get(URL).content.decode()

    assert "No usage recorded in this period." in html
    assert "Nobody, at the recent rate." in html


def test_column_geometry_stacks_series_and_scales_to_a_round_maximum():
    chart = charts.columns(
        "t", ["a", "b"], [("inference", "Inf", [30, 0]), ("embedding", "Emb", [10, 20])]
    )

    assert [r.title for r in chart.rects] == ["a — Inf: 30", "a — Emb: 10", "b — Emb: 20"]
    # 40 is the tallest column; the axis steps by 10 and tops out at 40, the full plot height.
    plot = chart.height - 10 - 28
    assert chart.rects[0].height + chart.rects[1].height == pytest.approx(plot, abs=0.2)
    assert [g.text for g in chart.gridlines] == ["0", "10", "20", "30", "40"]


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        (23_000_000, ["0", "5M", "10M", "15M", "20M", "25M"]),
        (25_000_000, ["0", "5M", "10M", "15M", "20M", "25M"]),
        (1_500_000, ["0", "500K", "1M", "1.5M"]),
        (7, ["0", "2", "4", "6", "8"]),
        (1, ["0", "1"]),
        (980, ["0", "200", "400", "600", "800", "1K"]),
    ],
)
def test_axis_ticks_are_round_steps_of_1_2_or_5(top, ticks):
    chart = charts.columns("t", ["a", "b"], [("inference", "Inf", [top, top // 3])])

    assert [g.text for g in chart.gridlines] == ticks  # never 6.25M or 18.75M


def test_months_are_labelled_with_the_full_year():
    chart = charts.month_chart({dt.date(2026, 9, 1): {"inference": 5, "embedding": 0}})

    assert [label.text for label in chart.labels] == ["Sep 2026"]
    assert chart.rects[0].title == "Sep 2026 — Inference: 5"


def test_days_are_labelled_without_a_leading_zero_so_they_never_read_as_a_month():
    day = dt.date(2026, 9, 1)
    chart = charts.day_chart({day: {"inference": 5, "embedding": 0}}, day, day)

    assert [label.text for label in chart.labels] == ["Sep 1"]


def test_an_empty_period_draws_no_axis_of_zeros(alice_client):
    response = alice_client.get(URL)
    html = response.content.decode()

    assert response.context["day_chart"].gridlines == []
    assert 'id="day-chart-title">No usage recorded in this period.' in html
    day_figure = html.split('id="daily-title"')[1].split("</figure>")[0]
    assert "<svg" not in day_figure and "chart-axis" not in day_figure  # no axis of zeros


def test_two_users_with_the_same_name_are_told_apart_by_email(alice_client, org_a):
    for email in ("dana.okafor@example.com", "dana.okafor2@example.com"):
        user = MembershipFactory(organization=org_a, user__name="Dana Okafor", user__email=email)
        usage_recorded(organization=org_a, user=user.user, tokens=5_000)

    html = alice_client.get(URL).content.decode()
    labels = [label.text for label in alice_client.get(URL).context["top_chart"].labels]

    assert "Dana Okafor (dana.okafor@example.com)" in labels
    assert "Dana Okafor (dana.okafor2@example.com)" in labels
    assert "Dana Okafor &lt;dana.okafor2@example.com&gt;: 5,000" in html  # the bar's hover text


def test_a_unique_name_is_shown_alone_and_a_long_label_is_cut_with_its_full_text_on_hover():
    chart = charts.bars("t", [("m" * 200, 10, "inference"), ("short", 5, "inference")], width=520)

    assert chart.labels[0].text.endswith("…") and len(chart.labels[0].text) < 90
    assert chart.rects[0].title == "m" * 200 + ": 10"
    assert chart.labels[2].text == "short"
    assert charts.person_labels([("Ann", "a@x"), ("", "b@x")]) == ["Ann", "b@x"]


def test_a_model_name_of_40_characters_is_shown_whole():
    name = "anthropic.claude-3-5-sonnet-20241022-v2:0"
    chart = charts.model_chart([{"model": name, "kind": "inference", "total": 9}])

    assert chart.labels[0].text == f"{name} (Inference)"


def test_the_forecast_summary_comes_first_and_its_long_list_is_collapsed(alice_client, usage):
    html = alice_client.get(URL).content.decode()

    forecast = html.split('id="forecast-title"')[1].split("</section>")[0]
    assert '<details class="forecast-users">' in forecast
    assert "<summary><strong>1 user</strong>" in forecast
    assert forecast.index("Runs out") < forecast.index("<details")


def test_the_days_and_models_are_read_from_the_organization_rollup(alice_client, org_a, org_b):
    """The chart per day, the models and the pools' recent rate read OrgDailyUsage (a row
    per day, kind and model), not one DailyUsage row per user and day."""
    today = utc_today()
    OrgDailyUsage.objects.create(
        organization=org_a, day=today, kind="inference", model="rollup-lm", tokens=9_100, events=7
    )
    OrgDailyUsage.objects.create(
        organization=org_b, day=today, kind="inference", model="other-lm", tokens=5, events=1
    )

    context = alice_client.get(URL, {"range": "7"}).context

    assert [(m["model"], m["total"], m["requests"]) for m in context["models"]] == [
        ("rollup-lm", 9_100, 7)
    ]
    assert context["days"][-1]["inference"] == 9_100
    assert {p.kind: p.daily_rate for p in context["pools"]}["inference"] == 9_100 // 7


def test_top_users_read_whole_months_from_monthly_usage_and_the_other_days_from_daily(
    org_a, bob, alice
):
    """20 Jan – 5 Mar: February from MonthlyUsage (bob's DailyUsage rows of it are not
    counted again), 20–31 January and 1–5 March from DailyUsage; a partial month's
    MonthlyUsage is not read. Alice's February has no DailyUsage row here (the recording
    writes both; this shows which one is read)."""
    for user, day, kind, tokens in [
        (bob, dt.date(2026, 1, 19), "inference", 1),  # before the period
        (bob, dt.date(2026, 1, 20), "inference", 10),
        (bob, dt.date(2026, 2, 10), "inference", 5_000),  # in the whole month
        (bob, dt.date(2026, 3, 5), "inference", 100),
        (bob, dt.date(2026, 3, 6), "inference", 1_000),  # after the period
    ]:
        DailyUsageFactory(organization=org_a, user=user, day=day, kind=kind, tokens=tokens)
    for user, month, kind, used in [
        (bob, dt.date(2026, 1, 1), "inference", 11),
        (bob, dt.date(2026, 2, 1), "inference", 5_000),
        (bob, dt.date(2026, 3, 1), "inference", 1_100),
        (alice, dt.date(2026, 2, 1), "embedding", 7_000),
    ]:
        MonthlyUsageFactory(organization=org_a, user=user, month=month, kind=kind, used=used)

    top = statistics_selectors.top_users(org_a, dt.date(2026, 1, 20), dt.date(2026, 3, 5))

    assert [(u["user__email"], u["total"], u["inference"], u["embedding"]) for u in top] == [
        ("alice@example.com", 7_000, 0, 7_000),
        ("bob@example.com", 5_110, 5_110, 0),
    ]


def test_top_users_read_a_month_the_period_mostly_covers_as_the_month_less_its_other_days(
    org_a, bob, alice
):
    """3 January – 18 March, on 18 March: January is MonthlyUsage less 1–2 January's
    DailyUsage (2 days read, not 29), February whole, March to date whole (its days after
    today hold nothing). Alice's January has no DailyUsage row here: it shows the month is
    read (the recording writes both)."""
    for user, day, tokens in [
        (bob, dt.date(2026, 1, 2), 100),  # before the period: subtracted
        (bob, dt.date(2026, 1, 20), 1_000),
        (bob, dt.date(2026, 3, 5), 300),
    ]:
        usage_recorded(organization=org_a, user=user, day=day, tokens=tokens)
    MonthlyUsageFactory(organization=org_a, user=alice, month=dt.date(2026, 1, 1), used=7_000)

    top = statistics_selectors.top_users(org_a, dt.date(2026, 1, 3), dt.date(2026, 3, 18))

    assert [(u["user__email"], u["total"]) for u in top] == [
        ("alice@example.com", 7_000),
        ("bob@example.com", 1_300),
    ]


def test_a_member_whose_period_nets_to_nothing_is_not_a_top_user(org_a, bob):
    usage_recorded(organization=org_a, user=bob, day=dt.date(2026, 2, 1), tokens=500)

    assert statistics_selectors.top_users(org_a, dt.date(2026, 2, 2), dt.date(2026, 3, 18)) == []


def _days(first: str, last: str) -> tuple[dt.date, dt.date]:
    return dt.date.fromisoformat(first), dt.date.fromisoformat(last)


@pytest.mark.parametrize(
    ("start", "end", "today", "months", "add", "subtract"),
    [
        # 30 days on 1 December: November less 1 November, December to date.
        (
            "2026-11-02", "2026-12-01", "2026-12-01", ("2026-11-01", "2026-12-01"), [],
            [("2026-11-01", "2026-11-01"), ("2026-12-02", "2026-12-31")],
        ),
        # 30 days on 15 December: half of November by its days (a tie reads the days).
        (
            "2026-11-16", "2026-12-15", "2026-12-15", ("2026-12-01", "2026-12-01"),
            [("2026-11-16", "2026-11-30")], [("2026-12-16", "2026-12-31")],
        ),
        ("2026-01-01", "2026-01-31", "2026-12-01", ("2026-01-01", "2026-01-01"), [], []),
        # A few days of a past month: its days.
        ("2026-03-10", "2026-03-12", "2026-12-01", None, [("2026-03-10", "2026-03-12")], []),
        # Most of a past month: the month less the days either side.
        (
            "2026-03-02", "2026-03-30", "2026-12-01", ("2026-03-01", "2026-03-01"), [],
            [("2026-03-01", "2026-03-01"), ("2026-03-31", "2026-03-31")],
        ),
        # A full year ending today: twelve whole months and December to date.
        (
            "2025-12-01", "2026-12-01", "2026-12-01", ("2025-12-01", "2026-12-01"), [],
            [("2026-12-02", "2026-12-31")],
        ),
    ],
)  # fmt: skip
def test_the_read_plan_takes_each_partly_covered_month_by_its_fewer_days(
    start, end, today, months, add, subtract
):
    day = dt.date.fromisoformat
    plan = statistics_selectors.read_plan(day(start), day(end), day(today))

    assert plan.months == (tuple(map(day, months)) if months else None)
    assert plan.add == tuple(_days(*pair) for pair in add)
    assert plan.subtract == tuple(_days(*pair) for pair in subtract)


def test_the_months_and_this_months_pool_use_are_read_from_the_organization_rollup(
    alice_client, org_a
):
    """One row per day, kind and model, not MonthlyUsage's row per member and month."""
    for day, tokens in [(dt.date(2026, 3, 1), 1_500), (dt.date(2026, 3, 17), 2_500)]:
        OrgDailyUsage.objects.create(
            organization=org_a, day=day, kind="inference", model="m", tokens=tokens, events=1
        )
    OrgDailyUsage.objects.create(
        organization=org_a, day=dt.date(2025, 7, 9), kind="embedding", model="e", tokens=70
    )

    context = alice_client.get(URL).context

    months = {m["month"]: m for y in context["years"] for m in y["months"]}
    assert months[dt.date(2026, 3, 1)]["inference"] == 4_000
    assert months[dt.date(2025, 7, 1)]["embedding"] == 70
    assert {s.kind: s.used for s in context["statuses"]} == {"inference": 4_000, "embedding": 0}


def test_the_forecast_bounds_a_window_across_the_month_start_by_both_months(org_a, bob):
    """3 March: the window is 25 February – 3 March. Bob used 60,000 of it in February and
    15,000 in March: 75,000 in 7 days, 10,714 a day, reaches his 200,000 before the end of
    March. A member whose two months cannot reach their max is not at risk."""
    set_max(bob, 200_000)
    roomy = MembershipFactory(organization=org_a, max_inference_tokens=10_000_000).user
    for user in (bob, roomy):
        for day in (25, 26, 27, 28):
            DailyUsageFactory(
                organization=org_a, user=user, day=dt.date(2026, 2, day), tokens=15_000
            )
        DailyUsageFactory(organization=org_a, user=user, day=dt.date(2026, 3, 1), tokens=15_000)
        MonthlyUsageFactory(organization=org_a, user=user, month=dt.date(2026, 2, 1), used=60_000)
        MonthlyUsageFactory(organization=org_a, user=user, month=dt.date(2026, 3, 1), used=15_000)

    with time_machine.travel(dt.datetime(2026, 3, 3, 12, tzinfo=dt.UTC), tick=False):
        _pools, at_risk = forecast_selectors.forecast(org_a)

    assert [(u.email, u.used, u.daily_rate) for u in at_risk] == [
        ("bob@example.com", 15_000, 10_714)
    ]
