"""Prometheus metrics, in a registry owned by one app (no process-wide globals)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Metrics", "MetricsMiddleware"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "insider_http_requests_total",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "insider_http_request_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.last_run_age = Gauge(
            "insider_last_run_age_seconds",
            "Seconds since the latest succeeded scoring run (NaN before the first)",
            registry=self.registry,
        )
        self.runs = Counter("insider_scoring_runs_total", "Scoring runs by status", ["status"], registry=self.registry)

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
            route = self._route(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
