"""GraphiQL's schema request passes the document bounds: the standard introspection query nests
``ofType`` nine levels deep in a fragment on ``__Type``, which is schema metadata, not data."""

from __future__ import annotations

import pytest
from graphql import get_introspection_query, parse

from gql.bounds import check_shape
from tests.gql.helpers import gql
from tests.helpers import ApiClient

IN_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the loop read_only_api runs in


@pytest.fixture
def api(read_only_api: ApiClient) -> ApiClient:
    """The module's tests only read: one primed app for all of them (``read_only_api``)."""
    return read_only_api


@IN_MODULE_LOOP
async def test_the_introspection_query_graphiql_sends_is_answered(api: ApiClient) -> None:
    query = get_introspection_query(descriptions=True, input_value_deprecation=True)  # GraphiQL 3's options
    response = await gql(api, query)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body
    assert {t["name"] for t in body["data"]["__schema"]["types"]} >= {"Query", "Coin", "ScoringRun"}


@IN_MODULE_LOOP
async def test_a_deep_fragment_on_a_data_type_is_still_refused(api: ApiClient) -> None:
    nested = "a { " * 9 + "b" + " }" * 9
    for query in (
        f"fragment F on Coin {{ {nested} }} {{ signal {{ modelVersion }} }}",
        f'{{ coin(coinId: "x") {{ ... on Coin {{ {nested} }} }} }}',
    ):
        response = await gql(api, query)
        assert response.status_code == 400
        assert "maximum depth" in response.json()["errors"][0]["message"]


def test_introspection_parts_are_still_walked_and_bounded() -> None:
    """Outside the data depth limit, not outside the checks: unknown or cyclic fragments under
    ``__schema`` are refused (not a crash), and so is absurd introspection nesting."""
    cases = {
        "{ __schema { types { ...Missing } } }": "Unknown fragment 'Missing'",
        "fragment X on __Type { ofType { ...X } } { __schema { types { ...X } } }": "within itself",
        "{ __schema { types { " + "ofType { " * 30 + "name" + " }" * 30 + " } } }": "maximum depth of 24",
    }
    for query, message in cases.items():
        shape, error = check_shape(parse(query))
        assert shape is None and error is not None and message in error.message, query
