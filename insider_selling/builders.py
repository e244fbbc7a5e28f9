"""One builder per thing the service wires: the only place each is built from the settings.

``serve`` (through :func:`insider_selling.app.build_app`), ``worker``
(:func:`insider_selling.worker.run_worker`) and the other CLI subcommands call these; none of them
builds a store, a Redis client, a scoring cycle, the tenants' services or the webhook delivery by
hand. Each builder takes the :class:`Settings` (and what it builds on) as arguments, reads nothing
else, and connects nothing that its caller does not close.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gql.app import WebConfig
from ingest.source import Source
from ingest.storage import SnapshotStore
from insider_selling.cycle import Cycle, OnSuccess, Scheduler
from insider_selling.settings import Settings
from scoring.config import load_model_config
from scoring.pipeline import ScoringPipeline
from store import StoreHandle, open_store
from tenants.auth import Authenticator
from tenants.hashing import KeyHasher
from tenants.ratelimit import LocalBackend, RateLimiter, RedisBackend
from tenants.repository import TenantRepository
from tenants.revocation import KeyChangeBus
from tenants.service import KeyService
from webhooks import Dispatcher, WebhookConfig

__all__ = [
    "Tenants",
    "build_cycle",
    "build_dispatcher",
    "build_redis",
    "build_scheduler",
    "build_source",
    "build_store",
    "build_tenants",
    "build_web_config",
    "build_webhook_config",
    "server_options",
]


async def build_store(settings: Settings) -> StoreHandle:
    """The document store: MongoDB at ``MONGODB_URI``, or the in-memory stand-in without it.
    The caller closes it (``aclose``)."""
    return await open_store(
        settings.mongodb_uri, settings.mongodb_database, snapshot_retention_days=settings.snapshot_retention_days
    )


def build_redis(settings: Settings, *, patient: bool = False) -> Any:
    """A Redis client for ``REDIS_URL`` (``None`` without it; nothing connects before the first
    command). The request path's client gives up after ``INSIDER_REDIS_TIMEOUT`` (a slow Redis is
    an outage there, see :mod:`tenants.ratelimit`); a ``patient`` one (the key-change listener,
    the worker's lock) waits 5 s to connect and as long as a command takes. The caller closes it."""
    if not settings.redis_url:
        return None
    from insider_selling.redis_client import connect_redis

    if patient:
        return connect_redis(settings.redis_url, socket_connect_timeout=5.0)
    return connect_redis(
        settings.redis_url, socket_timeout=settings.redis_timeout, socket_connect_timeout=settings.redis_timeout
    )


def build_source(settings: Settings) -> Source:
    """The configured market source: the venues' public APIs, or the demo simulator. The caller
    closes it."""
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


def build_cycle(
    settings: Settings,
    store: StoreHandle,
    source: Source,
    *,
    fencing_token: int | None = None,
    on_success: Sequence[OnSuccess] = (),
) -> Cycle:
    """One ingest-and-score cycle: ``source`` into the snapshots, then the scoring pipeline.
    ``fencing_token``: the worker lock's token, carried by each run (see :mod:`insider_selling.worker`)."""
    pipeline = ScoringPipeline(
        store.db, load_model_config(), source=getattr(source, "name", "demo"), fencing_token=fencing_token
    )
    return Cycle(
        source,
        SnapshotStore(store.db),
        pipeline,
        history_hours=settings.history_hours,
        score_retention_days=settings.score_retention_days,
        on_success=list(on_success),
    )


def build_scheduler(settings: Settings, cycle: Cycle) -> Scheduler:
    """Runs ``cycle`` every ``INSIDER_SCORE_INTERVAL_SECONDS``, on the grid every process shows."""
    return Scheduler(cycle, settings.score_interval_seconds)


@dataclass(frozen=True, slots=True)
class Tenants:
    """The tenants package's services, wired together."""

    repo: TenantRepository
    hasher: KeyHasher
    authenticator: Authenticator
    ratelimiter: RateLimiter
    bus: KeyChangeBus
    keys: KeyService


def build_tenants(settings: Settings, store: StoreHandle, redis: Any = None, subscriber: Any = None) -> Tenants:
    """Keys, authentication, rate limits and the key-change bus on ``store``; with ``redis`` (see
    :func:`build_redis`) the limits are shared and key changes broadcast, ``subscriber`` (a patient
    client) listens for the other processes' changes. Connects nothing."""
    repo = TenantRepository(store.db)
    hasher = KeyHasher(settings.argon2_profile)
    authenticator = Authenticator(repo, hasher)
    ratelimiter = RateLimiter(
        RedisBackend(redis) if redis is not None else LocalBackend(),
        lease_max=settings.ratelimit_lease_max,
        lease_ttl=settings.ratelimit_lease_ttl,
        failure_mode=settings.redis_failure_mode,
        stored_usage=repo.get_usage,
    )
    bus = KeyChangeBus(authenticator, redis, subscriber=subscriber)
    keys = KeyService(repo, hasher, on_key_change=[bus.publish])
    return Tenants(repo, hasher, authenticator, ratelimiter, bus, keys)


def build_webhook_config(settings: Settings) -> WebhookConfig:
    """The webhook package's configuration. Without ``INSIDER_WEBHOOK_KEY`` the embedded mode draws
    a random key (its store is in memory: secrets die with it), and production disables webhooks.
    Build it once per process: the service that signs and the dispatcher that delivers share the key."""
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


def build_dispatcher(store: StoreHandle, hooks: WebhookConfig) -> Dispatcher | None:
    """The webhook delivery worker, or ``None`` when webhooks are disabled (no server key). The
    caller closes it."""
    return Dispatcher(store.db, hooks) if hooks.server_key is not None else None


def build_web_config(settings: Settings) -> WebConfig:
    """What the web layer (:func:`gql.app.create_app`) takes from the settings."""
    return WebConfig(
        introspection=settings.introspection_enabled,
        graphiql=settings.graphiql_enabled,
        connection_init_timeout=settings.connection_timeout,
        ws_over_limit_grace=settings.ws_over_limit_grace,
        max_head_bytes=settings.max_head_bytes,
        max_headers=settings.max_headers,
    )


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options, the bind address included (``--host``/``--port`` reach it as
    :class:`Settings` fields). ``X-Forwarded-For`` names the client only when the connection comes
    from one of ``INSIDER_TRUSTED_PROXIES`` (uvicorn would otherwise trust it from 127.0.0.1): the
    failed-attempt throttle counts per client address, and a forged header must not move it."""
    from gql.sockets import MAX_FRAME
    from insider_selling.server import http_protocol

    trusted = ",".join(settings.trusted_proxies)
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        # incomplete and idle connections close after INSIDER_CONNECTION_TIMEOUT; websocket
        # messages above MAX_FRAME are refused by uvicorn before they are read
        "http": http_protocol(),
        "timeout_keep_alive": settings.connection_timeout,
        "ws_max_size": MAX_FRAME,
        # an oversized head is a 431 (gql.heads); h11 also stops reading it at this size
        "h11_max_incomplete_event_size": settings.max_head_bytes,
        # no "server: uvicorn" on every response: it tells a scanner what to try, and costs a header
        "server_header": False,
    }
