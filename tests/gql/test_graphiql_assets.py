"""The GraphiQL page loads its scripts from this server, and they are the published files."""

from __future__ import annotations

import base64
import hashlib
import re

from gql.pages import GRAPHIQL_ASSETS_DIR, GRAPHIQL_ASSETS_PATH
from tests.helpers import ApiClient

TAG = re.compile(r'(?:src|href)="([^"]+)"\s+integrity="sha384-([^"]+)"')


async def test_graphiql_page_uses_local_assets_with_matching_integrity(api: ApiClient) -> None:
    page = await api.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    html = page.text
    assert "unpkg.com" not in html
    assets = TAG.findall(html)
    assert len(assets) >= 6  # react, react-dom, graphiql (js, css), the explorer plugin (js, css)
    for url, integrity in assets:
        assert url.startswith(f"{GRAPHIQL_ASSETS_PATH}/")
        served = await api.http.get(url)
        assert served.status_code == 200, url
        digest = base64.b64encode(hashlib.sha384(served.content).digest()).decode()
        assert digest == integrity, url  # the browser would refuse anything else
        assert (GRAPHIQL_ASSETS_DIR / url.removeprefix(f"{GRAPHIQL_ASSETS_PATH}/")).is_file()
