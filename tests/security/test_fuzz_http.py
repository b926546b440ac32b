"""Random inputs at the HTTP edges (hypothesis): never a 500, never another org's data."""

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokens.models import UsageEvent
from tokens.services import api_keys as api_key_services

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# What broke the edges (issue 13): NUL, unpaired surrogates, superscript digits, numbers of
# thousands of digits, ids past 2**63 − 1.
nasty_text = st.text(
    alphabet=st.sampled_from(["\x00", "\ud800", "\udfff", "²", "³", "٣", "9", "b", "@", " "]),
    max_size=12,
)
huge_numbers = st.integers(min_value=2**63 - 2, max_value=2**80) | st.integers(
    min_value=4_290, max_value=6_000
).map(lambda n: "9" * n)
nasty = nasty_text | huge_numbers.map(str)
HEADER_LINE_LIMIT = 8 * 1024
FORM = "application/x-www-form-urlencoded"


def encoded(text: object) -> str:
    """Percent-encoded as a careless client would: a lone surrogate as the bytes of
    'surrogatepass', which no UTF-8 decoder accepts (the test client cannot send it)."""
    return quote(str(text).encode("utf-8", "surrogatepass"), safe="")


def urlencoded(data: dict) -> str:
    return "&".join(
        f"{encoded(name)}={encoded(item)}"
        for name, value in data.items()
        for item in (value if isinstance(value, list) else [value])
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | nasty_text,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
usage_bodies = st.fixed_dictionaries(
    {},
    optional={
        "user": st.sampled_from(["bob@example.com", "dave@example.com", "BOB@example.com", ""])
        | st.sampled_from(["bob\x00@example.com", "bob@example.com\ud800", "\udfff@x"])
        | json_values,
        "kind": st.sampled_from(["inference", "embedding", "Inference", ""]) | json_values,
        "tokens": st.integers(min_value=-3, max_value=2**60) | json_values,
        "model": st.text(max_size=120) | nasty_text | json_values,
    },
)


@pytest.fixture
def key_a(alice, org_a):
    return api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway")[1]


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
    if "HTTP_IDEMPOTENCY_KEY" not in headers or not headers["HTTP_IDEMPOTENCY_KEY"].strip():
        assert response.status_code in {400, 413}  # a report without a key is never counted
    assert not UsageEvent.objects.filter(user=dave).exists()  # org B's user, never counted
    assert not UsageEvent.objects.filter(idempotency_key="").exists()


@FUZZ
@given(email=st.text(max_size=40) | nasty_text.map(lambda t: f"bob{t}@example.com"))
def test_random_emails_in_the_balance_path_never_cause_a_500(client, key_a, bob, email):
    response = client.get(
        f"/api/v1/users/{encoded(email)}/balance", HTTP_AUTHORIZATION=f"Bearer {key_a}"
    )
    assert response.status_code in {200, 400, 404}, response.content
    assert response.json()["user" if response.status_code == 200 else "detail"]


query_values = (
    st.text(max_size=30)
    | nasty
    | st.sampled_from(
        ["2026-01-01", "2026-13-40", "custom", "7", "30", "90", "-1", "yes", "no", "on", "admin"]
    )
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
            "seen",
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
    response = alice_client.get(f"/panel/exports/{what}.csv?{urlencoded(query)}")
    assert response.status_code in {200, 400}
    if response.status_code == 200:
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert b"dave@example.com" not in body  # another organization's user
    else:
        assert response.content  # says why


panel_values = st.text(max_size=30) | nasty | st.sampled_from(["5", "250k", "bob@example.com"])


@FUZZ
@given(value=panel_values, seen=panel_values, users=st.lists(panel_values, max_size=3))
def test_random_cell_and_bulk_edits_answer_with_words_never_a_500(
    alice_client, alice, bob, value, seen, users
):
    cell = alice_client.post(
        f"/panel/users/{bob.pk}/cells/max_inference_tokens/",
        urlencoded({"value": value, "seen": seen}),
        FORM,
        HTTP_HX_REQUEST="true",
    )
    assert cell.status_code in {200, 422}
    bulk = alice_client.post(
        "/panel/users/bulk/",
        urlencoded(
            {"users": users, "column": "max_inference_tokens", "mode": "set", "amount": value}
        ),
        FORM,
        HTTP_HX_REQUEST="true",
    )
    assert bulk.status_code in {200, 422}  # pending edits made, or a refusal with words
    for response in (cell, bulk):
        assert all(len(f"{k}: {v}".encode()) < HEADER_LINE_LIMIT for k, v in response.items())


@FUZZ
@given(
    form=st.fixed_dictionaries(
        {},
        optional={
            name: panel_values | st.just("x" * 20_000)
            for name in ("kind", "action", "amount", "users", "email", "note", "blocks")
        },
    ),
    endpoint=st.sampled_from(["action", "override", "purchase-request", "reclaim", "options"]),
)
def test_random_distribution_forms_answer_with_words_never_a_500(
    alice_client, alice, bob, form, endpoint
):
    response = alice_client.post(
        f"/panel/distribution/{endpoint}/", urlencoded(form), FORM, HTTP_HX_REQUEST="true"
    )
    assert response.status_code in {200, 422}
    assert all(len(f"{k}: {v}".encode()) < HEADER_LINE_LIMIT for k, v in response.items())


@FUZZ
@given(user_id=st.integers(min_value=0, max_value=2**80))
def test_random_ids_in_paths_answer_200_or_404_never_a_500(alice_client, alice, bob, user_id):
    response = alice_client.get(f"/panel/activity/users/{user_id}/")
    assert response.status_code in {200, 404}
    assert alice_client.get(
        f"/panel/users/{user_id}/cells/max_inference_tokens/edit/"
    ).status_code in {200, 404}


def test_a_newline_in_an_api_path_answers_the_apis_json_404(client, key_a):
    """Found by the balance-path fuzzing: "/\n" as an email fell past the API's catch-all
    (whose "." did not match a newline) into Django's HTML 404."""
    response = client.get("/api/v1/users/%2F%0A/balance", HTTP_AUTHORIZATION=f"Bearer {key_a}")

    assert response.status_code == 404
    assert response.json()["error"]


scim_ops = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "Replace", "remove", "copy"]) | json_values},
    optional={
        "path": st.sampled_from(["active", "members", "userName", 'members[value eq "1"]'])
        | nasty
        | json_values,
        "value": json_values | st.fixed_dictionaries({"active": json_values}),
    },
)
scim_bodies = st.fixed_dictionaries(
    {},
    optional={
        "userName": nasty_text.map(lambda t: f"n{t}@example.com") | json_values,
        "displayName": nasty | json_values,
        "active": json_values,
        "Operations": st.lists(scim_ops, max_size=3) | json_values,
    },
)


