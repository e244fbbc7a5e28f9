"""The web layer's app: ``create_app(services, web=..., metrics=...)`` builds the Starlette app.

It receives what it serves: ``services`` opens the built services for the app's lifespan (the
composition root, :mod:`insider_selling.app`, builds them from the settings), ``web`` says which
developer pages are on. It never reads settings and nothing is connected at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from gql.admission import Gate, Rule
from gql.envelope import error_response, new_request_id
from gql.errors import ApiError
from gql.graphql_app import GraphQLView
from gql.heads import MAX_HEAD_BYTES, MAX_HEADERS, HeadLimits
from gql.metrics import Metrics, MetricsMiddleware
from gql.openapi import openapi_document
from gql.pages import GRAPHIQL_ASSETS_DIR, GRAPHIQL_ASSETS_PATH, default_docs_dir, page_routes
from gql.rest import DATA_PATH, DataEndpoint, RestFastPath
from gql.schema import schema
from gql.services import Services
from gql.sockets import ConnectionTimeouts
from gql.track import TRACK_PATH, track_record_endpoint

__all__ = ["ServicesFactory", "WebConfig", "create_app"]

log = logging.getLogger("insider_selling.app")

#: Opens the services for the app's lifespan and closes them after it.
ServicesFactory = Callable[[], AbstractAsyncContextManager[Services]]


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The web layer's own switches (the developer pages)."""

    introspection: bool = False
    graphiql: bool = False
    #: Seconds a websocket may stay open before its graphql-transport-ws ``connection_init``.
    connection_init_timeout: float = 10.0
    #: Seconds the sockets of a key refused for its limits stay open before they are closed.
    ws_over_limit_grace: float = 10.0
    #: Bounds of a request head (gql.heads): bytes, and header fields.
    max_head_bytes: int = MAX_HEAD_BYTES
    max_headers: int = MAX_HEADERS


class App(Starlette):
    """Starlette with the REST fast path (:class:`gql.rest.RestFastPath`) in front of its whole
    middleware stack, error middleware included: the documented path is the hot one; and the head
    bounds (:class:`gql.heads.HeadLimits`) in front of that."""

    def __init__(self, *, fast_path: Callable[[ASGIApp], ASGIApp], **kwargs: Any) -> None:
        self._fast_path = fast_path
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return self._fast_path(super().build_middleware_stack())


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {
        404: ("resource_missing", f"no route for {request.url.path}"),
        405: ("method_not_allowed", f"{request.method} is not allowed here; use GET"),
    }
    code, message = codes.get(exc.status_code, ("http_error", str(exc.detail)))
    headers = dict(exc.headers or {})
    return error_response(ApiError(exc.status_code, code, message), new_request_id(), time.perf_counter(), headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return error_response(
        ApiError(500, "internal_error", "an unexpected error occurred"), new_request_id(), time.perf_counter()
    )


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    store_ok = await services.store.ping()
    run = await services.leaderboard.current_run() if store_ok else None
    body = {
        "status": "ready" if store_ok and run else "not_ready",
        "store": store_ok,
        "last_run_id": run and run["run_id"],
        "last_run_at": run and run["at"].isoformat(),
    }
    return Response(
        orjson.dumps(body), status_code=200 if body["status"] == "ready" else 503, media_type="application/json"
    )


async def openapi(request: Request) -> Response:
    return Response(orjson.dumps(request.app.state.openapi), media_type="application/json")


def create_app(
    services: ServicesFactory,
    *,
    web: WebConfig | None = None,
    metrics: Metrics | None = None,
    rules: Sequence[Rule] = (),
) -> Starlette:
    """Build the app around ``services``, opened for the app's lifespan; ``metrics`` is shared with
    the composition root (which counts runs); ``rules`` are admission checks every transport
    applies after authentication (:class:`gql.admission.Gate`)."""
    web = web or WebConfig()
    metrics = metrics or Metrics()
    gate = Gate(rules)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with services() as built:
            app.state.services = built
            app.state.bootstrap = built.bootstrap
            flusher = asyncio.create_task(metrics.run_flusher(), name="metrics")
            try:
                yield
            finally:
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher
                metrics.flush()  # the last requests, also when the flusher never got to run

    graphql = GraphQLView(
        schema,
        gate=gate,
        introspection=web.introspection,
        graphiql=web.graphiql,
        timeouts=ConnectionTimeouts(
            connection_init=web.connection_init_timeout, over_limit_grace=web.ws_over_limit_grace
        ),
    )
    data_endpoint = DataEndpoint(gate)
    routes: list[BaseRoute] = [
        Route(DATA_PATH, data_endpoint, methods=["GET"]),
        Route(TRACK_PATH, track_record_endpoint, methods=["GET"]),
        Route("/v1/openapi.json", openapi, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics.endpoint, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        *page_routes(docs_dir=default_docs_dir(), graphiql=web.graphiql),
    ]
    if web.graphiql:
        routes.append(Mount(GRAPHIQL_ASSETS_PATH, app=StaticFiles(directory=GRAPHIQL_ASSETS_DIR)))
    app = App(
        fast_path=lambda stack: HeadLimits(
            RestFastPath(stack, data_endpoint, metrics), max_bytes=web.max_head_bytes, max_headers=web.max_headers
        ),
        routes=routes,
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.gate = gate
    app.state.openapi = openapi_document()
    return app
