"""Prometheus metrics, owned by one app (no process-wide registry of ours).

The request counter and latency histogram are prometheus_client's standard ``Counter`` and
``Histogram``. With ``PROMETHEUS_MULTIPROC_DIR`` set (``serve --workers N`` sets it to a fresh
directory) their values live in that directory's mmap'd files, one per worker process, and
``/metrics`` answers with a ``MultiProcessCollector`` over the directory: every scrape, whichever
worker answers it, reports the sum over all workers.

Recording is on every request, and a multiprocess ``inc`` writes an mmap'd file under a lock, a
cost of the same order as a whole REST request (``docs/performance.md``). So requests are counted
in plain dicts first (no lock, no label lookup: the app records from
its one event-loop thread) and moved into the standard metrics in batches: every second
(:meth:`Metrics.run_flusher`), before each scrape, and at shutdown. Another worker's requests show
in a scrape at most a second late.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CLIENT_CLOSED", "Metrics", "MetricsMiddleware", "multiprocess_enabled"]


LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: The status recorded for a request whose client went away before it was answered (nginx's 499):
#: not a server error, and nothing is logged.
CLIENT_CLOSED = 499


def multiprocess_enabled() -> bool:
    """True when prometheus_client keeps its values in ``PROMETHEUS_MULTIPROC_DIR`` files (decided
    by that variable when prometheus_client is first imported)."""
    return values.ValueClass is not values.MutexValue


class RequestStats:
    """Request counts and latency buckets since the last flush, as plain numbers."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, list[float]] = {}  # per route, the sum of the latencies in each bucket

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        buckets = self.buckets.get(route)
        if buckets is None:
            buckets = self.buckets[route] = [0] * (len(LATENCY_BUCKETS) + 1)
            self.sums[route] = [0.0] * (len(LATENCY_BUCKETS) + 1)
        i = bisect_left(LATENCY_BUCKETS, seconds)
        buckets[i] += 1
        self.sums[route][i] += seconds

    def drain(self) -> tuple[dict[tuple[str, str, int], int], dict[str, list[int]], dict[str, list[float]]]:
        """Hand over what was recorded and start again (no await in between: nothing is lost)."""
        drained = self.counts, self.buckets, self.sums
        self.counts, self.buckets, self.sums = {}, {}, {}
        return drained


class RouteRecorder:
    """One route's requests since the last flush, for a hot path that knows its route and method:
    a request costs a dict update keyed by the status, a bucket and a sum, with no key to build."""

    __slots__ = ("buckets", "counts", "method", "route", "sum")

    def __init__(self, route: str, method: str) -> None:
        self.route, self.method = route, method
        self.counts: dict[int, int] = {}
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.sum = [0.0] * (len(LATENCY_BUCKETS) + 1)

    def record(self, status: int, seconds: float) -> None:
        counts = self.counts
        counts[status] = counts.get(status, 0) + 1
        i = bisect_left(LATENCY_BUCKETS, seconds)
        self.buckets[i] += 1
        self.sum[i] += seconds

    def drain(self) -> tuple[dict[int, int], list[int], list[float]]:
        drained = self.counts, self.buckets, self.sum
        self.counts, self.buckets = {}, [0] * (len(LATENCY_BUCKETS) + 1)
        self.sum = [0.0] * (len(LATENCY_BUCKETS) + 1)
        return drained


def child_observe_many(child: Histogram, bucket: int, count: int, total: float) -> None:
    """``count`` observations of the latencies in bucket ``bucket`` whose sum is ``total``."""
    mean = total / count
    upper = LATENCY_BUCKETS[bucket] if bucket < len(LATENCY_BUCKETS) else math.inf
    lower = LATENCY_BUCKETS[bucket - 1] if bucket > 0 else -math.inf
    if not lower < mean <= upper:  # rounding at an edge: the bound itself is in the bucket
        mean = upper if mean > upper else math.nextafter(lower, math.inf)
    for _ in range(count):
        child.observe(mean)


class _LastRunAge(Collector):
    """``insider_last_run_age_seconds``, computed by the process that answers the scrape."""

    def __init__(self) -> None:
        self.seconds_since: Callable[[], float] = lambda: math.nan

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "insider_last_run_age_seconds",
            "Seconds since the latest succeeded scoring run (NaN before the first)",
            value=self.seconds_since(),
        )