@pytest.fixture
def scim_key_a(alice, org_a):
    return api_key_services.api_key_create(actor=alice, org=org_a, name="SCIM", scopes=["scim"])[1]


@FUZZ
@given(
    body=scim_bodies | json_values,
    target=st.sampled_from(["Users", "Users/{bob}", "Users/{dave}", "Groups/admin"])
    | nasty.map(lambda t: f"Users/{encoded(t)}"),
    method=st.sampled_from(["post", "put", "patch", "delete"]),
)
def test_random_scim_calls_never_cause_a_500_nor_touch_another_org(
    client, scim_key_a, bob, dave, body, target, method
):
    response = getattr(client, method)(
        "/scim/v2/" + target.format(bob=bob.pk, dave=dave.pk),
        data=json.dumps(body),
        content_type="application/scim+json",
        HTTP_AUTHORIZATION=f"Bearer {scim_key_a}",
    )
    assert response.status_code in {200, 201, 204, 400, 404, 405, 409, 413}, response.content
    dave.refresh_from_db()  # org B's user: never banned, renamed or re-roled by org A's token
    assert (dave.is_banned, dave.email, dave.membership.role) == (
        False,
        "dave@example.com",
        "member",
    )


@FUZZ
@given(query=nasty | st.text(max_size=40))
def test_random_scim_filters_never_cause_a_500(client, scim_key_a, bob, query):
    response = client.get(
        f"/scim/v2/Users?filter=userName%20eq%20%22{encoded(query)}%22&count={encoded(query)}",
        HTTP_AUTHORIZATION=f"Bearer {scim_key_a}",
    )
    assert response.status_code in {200, 400}, response.content
