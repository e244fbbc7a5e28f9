"""The composition root: settings in, one wired system out.

:func:`build_app` reads nothing itself: it receives the :class:`Settings` read once by the CLI (or
the uvicorn factory), builds every service in the app's lifespan (the store, Redis, tenants, the
scoring pipeline, the market source and the scheduler) and hands them to
:func:`gql.app.create_app`, the web layer, which never sees the settings. Nothing connects at
import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette

from gql.admission import Rule
from gql.app import WebConfig, create_app
from gql.metrics import Metrics
from gql.services import ApiLimiter, Services
from ingest.source import Source
from ingest.storage import SnapshotStore
from insider_selling.cycle import Cycle, Scheduler
from insider_selling.settings import Settings
from scoring.config import load_model_config
from scoring.leaderboard import Leaderboard
from scoring.pipeline import RunResult, ScoringPipeline
from scoring.runs import RunStore
from scoring.track import TrackRecord
from scoring.updates import RunUpdates
from store import StoreHandle, open_store
from tenants.auth import Authenticator
from tenants.hashing import KeyHasher
from tenants.ratelimit import LocalBackend, RateLimiter, RedisBackend
from tenants.repository import TenantRepository
from tenants.revocation import KeyChangeBus
from tenants.service import KeyService
from tenants.upkeep import flush, run_upkeep
from webhooks import Dispatcher, WebhookConfig, WebhookService

__all__ = ["app_from_env", "build_app", "build_source", "webhook_config"]

log = logging.getLogger("insider_selling.app")

Announce = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build_source(settings: Settings) -> Source:
    """The configured market source: the venues' public APIs, or the demo simulator."""
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

    return DemoSource(DemoConfig.market_like(seed=settings.demo_seed, coins=settings.demo_coins))


def webhook_config(settings: Settings) -> WebhookConfig:
    """The webhook package's configuration. Without ``INSIDER_WEBHOOK_KEY`` the embedded mode draws
    a random key (its store is in memory: secrets die with it), and production disables webhooks."""
    import secrets

    if settings.webhook_key is not None:
        key: bytes | None = settings.webhook_key.get_secret_value().encode()
    else:
        key = secrets.token_bytes(32) if settings.embedded else None
    return WebhookConfig(
        server_key=key,
        allow_http=settings.webhook_allow_http,
        allow_private=settings.webhook_allow_private,
        timeout=settings.webhook_timeout,
        retry_schedule=settings.webhook_retry_schedule,
        disable_after_attempts=settings.webhook_disable_after_attempts,
        disable_after_seconds=settings.webhook_disable_after_seconds,
        concurrency=settings.webhook_concurrency,
        poll_seconds=settings.webhook_poll_seconds,
    )


class HeapSettler:
    """After the first successful run, move the long-lived heap (the backfilled snapshots, the
    caches, the app) out of the cyclic GC's reach: request garbage is young, and rescanning hundreds
    of thousands of stored objects on every full collection costs the hot path throughput.

    Only once: freezing after *every* run would move each run's leftovers into the permanent
    generation too, where reference cycles are never collected, so memory would grow run by run
    (issue 20, item 4). Later runs' objects stay collectable; reference counting frees the rest."""

    def __init__(self) -> None:
        self.frozen = False

    def __call__(self) -> None:
        if self.frozen:
            return
        gc.collect()
        gc.freeze()
        self.frozen = True


#: A full pass of the cyclic garbage collector stops the event loop for as long as it walks the
#: young heap (tens of milliseconds with full caches): it runs every 100 second-generation passes
#: instead of every 10, and garbage without cycles is freed by reference counting meanwhile.
GC_THRESHOLDS = (700, 10, 100)