class Metrics:
    """The app's metrics. ``multiprocess_dir``: the ``PROMETHEUS_MULTIPROC_DIR`` this process writes
    to (the composition root passes the setting); ``None`` keeps every value in this process."""

    def __init__(self, multiprocess_dir: str | os.PathLike[str] | None = None) -> None:
        if multiprocess_dir is not None:
            if not multiprocess_enabled() or Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")) != Path(
                multiprocess_dir
            ):
                raise ValueError(
                    "PROMETHEUS_MULTIPROC_DIR must be set in the environment before prometheus_client is "
                    "imported (serve --workers N does this); the metrics would not add up across workers"
                )
            if not Path(multiprocess_dir).is_dir():
                raise ValueError(f"PROMETHEUS_MULTIPROC_DIR {multiprocess_dir} is not a directory")
        self.multiprocess_dir = multiprocess_dir
        own = CollectorRegistry()  # where the metrics are defined (their values: memory or mmap files)
        self.requests = Counter(
            "insider_http_requests", "HTTP requests by route and status", ["route", "method", "status"], registry=own
        )
        self.latency = Histogram(
            "insider_http_request_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.runs = Counter("insider_scoring_runs", "Scoring runs by status", ["status"], registry=own)
        self._age = _LastRunAge()
        if multiprocess_dir is None:
            self.registry = own
        else:  # what a scrape reads: every process's files
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]
        self.registry.register(self._age)
        self.stats = RequestStats()
        self.record = self.stats.record
        self._routes: list[RouteRecorder] = []

    def route(self, route: str, method: str) -> RouteRecorder:
        """A recorder bound to one route and method (the REST fast path's), flushed with the rest."""
        recorder = RouteRecorder(route, method)
        self._routes.append(recorder)
        return recorder

    def track_last_run(self, seconds_since: Callable[[], float]) -> None:
        self._age.seconds_since = seconds_since

    def flush(self) -> None:
        """Move the requests recorded since the last flush into the standard metrics."""
        counts, buckets, sums = self.stats.drain()
        for recorder in self._routes:
            route_counts, route_buckets, route_sum = recorder.drain()
            if not route_counts:
                continue
            for status, count in route_counts.items():
                key = (recorder.route, recorder.method, status)
                counts[key] = counts.get(key, 0) + count
            merged = buckets.setdefault(recorder.route, [0] * (len(LATENCY_BUCKETS) + 1))
            merged_sums = sums.setdefault(recorder.route, [0.0] * (len(LATENCY_BUCKETS) + 1))
            for i, count in enumerate(route_buckets):
                merged[i] += count
                merged_sums[i] += route_sum[i]
        for (route, method, status), count in counts.items():
            self.requests.labels(route, method, str(status)).inc(count)
        for route, per_bucket in buckets.items():
            child = self.latency.labels(route)
            # Histogram.observe (its public API) takes one value. The latencies of one bucket all
            # lie in that bucket, so their mean does too: observing the mean once per latency puts
            # each in its bucket and adds exactly their sum.
            for i, count in enumerate(per_bucket):
                if count:
                    child_observe_many(child, i, count, sums[route][i])

    async def run_flusher(self, interval: float = 1.0) -> None:
        """Flush every ``interval`` seconds until cancelled, then once more."""
        try:
            while True:
                await asyncio.sleep(interval)
                self.flush()
        finally:
            self.flush()

    async def endpoint(self, request: Request) -> Response:
        self.flush()
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware overhead) counting requests by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._routes: dict[str, str] = {}

    def _route(self, scope: Scope) -> str:
        path = scope["path"]
        cached = self._routes.get(path)
        if cached is not None:
            return cached
        name: str = "unmatched"
        for route in scope["app"].routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                name = str(getattr(route, "path", path))
                break
        # bounded in bytes: paths are client input, so only short ones are kept (1000 x 128 bytes)
        if len(self._routes) < 1000 and len(path) <= 128:
            self._routes[path] = name
        return name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except ClientDisconnect:
            # The client went away while sending its body: nobody is left to answer, and it is
            # not a server error (neither a 500 in the metrics nor an error in the log).
            status = CLIENT_CLOSED
        finally:
            self.metrics.record(self._route(scope), scope["method"], status, time.perf_counter() - started)
