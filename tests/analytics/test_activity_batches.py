"""A saved batch of allocation edits on the Activity Logs page: one row that opens to list its
changes (issue 16, item 3). Pagination, filters and exports stay one audit row at a time."""

import csv
import io

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

URL = reverse("analytics:activity")


def test_a_saved_batch_shows_as_one_group_listing_each_change(alice_client, saved_batch):
    response = alice_client.get(URL)

    items = response.context["items"]
    assert [getattr(item, "is_batch", False) for item in items] == [True, False]
    group = items[0]
    assert group.batch_id == saved_batch.id
    assert len(group.entries) == group.total == 12
    html = response.content.decode()
    assert html.count('<details class="batch-details">') == 1
    assert "Saved 12 changes together" in html
    assert html.count("200,000 → 300,000") == 12


def test_filtering_by_action_still_finds_the_batch_grouped(alice_client, saved_batch):
    response = alice_client.get(URL, {"action": "allocation"})

    (group,) = response.context["items"]
    assert len(group.entries) == 12
    assert response.context["page"].paginator.count == 12


def test_a_batch_over_a_page_edge_says_how_many_are_on_this_page(
    alice_client, saved_batch, audit, bob, settings
):
    for i in range(45):
        audit("user.banned", target_user=bob, column="banned", old=False, new=bool(i % 2))

    first = alice_client.get(URL).context["items"]
    second = alice_client.get(URL, {"page": 2}).context["items"]

    assert len(first) == 46  # 45 rows, then 5 of the batch in one group
    assert len(first[-1].entries) == 5 and first[-1].total == 12
    assert len(second[0].entries) == 7 and second[0].total == 12
    assert "5 on this page" in alice_client.get(URL).content.decode()


def test_the_export_keeps_one_row_per_change_with_raw_numbers(alice_client, saved_batch):
    response = alice_client.get(reverse("analytics:export", args=["activity"]))

    body = b"".join(response.streaming_content) if response.streaming else response.content
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    changes = [row for row in rows if "300000" in row]
    assert len(changes) == 12
    assert all("200000" in row for row in changes)


def test_the_page_shows_no_template_comment_text(alice_client, saved_batch):
    """A `{# #}` comment is one line only: over several lines it was printed atop every page."""
    html = alice_client.get(URL).content.decode()

    assert "{#" not in html and "#}" not in html
