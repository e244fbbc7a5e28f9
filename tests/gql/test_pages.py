"""The pages over HTTP (no browser): the landing page's run status and links, the reports, the
vendored front-end files against their npm packages, security headers and the dashboard's weight.
The browser tests are in tests/web."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from gql.pages import APP_DIR, CSP, TEMPLATES, VENDOR_DIR, page_routes, render_markdown, vendor_manifest
from tests.helpers import ROOT, ApiClient, make_settings, start_app

INTEGRITY = re.compile(r'(?:src|href)="(/assets/vendor/[^"]+)"\s+integrity="(sha384-[^"]+)"')
#: The dashboard's budget: every file its first load fetches, gzip-compressed.
DASHBOARD_BUDGET = 400 * 1024


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


async def test_landing_page_shows_the_last_and_next_run_and_links_everywhere(api: ApiClient) -> None:
    run = await api.services.leaderboard.current_run()
    page = await api.http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP
    html = page.text
    assert 'data-status="succeeded"' in html
    assert f'datetime="{run["at"]:%Y-%m-%dT%H:%M:%SZ}"' in html
    assert "Next run (planned)" in html and run["model_version"] in html
    for href in ("/dashboard", "/docs", "/graphql", "/v1/openapi.json", "/docs/methodology", "/docs/validation"):
        assert f'href="{href}"' in html, href
    assert "sk_live_" not in html.replace("sk_live_…", "")  # never a key, not even the demo's
    # the curl example works when pasted: an absolute URL of this server
    assert "curl -G http://test/v1/insider-selling/data \\" in html, html[html.find("curl") - 40 :][:200]


async def test_every_page_says_demo_while_the_demo_source_runs(api: ApiClient) -> None:
    for path in ("/", "/dashboard", "/docs", "/docs/methodology", "/docs/validation", "/docs/nope"):
        html = (await api.http.get(path)).text
        assert html.count('id="demo-banner"') == 1, path
        assert "simulated market" in html, path
    # a live source: no label (the label follows the source of the run being served)
    run = await api.services.leaderboard.current_run()
    await api.services.runs.runs.update_one({"run_id": run["run_id"]}, {"$set": {"source": "live"}})
    deadline = asyncio.get_running_loop().time() + 5.0  # the run status is re-read once a second
    while 'id="demo-banner"' in (await api.http.get("/")).text:
        assert asyncio.get_running_loop().time() < deadline, "the demo label outlived the demo source"
        await asyncio.sleep(0.1)
    for path in ("/", "/dashboard", "/docs"):
        assert 'id="demo-banner"' not in (await api.http.get(path)).text, path


async def test_landing_page_names_a_failed_last_run_and_the_run_still_served(api: ApiClient) -> None:
    run = await api.services.leaderboard.current_run()
    await api.services.runs.start("run_x", run["at"] + timedelta(minutes=30), "v", "demo")
    await api.services.runs.fail("run_x", "NoData: nothing")
    html = (await api.http.get("/")).text
    assert 'data-status="failed"' in html
    assert f'Last successful run</dt><dd><time datetime="{run["at"]:%Y-%m-%dT%H:%M:%SZ}"' in html


@pytest.fixture
async def unprimed() -> AsyncIterator[ApiClient]:
    async for client in start_app(make_settings(graphiql=False), prime=False):
        yield client


async def test_landing_page_before_the_first_run_and_without_graphiql(unprimed: ApiClient) -> None:
    html = (await unprimed.http.get("/")).text
    assert "No scoring run has finished yet" in html
    assert 'href="/graphql"' not in html and "GraphiQL is turned off" in html
    assert (await unprimed.http.get("/dashboard")).status_code == 200  # pages work in every mode


async def test_methodology_is_rendered_with_working_links(api: ApiClient) -> None:
    page = await api.http.get("/docs/methodology")
    assert page.status_code == 200
    html = page.text
    assert "<h1" in html and 'class="report-table"' in html
    assert "../scoring/model.toml" not in html  # repository paths are not links on this server
    raw = await api.http.get("/docs/files/methodology.md")
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/markdown")
    assert raw.text == (ROOT / "docs" / "methodology.md").read_text()


async def test_every_docs_page_is_rendered_and_its_links_are_served(read_only_api: ApiClient) -> None:
    """Each page of docs/ that the server names (methodology, validation, the API, operations,
    security...) renders, and every link it makes to this server answers."""
    import re

    from gql.pages import DOCS

    for name, (_file, title) in DOCS.items():
        page = await read_only_api.http.get(f"/docs/{name}")
        assert page.status_code == 200, name
        assert "<h1" in page.text and title in page.text, name
        for href in set(re.findall(r'href="(/docs/[^"#]*)', page.text)):
            assert (await read_only_api.http.get(href)).status_code == 200, (name, href)


def test_markdown_links_images_and_raw_html(tmp_path: Path) -> None:
    (tmp_path / "validation.md").write_text("x")
    html = render_markdown(
        "# Title A\n\n[m](methodology.md#2-x) [v](validation.md) [f](figs/a.png) [out](../x.toml) "
        "[web](https://example.org)\n\n![chart](figs/chart.svg)\n\n<script>alert(1)</script>\n",
        tmp_path,
    )
    assert '<h1 id="title-a">' in html
    assert 'href="/docs/methodology#2-x"' in html and 'href="/docs/validation"' in html
    assert 'href="/docs/files/figs/a.png"' in html and 'src="/docs/files/figs/chart.svg"' in html
    assert "<a>out</a>" in html and 'href="https://example.org"' in html
    assert "<script>" not in html  # raw HTML is escaped


async def _client(docs_dir: Path | None) -> httpx.AsyncClient:
    app = Starlette(routes=page_routes(docs_dir=docs_dir, graphiql=True))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_validation_report_when_present_and_when_missing(tmp_path: Path) -> None:
    async with await _client(tmp_path) as http:
        missing = await http.get("/docs/validation")
        assert missing.status_code == 404
        assert "has not been published on this server yet" in missing.text
        assert 'data-missing="validation"' in missing.text
        (tmp_path / "validation.md").write_text("# Validation\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![c](v/c.svg)\n")
        (tmp_path / "v").mkdir()
        (tmp_path / "v" / "c.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
        present = await http.get("/docs/validation")
        assert present.status_code == 200 and "<table" in present.text and 'src="/docs/files/v/c.svg"' in present.text
        assert (await http.get("/docs/files/v/c.svg")).status_code == 200
        assert (await http.get("/docs/files/../pyproject.toml")).status_code == 404
        assert (await http.get("/docs/nothing")).status_code == 404
    async with await _client(None) as http:
        assert (await http.get("/docs/methodology")).status_code == 404


def test_vendored_files_are_the_npm_packages_published_files() -> None:
    """Each vendored file is listed with its sha384, and its package's version and npm integrity
    are the lockfile's (``make assets`` rebuilds them from ``npm ci``)."""
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text())["packages"]
    package = json.loads((ROOT / "web" / "package.json").read_text())
    manifest = vendor_manifest()
    on_disk = {p.relative_to(VENDOR_DIR).as_posix() for p in VENDOR_DIR.rglob("*") if p.is_file()}
    assert on_disk == set(manifest) | {"manifest.json"}
    for path, entry in manifest.items():
        assert sri((VENDOR_DIR / path).read_bytes()) == entry["sha384"], path
        locked = lock[f"node_modules/{entry['package']}"]
        assert entry["version"] == locked["version"] == package["dependencies"][entry["package"]]
        assert entry["npm_integrity"] == locked["integrity"]
        assert path.startswith(f"{entry['package']}@{entry['version']}/")


