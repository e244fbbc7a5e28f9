"""The service's pages: the landing page ``/``, the dashboard, the API docs, the methodology and
validation reports, and the files they load.

Everything is served from this origin: our own scripts are plain ES modules (``static/app``, no
build step) and the front-end packages are their published npm files (``static/vendor``, written by
``make assets``, checked against ``static/vendor/manifest.json`` by a test and by the browser
through ``integrity`` attributes). Pages carry a Content-Security-Policy that only allows this
origin, so a stray third-party request fails loudly instead of leaking.

The landing page is server-rendered from the run store (times and statuses only: no tenant data),
so it works without a key, without JavaScript and in every mode.

Every page is rendered by Jinja2 (Starlette's ``Jinja2Templates``) with autoescaping on for every
template and undefined names refused: no page is assembled by string formatting, so a value from a
request (a report's name in the path) or from the store reaches the HTML escaped. The one markup
passed in as such is a report rendered from our own ``docs/*.md`` by markdown-it with raw HTML off.
"""

from __future__ import annotations

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

import jinja2
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from scoring.schedule import next_run_at

__all__ = [
    "DOCS",
    "GRAPHIQL_ASSETS_DIR",
    "GRAPHIQL_ASSETS_PATH",
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
#: Where the GraphiQL page's scripts and styles are served from (a Mount in ``gql.app``).
GRAPHIQL_ASSETS_PATH = "/graphiql-assets"
GRAPHIQL_ASSETS_DIR = STATIC / "graphiql"

#: The reports served from the repository's ``docs/`` folder: page name -> (file, title).
DOCS = {
    "methodology": ("methodology.md", "Methodology"),
    "validation": ("validation.md", "Validation report"),
    "api": ("api.md", "The API"),
    "webhooks": ("webhooks.md", "Webhooks"),
    "operations": ("operations.md", "Operations"),
    "security": ("security.md", "Security"),
    "performance": ("performance.md", "Performance"),
}

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


def _sri(path: str) -> str:
    """A vendored file's ``integrity`` value (``sri("uplot@1.6.32/dist/uPlot.esm.js")`` in a template)."""
    return vendor_manifest()[path]["sha384"]


@cache
def templates() -> Jinja2Templates:
    """The page templates (``static/pages``): autoescape on for all, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
    )
    env.globals["sri"] = _sri
    return Jinja2Templates(env=env)


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return templates().TemplateResponse(request, name, context, status_code=status, headers=SECURITY_HEADERS)


def default_docs_dir() -> Path | None:
    """``docs/`` of the checkout this package runs from (``make run``), or ``None`` when installed
    without it."""
    path = Path(__file__).resolve().parent.parent / "docs"
    return path if path.is_dir() else None


def graphiql_page() -> str:
    """The GraphiQL page (``gql.graphql_app``): the Authorization template, a hint, no persisted key."""
    return templates().get_template("graphiql.html").render(assets=GRAPHIQL_ASSETS_PATH)


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
    source: str | None = None  # the market source of the latest succeeded run ("demo", "live", ...)


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
            source=succeeded.get("source") if succeeded else None,
        )
        self._read_at = now
        return self._value


def _when(value: datetime | None) -> tuple[str, str] | None:
    """``(ISO 8601 instant, "YYYY-MM-DD HH:MM")`` in UTC for the template's ``<time>``, or None."""
    if value is None:
        return None
    value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ"), value.strftime("%Y-%m-%d %H:%M")


def _status_context(status: RunStatus | None) -> dict[str, Any]:
    if status is None:
        return {"status": None, "times": {}, "status_label": ""}
    label = {"succeeded": "succeeded", "failed": "failed", "running": "running now"}
    return {
        "status": status,
        "status_label": label.get(status.last_status or "", status.last_status or ""),
        "times": {
            "last_at": _when(status.last_at),
            "last_succeeded_at": _when(status.last_succeeded_at),
            "next_at": _when(status.next_at),
        },
    }


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

    async def status(request: Request) -> RunStatus | None:
        services = getattr(request.app.state, "services", None)
        return await status_reader.read(services) if services is not None else None

    async def demo(request: Request) -> bool:
        """True while this server scores the demo's simulated market: every page says so."""
        current = await status(request)
        return current is not None and current.source == "demo"

    async def landing(request: Request) -> Response:
        current = await status(request)
        context = {
            **_status_context(current),
            "graphiql": graphiql,
            "demo": current is not None and current.source == "demo",
            # absolute, so that the example works when pasted into a terminal
            "data_url": str(request.url_for("landing")) + "v1/insider-selling/data",
        }
        return _page(request, "landing.html", context)

    async def dashboard(request: Request) -> Response:
        published = "present" if report_file("validation") is not None else "missing"
        return _page(request, "dashboard.html", {"validation": published, "demo": await demo(request)})

    async def api_docs(request: Request) -> Response:
        return _page(request, "api-docs.html", {"demo": await demo(request)})

    def report_file(name: str) -> Path | None:
        if docs_dir is None:
            return None
        path = docs_dir / DOCS[name][0]
        return path if path.is_file() else None

    async def report(request: Request) -> Response:
        name = request.path_params["name"]
        context: dict[str, Any] = {
            "name": name,
            "title": "Not found",
            "markdown": None,
            "file": None,
            "demo": await demo(request),
        }
        if name not in DOCS:
            return _page(request, "report.html", context, 404)
        path = report_file(name)
        context.update(title=DOCS[name][1], file=DOCS[name][0])
        if path is None or docs_dir is None:
            return _page(request, "report.html", context, 404)
        # our own report, rendered by markdown-it with raw HTML off: the one markup passed as such
        context["markdown"] = Markup(render_markdown(path.read_text(encoding="utf-8"), docs_dir))  # noqa: S704
        return _page(request, "report.html", context)

    routes: list[BaseRoute] = [
        Route("/", landing, methods=["GET"], name="landing"),
        Route("/dashboard", dashboard, methods=["GET"]),
        Route("/docs", api_docs, methods=["GET"]),
        Route("/docs/{name:str}", report, methods=["GET"]),
        Mount(APP_PATH, app=StaticFiles(directory=APP_DIR)),
        Mount(VENDOR_PATH, app=StaticFiles(directory=VENDOR_DIR)),
    ]
    if docs_dir is not None:
        routes.insert(3, Mount("/docs/files", app=StaticFiles(directory=docs_dir, check_dir=False)))
    return routes
