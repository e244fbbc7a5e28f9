"""An operation admitted before is admitted again without the document work (issue 19 #3): the
same transport, text, operation name and variables skip the document cache, the bounds and the
cost estimate, but the key is still authenticated, scoped and charged the document's cost."""

from __future__ import annotations

from typing import Any

import pytest

import gql.documents as documents
import gql.pipeline as pipeline
from gql.cost import estimate
from tests.gql.helpers import gql, issue_key
from tests.helpers import ApiClient

QUERY = "query($n: Int!) { insiderSelling(limit: $n) { coins { coinId history(first: 100) { runId } } } }"


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every document lookup and cost estimate the pipeline makes."""
    seen: list[str] = []
    documents_get = documents.Documents.get

    def get(self: documents.Documents, query: str) -> documents.Document:
        seen.append("document")
        return documents_get(self, query)

    def estimated(*args: Any, **kwargs: Any) -> Any:
        seen.append("estimate")
        return estimate(*args, **kwargs)

    monkeypatch.setattr(documents.Documents, "get", get)
    monkeypatch.setattr("gql.pipeline.estimate", estimated)
    return seen


async def test_a_repeated_operation_skips_the_document_but_pays_its_cost(api: ApiClient, walks: list[str]) -> None:
    first = await gql(api, QUERY, {"n": 10})
    assert first.status_code == 200, first.text
    assert walks == ["document", "estimate"]
    cost = first.json()["extensions"]["cost"]
    assert cost["requested"] == 3
    again = await gql(api, QUERY, {"n": 10})
    assert again.status_code == 200, again.text
    assert walks == ["document", "estimate"]  # not walked again
    repeat = again.json()["extensions"]["cost"]
    assert repeat["requested"] == 3
    assert repeat["remaining"] == cost["remaining"] - 3  # charged the document's cost again
    assert again.json()["data"] == first.json()["data"]
    other = await gql(api, QUERY, {"n": 20})  # other variables: a first sight, walked
    assert other.status_code == 200, other.text
    assert walks == ["document", "estimate", "document", "estimate"]


async def test_a_repeated_operation_is_still_scoped(api: ApiClient) -> None:
    assert (await gql(api, QUERY, {"n": 10})).status_code == 200
    key = await issue_key(api, ["keys:manage"])
    refused = await gql(api, QUERY, {"n": 10}, key=key)
    assert refused.status_code == 403, refused.text
    assert refused.json()["errors"][0]["extensions"]["code"] == "insufficient_scope"


async def test_a_repeated_operation_is_refused_over_budget(api: ApiClient) -> None:
    key = await issue_key(api, ["signals:read"], rate_limit=5)
    statuses = [(await gql(api, QUERY, {"n": 10}, key=key)).status_code for _ in range(4)]
    assert statuses[0] == 200 and 429 in statuses, statuses
    refused = await gql(api, QUERY, {"n": 10}, key=key)
    assert refused.status_code == 429
    error = refused.json()["errors"][0]
    assert error["extensions"]["cost"] == {"requested": 3}
    assert "(this query costs 3)" in error["message"]


async def test_the_hot_admissions_are_bounded() -> None:
    hot = pipeline.HotAdmissions(maxsize=3, max_bytes=10_000)
    doc = documents.Documents().get("{ __typename }")
    operation = doc.operation(None)
    assert operation is not None
    for i in range(10):
        hot.put(("POST", f"{{ __typename }} # {i}", None, b"null"), pipeline.Admitted(doc, operation, (), 1, 600))
    assert len(hot) == 3 and hot.bytes == 1800
    hot.put(("POST", "big", None, b"null"), pipeline.Admitted(doc, operation, (), 1, 10_000))
    assert hot.get(("POST", "big", None, b"null")) is None
    for i in range(20):
        hot.put(("POST", f"x{i}", None, b"null"), pipeline.Admitted(doc, operation, (), 1, 600))
    assert hot.bytes <= 10_000 and len(hot) <= 3
