"""Random inputs at the HTTP edges (hypothesis): never a 500, never another org's data."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokens import usage
from tokens.models import UsageEvent

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
usage_bodies = st.fixed_dictionaries(
    {},
    optional={
        "user": st.sampled_from(["bob@example.com", "dave@example.com", "BOB@example.com", ""])
        | json_values,
        "kind": st.sampled_from(["inference", "embedding", "Inference", ""]) | json_values,
        "tokens": st.integers(min_value=-3, max_value=2**60) | json_values,
        "model": st.text(max_size=120) | json_values,
    },
)


@pytest.fixture
def key_a(alice, org_a):
    return usage.api_key_create(actor=alice, org=org_a, name="Gateway")[1]


@FUZZ
@given(body=usage_bodies | json_values, idem=st.text(max_size=300) | st.none())
def test_random_usage_bodies_never_cause_a_500(client, key_a, bob, dave, body, idem):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key_a}"}
    if idem is not None and "\n" not in idem and "\r" not in idem:
        headers["HTTP_IDEMPOTENCY_KEY"] = idem
    response = client.post(
        "/api/v1/usage", data=json.dumps(body), content_type="application/json", **headers
    )
    assert response.status_code in {200, 400, 402, 403, 404, 409, 413}, response.content
    payload = response.json()
    if response.status_code != 200:
        assert set(payload) >= {"error", "detail"}
    assert not UsageEvent.objects.filter(user=dave).exists()  # org B's user, never counted


query_values = st.text(max_size=30) | st.sampled_from(
    ["2026-01-01", "2026-13-40", "custom", "7", "30", "90", "-1", "yes", "no", "on", "admin"]
)
export_queries = st.dictionaries(
    st.sampled_from(
        [
            "range",
            "start",
            "end",
            "q",
            "role",
            "paid",
            "banned",
            "near_limit",
            "actor",
            "target",
            "action",
            "sort",
            "page",
            "status",
            "kind",
            "user",
        ]
    ),
    query_values,
    max_size=5,
)


@FUZZ
@given(
    what=st.sampled_from(["users", "usage-events", "daily-usage", "token-requests", "activity"]),
    query=export_queries,
)
def test_random_export_filters_answer_a_file_or_a_clear_400(alice_client, alice, dave, what, query):
    response = alice_client.get(f"/panel/exports/{what}.csv", query)
    assert response.status_code in {200, 400}
    if response.status_code == 200:
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert b"dave@example.com" not in body  # another organization's user
    else:
        assert response.content  # says why