@pytest.mark.parametrize("path", ["/docs", "/dashboard"])
async def test_pages_load_vendored_files_with_matching_integrity(api: ApiClient, path: str) -> None:
    page = await api.http.get(path)
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP and page.headers["referrer-policy"] == "no-referrer"
    tags = INTEGRITY.findall(page.text)
    assert tags
    for url, integrity in tags:
        served = await api.http.get(url)
        assert served.status_code == 200, url
        assert sri(served.content) == integrity, url  # the browser refuses anything else
    assert "https://" not in re.sub(r"https://[^\"' ]*w3\.org[^\"' ]*", "", page.text)


def dashboard_files() -> list[Path]:
    """What the dashboard's first load fetches: its page, our modules and stylesheet, uPlot."""
    html = (TEMPLATES / "dashboard.html").read_text()
    vendored = [VENDOR_DIR / m for m in re.findall(r'/assets/vendor/([^"]+)"', html)]
    return [TEMPLATES / "dashboard.html", *sorted(APP_DIR.glob("*.js")), APP_DIR / "site.css", *vendored]


def test_dashboard_assets_weigh_at_most_400_kb_compressed() -> None:
    files = dashboard_files()
    assert any(f.name == "uPlot.esm.js" for f in files)
    compressed = sum(len(gzip.compress(f.read_bytes(), compresslevel=6)) for f in files)
    raw = sum(f.stat().st_size for f in files)
    print(f"dashboard assets: {len(files)} files, {raw / 1024:.1f} KB raw, {compressed / 1024:.1f} KB gzip")
    assert compressed <= DASHBOARD_BUDGET
