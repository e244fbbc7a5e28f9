"""The service's pages: the landing page ``/``, the dashboard, the API docs, the methodology and
validation reports, and the files they load.

Everything is served from this origin: our own scripts are plain ES modules (``static/app``, no
build step) and the front-end packages are their published npm files (``static/vendor``, written by
``make assets``, checked against ``static/vendor/manifest.json`` by a test and by the browser
through ``integrity`` attributes). Pages carry a Content-Security-Policy that only allows this
origin, so a stray third-party request fails loudly instead of leaking.

The landing page is server-rendered from the run store (times and statuses only: no tenant data),
so it works without a key, without JavaScript and in every mode.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gql.graphql_app import GRAPHIQL_ASSETS_PATH
from scoring.schedule import next_run_at

__all__ = [
    "DOCS",
    "SECURITY_HEADERS",
    "RunStatusReader",
    "default_docs_dir",
    "graphiql_page",
    "page_routes",
    "render_markdown",
    "vendor_manifest",
]

STATIC = Path(__file__).with_name("static")
TEMPLATES = STATIC / "pages"
APP_DIR = STATIC / "app"
VENDOR_DIR = STATIC / "vendor"
APP_PATH = "/assets/app"
VENDOR_PATH = "/assets/vendor"

#: The reports served from the repository's ``docs/`` folder: page name -> (file, title).
DOCS = {"methodology": ("methodology.md", "Methodology"), "validation": ("validation.md", "Validation report")}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@cache
def vendor_manifest() -> dict[str, dict[str, str]]:
    """``static/vendor/manifest.json``: each vendored file's package, version and sha384."""
    manifest: dict[str, dict[str, str]] = json.loads((VENDOR_DIR / "manifest.json").read_text())
    return manifest


_SRI = re.compile(r"\{\{sri:([^}]+)\}\}")


@cache
def _template(name: str) -> str:
    """A page template with ``{{sri:<vendored path>}}`` replaced by that file's integrity."""
    text = (TEMPLATES / name).read_text()
    return _SRI.sub(lambda m: vendor_manifest()[m.group(1)]["sha384"], text)


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def default_docs_dir() -> Path | None:
    """``docs/`` of the checkout this package runs from (``make run``), or ``None`` when installed
    without it."""
    path = Path(__file__).resolve().parent.parent / "docs"
    return path if path.is_dir() else None


def graphiql_page() -> str:
    """The GraphiQL page (``gql.graphql_app``): the Authorization template, a hint, no persisted key."""
    return _template("graphiql.html").replace("{{assets}}", GRAPHIQL_ASSETS_PATH)


# -- run status (the landing page) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunStatus:
    last_at: datetime | None
    last_status: str | None
    last_finished_at: datetime | None
    last_succeeded_at: datetime | None
    next_at: datetime | None
    model_version: str | None
    listed: int | None


