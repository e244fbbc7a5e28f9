"""No coroutine is ever dropped unawaited (issue 9 item 8: "coroutine `_async_resolver` was never
awaited" on stderr under generated load, and "Exception ignored … KeyError: '__import__'" when such a
coroutine was only collected at interpreter shutdown).

graphql-core runs sibling fields and list items as tasks (``gather_with_cancel``). When one of them
fails with an error that propagates (a non-null field), the siblings still pending are cancelled,
some before their first step. A task cancelled before it starts never runs its coroutine, so every
coroutine that coroutine was handed (the resolver's own ``_async_resolver`` coroutine, a nested
selection's ``get_results`` …) is dropped without being awaited."""

from __future__ import annotations

import gc
import warnings

import pytest

from tests.gql.helpers import gql
from tests.helpers import ApiClient

#: A root field with async fields below it (``count``, each coin's ``history``), next to a root
#: field that fails at once with a non-null error (so the whole ``data`` is null).
BOARD = "insiderSelling { count coins { coinId history(first: 2) { score } } }"
DOCUMENTS = {
    "board_limit": f"{{ a: {BOARD} b: insiderSelling(limit: 0) {{ count }} }}",
    "runs_first": f"{{ {BOARD} runs(first: 0) {{ runId }} }}",
    "history_first": f'{{ {BOARD} scoreHistory(coinId: "nope", first: 0) {{ edges {{ cursor }} }} }}',
    "viewer_board_limit": f"""{{ viewer {{ tenant {{ id }} apiKey {{ keyId }} }} {BOARD}
                               b: insiderSelling(limit: 0) {{ count }} }}""",
}


@pytest.mark.parametrize("name", list(DOCUMENTS))
async def test_no_coroutine_is_left_unawaited(api: ApiClient, name: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(5):
            response = await gql(api, DOCUMENTS[name])
            body = response.json()
            assert response.status_code == 400, body
            assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "parameter_invalid", body
        gc.collect()
    never_awaited = [str(w.message) for w in caught if "was never awaited" in str(w.message)]
    assert never_awaited == []