def build_app(
    settings: Settings,
    *,
    source: Source | None = None,
    run_scheduler: bool | None = None,
    prime: bool | None = None,
    announce: Announce = _stderr,
    store: StoreHandle | None = None,
    rules: Sequence[Rule] = (),
) -> Starlette:
    """The whole service as one ASGI app. ``source`` replaces the configured market source (tests);
    ``run_scheduler`` and ``prime`` (backfill and score once at start) default to the embedded mode:
    in production the API processes only serve, and a separate ``insider-selling worker`` ingests
    and scores; ``store`` is an already open store to share (tests run two apps on one store), left
    open; ``rules`` are admission checks applied on every transport (:class:`gql.admission.Gate`)."""
    gc.set_threshold(*GC_THRESHOLDS)
    metrics = Metrics(settings.prometheus_multiproc_dir)
    shared_store = store
    hooks = webhook_config(settings)
    scheduler_inline = settings.embedded if run_scheduler is None else run_scheduler
    prime = settings.embedded if prime is None else prime

    @contextlib.asynccontextmanager
    async def services() -> AsyncIterator[Services]:
        async with contextlib.AsyncExitStack() as stack:
            yield await _assemble(stack)

    async def _assemble(stack: contextlib.AsyncExitStack) -> Services:
        store = shared_store
        if store is None:
            store = await open_store(
                settings.mongodb_uri,
                settings.mongodb_database,
                snapshot_retention_days=settings.snapshot_retention_days,
            )
            stack.push_async_callback(store.aclose)
        announce(store.describe())
        redis = subscriber = None
        if settings.redis_url:
            from insider_selling.redis_client import connect_redis

            redis = connect_redis(
                settings.redis_url, socket_timeout=settings.redis_timeout, socket_connect_timeout=settings.redis_timeout
            )
            stack.push_async_callback(redis.aclose)
            # the key-change listener is off the request path: patient timeouts
            subscriber = connect_redis(settings.redis_url, socket_connect_timeout=5.0)
            stack.push_async_callback(subscriber.aclose)
        repo = TenantRepository(store.db)
        hasher = KeyHasher(settings.argon2_profile)
        runs = RunStore(store.db)
        leaderboard = Leaderboard(runs, interval_seconds=settings.score_interval_seconds)
        authenticator = Authenticator(repo, hasher)
        ratelimiter = RateLimiter(
            RedisBackend(redis) if redis is not None else LocalBackend(),
            lease_max=settings.ratelimit_lease_max,
            lease_ttl=settings.ratelimit_lease_ttl,
            failure_mode=settings.redis_failure_mode,
            stored_usage=repo.get_usage,
        )
        bus = KeyChangeBus(authenticator, redis, subscriber=subscriber)
        updates = RunUpdates(leaderboard.current_run)
        stack.push_async_callback(updates.aclose)
        services = Services(
            store=store,
            runs=runs,
            leaderboard=leaderboard,
            authenticator=authenticator,
            keys=KeyService(repo, hasher, on_key_change=[bus.publish]),
            limiter=ApiLimiter(ratelimiter),
            ratelimiter=ratelimiter,
            bus=bus,
            redis=redis,
            updates=updates,
            track=TrackRecord(store.db),
            webhooks=WebhookService(store.db, hooks),
        )
        if settings.embedded:
            issued = await services.keys.bootstrap_embedded()
            if issued is not None:
                admin, read = issued
                services.bootstrap = issued
                announce(f"bootstrap admin key: {admin.key}")
                announce(f"demo read key: {read.key}")

        def last_run_age() -> float:
            run = leaderboard.cached_run
            if run is None:
                return float("nan")
            return float((datetime.now(UTC) - run["at"]).total_seconds())

        metrics.track_last_run(last_run_age)

        # Registered first, so it runs last: the final usage flush after every task has stopped.
        async def final_flush() -> None:
            with contextlib.suppress(Exception):
                await flush(authenticator, ratelimiter, repo, final=True)

        stack.push_async_callback(final_flush)
        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(
                run_upkeep(authenticator, ratelimiter, repo, flush_seconds=settings.last_used_flush_seconds),
                name="upkeep",
            ),
        ]
        if redis is not None:
            tasks.append(asyncio.create_task(bus.listen(), name="key-changes"))
        dispatcher: Dispatcher | None = None
        if scheduler_inline and hooks.server_key is not None:  # the embedded mode delivers webhooks too
            dispatcher = Dispatcher(store.db, hooks)
            services.dispatcher = dispatcher
            stack.push_async_callback(dispatcher.aclose)
            tasks.append(asyncio.create_task(dispatcher.run_forever(), name="webhooks"))
        if scheduler_inline or prime:
            market = source or build_source(settings)
            stack.push_async_callback(market.aclose)
            pipeline = ScoringPipeline(store.db, load_model_config(), source=getattr(market, "name", "demo"))

            settle_heap = HeapSettler()

            async def on_success(result: RunResult) -> None:
                metrics.runs.labels("succeeded").inc()
                leaderboard.invalidate()
                updates.publish(result.run_id)
                if dispatcher is not None:
                    dispatcher.wake()
                settle_heap()

            cycle = Cycle(
                market,
                SnapshotStore(store.db),
                pipeline,
                history_hours=settings.history_hours,
                score_retention_days=settings.score_retention_days,
                on_success=[on_success],
            )
            scheduler = Scheduler(cycle, settings.score_interval_seconds)
            services.cycle = cycle

            async def start() -> None:
                if prime:
                    started = time.perf_counter()
                    result = await cycle.prime(datetime.now(UTC))
                    log.info(
                        "primed",
                        extra={
                            "run_id": result.run_id,
                            "status": result.status,
                            "seconds": round(time.perf_counter() - started, 2),
                        },
                    )
                if prime and settings.ingest_source == "demo" and settings.demo_history_hours:
                    started = time.perf_counter()
                    scored = await cycle.score_history(datetime.now(UTC), settings.demo_history_hours)
                    log.info(
                        "demo history scored",
                        extra={"runs": scored, "seconds": round(time.perf_counter() - started, 2)},
                    )
                if scheduler_inline:
                    await scheduler.run_forever()

            tasks.append(asyncio.create_task(start(), name="scheduler"))

        async def stop_tasks() -> None:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

        stack.push_async_callback(stop_tasks)
        return services

    web = WebConfig(
        introspection=settings.introspection_enabled,
        graphiql=settings.graphiql_enabled,
        connection_init_timeout=settings.connection_timeout,
        ws_over_limit_grace=settings.ws_over_limit_grace,
        max_head_bytes=settings.max_head_bytes,
        max_headers=settings.max_headers,
    )
    return create_app(services, web=web, metrics=metrics, rules=rules)


def app_from_env() -> Starlette:
    """uvicorn factory for ``serve --workers N``: settings from the environment."""
    from insider_selling.settings import load_settings

    return build_app(load_settings())