class RunStatusReader:
    """The last run, the last succeeded run and the next planned run, read at most once a second
    (the landing page needs no key, so its store reads are bounded whatever the traffic)."""

    def __init__(self, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._value: RunStatus | None = None
        self._read_at = float("-inf")

    async def read(self, services: Any) -> RunStatus:
        now = self._clock()
        if self._value is not None and now - self._read_at < self.ttl:
            return self._value
        latest = await services.runs.recent_runs(1)
        last = latest[0] if latest else None
        succeeded = await services.leaderboard.current_run()
        # from the stored runs and the interval: the scheduler may run in another process
        interval = services.leaderboard.interval_seconds
        next_at = next_run_at(last["at"], interval, services.clock()) if last else None
        self._value = RunStatus(
            last_at=last["at"] if last else None,
            last_status=last["status"] if last else None,
            last_finished_at=last.get("finished_at") if last else None,
            last_succeeded_at=succeeded["at"] if succeeded else None,
            next_at=next_at,
            model_version=succeeded.get("model_version") if succeeded else None,
            listed=succeeded.get("listed") if succeeded else None,
        )
        self._read_at = now
        return self._value


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    iso = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f'<time datetime="{iso}">{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC</time>'


def _status_html(status: RunStatus) -> str:
    if status.last_status is None:
        return (
            '<p class="status-line" data-status="none">No scoring run has finished yet. In the embedded '
            "demo mode the first one is ready within seconds of start; reload this page.</p>"
        )
    label = {"succeeded": "succeeded", "failed": "failed", "running": "running now"}.get(
        status.last_status, status.last_status
    )
    rows = [
        (
            "Last run",
            f'{_when(status.last_at)} — <strong class="run-{html.escape(status.last_status)}" '
            f'data-status="{html.escape(status.last_status)}">{html.escape(label)}</strong>',
        ),
        (
            "Last successful run",
            _when(status.last_succeeded_at) + (f" — {status.listed} coins listed" if status.listed is not None else ""),
        ),
        ("Next run (planned)", _when(status.next_at)),
        ("Model version", html.escape(status.model_version or "—")),
    ]
    cells = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="run-status">{cells}</dl>'


# -- the reports (docs/*.md) -------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", text.lower()).strip())


def _rewrite(url: str, docs_dir: Path) -> str | None:
    """Point a report's relative link at what this server serves; ``None`` when it has no page."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith(("/", "#")):
        return url
    target = (docs_dir / parts.path).resolve()
    if not target.is_relative_to(docs_dir.resolve()):
        return None  # e.g. ../scoring/model.toml: part of the repository, not of this server
    rel = target.relative_to(docs_dir.resolve()).as_posix()
    for name, (file, _title) in DOCS.items():
        if rel == file:
            return f"/docs/{name}" + (f"#{parts.fragment}" if parts.fragment else "")
    return f"/docs/files/{rel}"


def render_markdown(text: str, docs_dir: Path) -> str:
    """Our own reports as HTML: CommonMark with tables, raw HTML off, heading anchors, links fixed."""
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    tokens = md.parse(text)
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and i + 1 < len(tokens):
            token.attrSet("id", _slug(tokens[i + 1].content))
        if token.type == "table_open":
            token.attrSet("class", "report-table")
        for child in token.children or ():
            _fix_inline(child, docs_dir)
    return str(md.renderer.render(tokens, md.options, {}))


def _fix_inline(token: Token, docs_dir: Path) -> None:
    attr = {"link_open": "href", "image": "src"}.get(token.type)
    if attr is None:
        return
    url = _rewrite(str(token.attrGet(attr) or ""), docs_dir)
    if url is None:
        token.attrs.pop(attr, None)
    else:
        token.attrSet(attr, url)


# -- routes ------------------------------------------------------------------------------------


def page_routes(*, docs_dir: Path | None, graphiql: bool) -> list[BaseRoute]:
    """The pages and their assets, to add to the app's routes. ``docs_dir`` is the folder of the
    published reports (``docs/`` in a checkout; ``None`` or missing: the pages say so)."""
    status_reader = RunStatusReader()

    async def landing(request: Request) -> Response:
        services = getattr(request.app.state, "services", None)
        status = _status_html(await status_reader.read(services)) if services is not None else ""
        graphiql_link = (
            (
                '<li><a href="/graphql">GraphiQL</a> — write GraphQL queries against the live schema '
                "(put your key in the Headers tab)</li>"
            )
            if graphiql
            else (
                "<li>GraphiQL is turned off on this server (<code>INSIDER_GRAPHIQL</code>); "
                "<code>POST /graphql</code> still answers.</li>"
            )
        )
        body = _template("landing.html").replace("{{status}}", status).replace("{{graphiql}}", graphiql_link)
        return _page(body)

    async def dashboard(request: Request) -> Response:
        published = "present" if report_file("validation") is not None else "missing"
        return _page(_template("dashboard.html").replace("{{validation}}", published))

    async def api_docs(request: Request) -> Response:
        return _page(_template("api-docs.html"))

    def report_file(name: str) -> Path | None:
        if docs_dir is None:
            return None
        path = docs_dir / DOCS[name][0]
        return path if path.is_file() else None

    async def report(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in DOCS:
            return _page(
                _report_page(
                    "Not found",
                    '<p class="notice">There is no report with this name.</p> <a href="/">Back to the start page</a>.',
                    name,
                ),
                404,
            )
        path = report_file(name)
        title = DOCS[name][1]
        if path is None or docs_dir is None:
            notice = (
                f'<p class="notice" role="status" data-missing="{name}">The {title.lower()} has not been '
                f"published on this server yet: <code>docs/{DOCS[name][0]}</code> is not here. "
                'See the <a href="/docs/methodology">methodology</a> meanwhile.</p>'
            )
            return _page(_report_page(title, notice, name), 404)
        return _page(_report_page(title, render_markdown(path.read_text(encoding="utf-8"), docs_dir), name))

    routes: list[BaseRoute] = [
        Route("/", landing, methods=["GET"]),
        Route("/dashboard", dashboard, methods=["GET"]),
        Route("/docs", api_docs, methods=["GET"]),
        Route("/docs/{name:str}", report, methods=["GET"]),
        Mount(APP_PATH, app=StaticFiles(directory=APP_DIR)),
        Mount(VENDOR_PATH, app=StaticFiles(directory=VENDOR_DIR)),
    ]
    if docs_dir is not None:
        routes.insert(3, Mount("/docs/files", app=StaticFiles(directory=docs_dir, check_dir=False)))
    return routes


def _report_page(title: str, content: str, name: str) -> str:
    return (
        _template("report.html")
        .replace("{{title}}", html.escape(title))
        .replace("{{name}}", name)
        .replace("{{content}}", content)
    )
