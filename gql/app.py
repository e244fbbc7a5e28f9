"""The composition root for the web process: ``create_app(settings)`` builds the Starlette app.

Nothing is connected at import time. The lifespan opens the store (and Redis when configured),
builds every service once, bootstraps keys on an empty embedded store, primes the data, and starts
the scheduler when this process runs it; on shutdown it stops the scheduler and closes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
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

from gql.errors import ApiError
from gql.graphql_app import GRAPHIQL_ASSETS_DIR, GRAPHIQL_ASSETS_PATH, GraphQLView
from gql.leaderboard import Leaderboard
from gql.metrics import Metrics, MetricsMiddleware
from gql.openapi import openapi_document
from gql.pages import default_docs_dir, page_routes
from gql.rest import DATA_PATH, DataEndpoint, RestFastPath, error_response, new_request_id
from gql.schema import schema
from gql.services import ApiLimiter, Services
from gql.updates import RunUpdates
from ingest.source import Source
from insider_selling.cycle import Cycle, Scheduler
from insider_selling.settings import Settings
from scoring.config import load_model_config
from scoring.pipeline import RunResult, ScoringPipeline
from scoring.runs import RunStore
from store import StoreHandle, open_store
from store.snapshots import SnapshotStore
from tenants.auth import Authenticator
from tenants.hashing import KeyHasher
from tenants.ratelimit import LocalBackend, RateLimiter, RedisBackend
from tenants.repository import TenantRepository
from tenants.revocation import KeyChangeBus
from tenants.service import KeyService
from tenants.upkeep import flush, run_upkeep

__all__ = ["create_app", "create_app_from_env"]

log = logging.getLogger("insider_selling.app")

Announce = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build_source(settings: Settings) -> Source:
    if settings.ingest_source == "live":
        from ingest.commands import build_live_source

        return build_live_source(
            connect_timeout=settings.ingest_connect_timeout,
            read_timeout=settings.ingest_read_timeout,
            venue_timeout=settings.ingest_venue_timeout,
            cycle_timeout=settings.ingest_deadline,
            retries=settings.ingest_retries,
            max_candidates=settings.ingest_max_candidates,
            min_negative_venues=settings.ingest_min_negative_venues,
        )
    from ingest.demo import DemoConfig, DemoSource

    return DemoSource(DemoConfig(seed=settings.demo_seed, coins=settings.demo_coins))


class App(Starlette):
    """Starlette with the REST fast path (:class:`gql.rest.RestFastPath`) in front of its whole
    middleware stack, error middleware included: the documented path is the hot one."""

    def __init__(self, *, fast_path: Callable[[ASGIApp], ASGIApp], **kwargs: Any) -> None:
        self._fast_path = fast_path
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return self._fast_path(super().build_middleware_stack())


def settle_heap() -> None:
    """After a run, move the long-lived heap (stored snapshots, caches) out of the cyclic GC's
    reach: request garbage is young, and rescanning hundreds of thousands of stored objects on every
    full collection costs the hot path throughput. Reference counting still frees frozen objects."""
    gc.collect()
    gc.freeze()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: ("resource_missing", f"no route for {request.url.path}"),
             405: ("method_not_allowed", f"{request.method} is not allowed here; use GET")}
    code, message = codes.get(exc.status_code, ("http_error", str(exc.detail)))
    headers = dict(exc.headers or {})
    return error_response(ApiError(exc.status_code, code, message), new_request_id(), time.perf_counter(), headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return error_response(ApiError(500, "internal_error", "an unexpected error occurred"),
                          new_request_id(), time.perf_counter())


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    store_ok = await services.store.ping()
    run = await services.leaderboard.current_run() if store_ok else None
    body = {"status": "ready" if store_ok and run else "not_ready", "store": store_ok,
            "last_run_id": run and run["run_id"], "last_run_at": run and run["at"].isoformat()}
    return Response(orjson.dumps(body), status_code=200 if body["status"] == "ready" else 503,
                    media_type="application/json")


async def openapi(request: Request) -> Response:
    return Response(orjson.dumps(request.app.state.openapi), media_type="application/json")


def create_app(
    settings: Settings,
    *,
    source: Source | None = None,
    run_scheduler: bool | None = None,
    prime: bool | None = None,
    announce: Announce = _stderr,
    store: StoreHandle | None = None,
) -> Starlette:
    """Build the app. ``source`` replaces the configured market source (tests); ``run_scheduler``
    and ``prime`` (backfill and score once at start) default to the embedded mode: in production the
    API processes only serve, and a separate ``insider-selling worker`` ingests and scores;
    ``store`` is an already open store to share (tests run two apps on one store), left open."""
    metrics = Metrics(settings.prometheus_multiproc_dir)
    shared_store = store
    scheduler_inline = settings.embedded if run_scheduler is None else run_scheduler
    prime = settings.embedded if prime is None else prime

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_store = shared_store is None
        store = shared_store or await open_store(settings.mongodb_uri, settings.mongodb_database,
                                                 snapshot_retention_days=settings.snapshot_retention_days)
        announce(store.describe())
        redis = None
        if settings.redis_url:
            import redis.asyncio as aioredis

            redis = aioredis.from_url(settings.redis_url, socket_timeout=settings.redis_timeout,
                                      socket_connect_timeout=settings.redis_timeout)
        repo = TenantRepository(store.db)
        hasher = KeyHasher(settings.argon2_profile)
        runs = RunStore(store.db)
        leaderboard = Leaderboard(runs, interval_seconds=settings.score_interval_seconds)
        authenticator = Authenticator(repo, hasher)
        ratelimiter = RateLimiter(
            RedisBackend(redis) if redis is not None else LocalBackend(),
            lease_max=settings.ratelimit_lease_max, lease_ttl=settings.ratelimit_lease_ttl,
            failure_mode=settings.redis_failure_mode,
        )
        subscriber = None
        if settings.redis_url:
            # the key-change listener is off the request path: patient timeouts
            subscriber = aioredis.from_url(settings.redis_url, socket_connect_timeout=5.0)
        bus = KeyChangeBus(authenticator, redis, subscriber=subscriber)
        services = Services(
            settings=settings, store=store, runs=runs, leaderboard=leaderboard,
            authenticator=authenticator, keys=KeyService(repo, hasher, on_key_change=[bus.publish]),
            limiter=ApiLimiter(ratelimiter), ratelimiter=ratelimiter, bus=bus, redis=redis,
        )
        app.state.services = services
        updates = services.updates = RunUpdates(leaderboard.current_run)
        app.state.bootstrap = None
        if settings.embedded:
            issued = await services.keys.bootstrap_embedded()
            if issued is not None:
                admin, read = issued
                app.state.bootstrap = issued
                announce(f"bootstrap admin key: {admin.key}")
                announce(f"demo read key: {read.key}")

        def last_run_age() -> float:
            run = leaderboard._run
            if run is None:
                return float("nan")
            return float((datetime.now(UTC) - run["at"]).total_seconds())

        metrics.track_last_run(last_run_age)

        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(metrics.run_flusher(), name="metrics"),
            asyncio.create_task(run_upkeep(authenticator, ratelimiter, repo,
                                           flush_seconds=settings.last_used_flush_seconds), name="upkeep"),
        ]
        if redis is not None:
            tasks.append(asyncio.create_task(bus.listen(), name="key-changes"))
        if scheduler_inline or prime:
            market = source or build_source(settings)
            pipeline = ScoringPipeline(store.db, load_model_config(), source=getattr(market, "name", "demo"))

            async def on_success(result: RunResult) -> None:
                metrics.runs.labels("succeeded").inc()
                leaderboard.invalidate()
                updates.publish(result.run_id)
                settle_heap()

            cycle = Cycle(market, SnapshotStore(store.db), pipeline, history_hours=settings.history_hours,
                          on_success=[on_success])
            services.cycle = cycle
            scheduler = Scheduler(cycle, settings.score_interval_seconds)
            services.scheduler = scheduler

            async def start() -> None:
                if prime:
                    started = time.perf_counter()
                    result = await cycle.prime(datetime.now(UTC))
                    log.info("primed", extra={"run_id": result.run_id, "status": result.status,
                                              "seconds": round(time.perf_counter() - started, 2)})
                if scheduler_inline:
                    await scheduler.run_forever()

            tasks.append(asyncio.create_task(start(), name="scheduler"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            metrics.flush()  # the last requests, also when the flusher never got to run
            with contextlib.suppress(Exception):
                await flush(authenticator, ratelimiter, repo, final=True)
            await updates.aclose()
            if services.cycle is not None:
                await services.cycle.source.aclose()
            if redis is not None:
                await redis.aclose()
            if subscriber is not None:
                await subscriber.aclose()
            if own_store:
                await store.aclose()

    graphql = GraphQLView(schema, introspection=settings.introspection_enabled, graphiql=settings.graphiql_enabled)
    data_endpoint = DataEndpoint()
    routes: list[BaseRoute] = [
        Route(DATA_PATH, data_endpoint, methods=["GET"]),
        Route("/v1/openapi.json", openapi, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics.endpoint, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        *page_routes(docs_dir=default_docs_dir(), graphiql=settings.graphiql_enabled),
    ]
    if settings.graphiql_enabled:
        routes.append(Mount(GRAPHIQL_ASSETS_PATH, app=StaticFiles(directory=GRAPHIQL_ASSETS_DIR)))
    app = App(
        fast_path=lambda stack: RestFastPath(stack, data_endpoint, metrics),
        routes=routes,
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.openapi = openapi_document()
    return app


def create_app_from_env() -> Starlette:
    """uvicorn factory for ``serve --workers N``: settings from the environment."""
    from insider_selling.settings import load_settings

    return create_app(load_settings())
