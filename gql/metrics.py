"""Prometheus metrics, in a registry owned by one app (no process-wide globals)."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Metrics", "MetricsMiddleware"]


LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class RequestStats(Collector):
    """Request counts and latency histograms, kept as plain numbers and turned into Prometheus
    families at scrape time. Recording is on every request, so it takes no lock and makes no label
    lookup: the app records from its one event-loop thread."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        buckets = self.buckets.get(route)
        if buckets is None:
            buckets = self.buckets[route] = [0] * (len(LATENCY_BUCKETS) + 1)
            self.sums[route] = 0.0
        buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sums[route] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("insider_http_requests", "HTTP requests by route and status",
                                       labels=["route", "method", "status"])
        for (route, method, status), count in sorted(self.counts.items()):
            requests.add_metric([route, method, str(status)], count)
        yield requests
        latency = HistogramMetricFamily("insider_http_request_seconds", "HTTP request latency by route",
                                        labels=["route"])
        for route, buckets in sorted(self.buckets.items()):
            cumulative = list(accumulate(buckets))
            bounds = [*(str(b) for b in LATENCY_BUCKETS), "+Inf"]
            latency.add_metric([route], list(zip(bounds, cumulative, strict=True)), self.sums[route])
        yield latency


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = RequestStats()
        self.registry.register(self.requests)
        self.last_run_age = Gauge(
            "insider_last_run_age_seconds",
            "Seconds since the latest succeeded scoring run (NaN before the first)",
            registry=self.registry,
        )
        self.runs = Counter("insider_scoring_runs_total", "Scoring runs by status", ["status"], registry=self.registry)
        self.record = self.requests.record

    def track_last_run(self, seconds_since: Callable[[], float]) -> None:
        self.last_run_age.set_function(seconds_since)

    async def endpoint(self, request: Request) -> Response:
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
        if len(self._routes) < 1000:
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
        finally:
            self.metrics.record(self._route(scope), scope["method"], status, time.perf_counter() - started)
