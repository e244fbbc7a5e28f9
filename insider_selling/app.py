"""The composition root: settings in, one wired system out.

:func:`build_app` reads nothing itself: it receives the :class:`Settings` read once by the CLI (or
the uvicorn factory), builds every service in the app's lifespan (the store, Redis, tenants, the
scoring pipeline, the market source and the scheduler) with the builders of
:mod:`insider_selling.builders` (which ``worker`` and the CLI use too), and hands them to
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
from gql.app import create_app
from gql.metrics import Metrics
from gql.services import ApiLimiter, Services
from ingest.source import Source
from insider_selling.builders import (
    build_cycle,
    build_dispatcher,
    build_redis,
    build_scheduler,
    build_source,
    build_store,
    build_tenants,
    build_web_config,
    build_webhook_config,
)
from insider_selling.settings import Settings
from scoring.leaderboard import Leaderboard
from scoring.pipeline import RunResult
from scoring.runs import RunStore
from scoring.track import TrackRecord
from scoring.updates import RunUpdates
from store import StoreHandle
from tenants.upkeep import flush, run_upkeep
from webhooks import WebhookService

__all__ = ["HeapSettler", "app_from_env", "build_app"]

log = logging.getLogger("insider_selling.app")

Announce = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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
    hooks = build_webhook_config(settings)
    scheduler_inline = settings.embedded if run_scheduler is None else run_scheduler
    prime = settings.embedded if prime is None else prime

    @contextlib.asynccontextmanager
    async def services() -> AsyncIterator[Services]:
        async with contextlib.AsyncExitStack() as stack:
            yield await _assemble(stack)

    async def _assemble(stack: contextlib.AsyncExitStack) -> Services:
        store = shared_store
        if store is None:
            store = await build_store(settings)
            stack.push_async_callback(store.aclose)
        announce(store.describe())
        redis = build_redis(settings)
        # the key-change listener is off the request path: patient timeouts
        subscriber = build_redis(settings, patient=True)
        for client in (redis, subscriber):
            if client is not None:
                stack.push_async_callback(client.aclose)
        tenants = build_tenants(settings, store, redis, subscriber)
        authenticator, ratelimiter, repo, bus = tenants.authenticator, tenants.ratelimiter, tenants.repo, tenants.bus
        runs = RunStore(store.db)
        leaderboard = Leaderboard(runs, interval_seconds=settings.score_interval_seconds)
        updates = RunUpdates(leaderboard.current_run)
        stack.push_async_callback(updates.aclose)
        services = Services(
            store=store,
            runs=runs,
            leaderboard=leaderboard,
            authenticator=authenticator,
            keys=tenants.keys,
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
        dispatcher = build_dispatcher(store, hooks) if scheduler_inline else None
        if dispatcher is not None:  # the embedded mode delivers webhooks too
            services.dispatcher = dispatcher
            stack.push_async_callback(dispatcher.aclose)
            tasks.append(asyncio.create_task(dispatcher.run_forever(), name="webhooks"))
        if scheduler_inline or prime:
            market = source or build_source(settings)
            stack.push_async_callback(market.aclose)
            settle_heap = HeapSettler()

            async def on_success(result: RunResult) -> None:
                metrics.runs.labels("succeeded").inc()
                leaderboard.invalidate()
                updates.publish(result.run_id)
                if dispatcher is not None:
                    dispatcher.wake()
                settle_heap()

            cycle = build_cycle(settings, store, market, on_success=[on_success])
            scheduler = build_scheduler(settings, cycle)
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

    return create_app(services, web=build_web_config(settings), metrics=metrics, rules=rules)


def app_from_env() -> Starlette:
    """uvicorn's app factory in each worker process of ``serve --workers N``.

    uvicorn starts its workers by import string and calls the factory without arguments, and a
    worker process receives only uvicorn's own options from its parent: nothing of ours can be
    handed over. So each worker reads the settings itself, from the environment the operator
    started ``serve`` in (which no code of ours writes to); the bind address (``--host``,
    ``--port``) is the parent's business: uvicorn binds the socket once and passes it to the
    workers, and :func:`build_app` does not use it."""
    from insider_selling.settings import load_settings

    return build_app(load_settings())
