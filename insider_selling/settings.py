"""The one settings class. Read once, by the CLI or the uvicorn factory, and handed to ``insider_selling.app``."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "SettingsError", "load_settings"]


class SettingsError(Exception):
    """Raised when the settings are invalid or unsafe; the message names the setting."""


class Settings(BaseSettings):
    """Every setting, read from the environment. The README's settings table mirrors this class."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True, populate_by_name=True)

    mongodb_uri: str | None = Field(default=None, validation_alias="MONGODB_URI")
    mongodb_database: str = Field(default="insider_selling", validation_alias="MONGODB_DATABASE")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    ingest_source: Literal["demo", "live"] = Field(default="demo", validation_alias="INSIDER_INGEST_SOURCE")
    score_interval_seconds: int = Field(
        default=1800, ge=10, le=86_400, validation_alias="INSIDER_SCORE_INTERVAL_SECONDS"
    )
    host: str = Field(default="127.0.0.1", validation_alias="INSIDER_HOST")
    port: int = Field(default=8000, ge=1, le=65_535, validation_alias="INSIDER_PORT")
    demo_seed: int = Field(default=7, validation_alias="INSIDER_DEMO_SEED")
    demo_coins: int = Field(default=200, ge=10, le=20_000, validation_alias="INSIDER_DEMO_COINS")
    history_hours: int = Field(default=72 + 96, ge=24, le=24 * 60, validation_alias="INSIDER_HISTORY_HOURS")
    # The demo scores this many backfilled hours, one run per hour, after the first run is served:
    # charts and sparklines have points on first load, and 26 h leave a run a day before the
    # first (the 24 h changes). 0 turns it off.
    demo_history_hours: int = Field(default=26, ge=0, le=96, validation_alias="INSIDER_DEMO_HISTORY_HOURS")
    snapshot_retention_days: int = Field(default=30, ge=8, le=3650, validation_alias="INSIDER_SNAPSHOT_RETENTION_DAYS")
    # Score retention: runs older than this many days are rolled up to one run per UTC day (the
    # day's latest); 0 keeps every run in full. See docs/operations.md, "MongoDB: collections and storage".
    score_retention_days: int = Field(default=0, ge=0, le=3650, validation_alias="INSIDER_SCORE_RETENTION_DAYS")
    graphql_introspection: bool | None = Field(default=None, validation_alias="INSIDER_GRAPHQL_INTROSPECTION")
    graphiql: bool | None = Field(default=None, validation_alias="INSIDER_GRAPHIQL")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", validation_alias="INSIDER_LOG_LEVEL"
    )
    argon2_profile: Literal["owasp", "rfc9106_low_memory", "test"] = Field(
        default="owasp", validation_alias="INSIDER_ARGON2_PROFILE"
    )
    # Redis unreachable: "open" = each worker enforces the limits on its own (in-process limiter),
    # "closed" = 503 with Retry-After. See tenants/ratelimit/limiter.py.
    redis_failure_mode: Literal["open", "closed"] = Field(
        default="open", validation_alias="INSIDER_RATELIMIT_REDIS_FAILURE"
    )
    ratelimit_lease_max: int = Field(default=128, ge=1, le=1000, validation_alias="INSIDER_RATELIMIT_LEASE_MAX")
    ratelimit_lease_ttl: float = Field(default=1.0, gt=0, le=60, validation_alias="INSIDER_RATELIMIT_LEASE_TTL")
    redis_timeout: float = Field(default=0.25, gt=0, le=30, validation_alias="INSIDER_REDIS_TIMEOUT")
    last_used_flush_seconds: float = Field(
        default=5.0, gt=0, le=3600, validation_alias="INSIDER_LAST_USED_FLUSH_SECONDS"
    )
    # Seconds a connection may take to send a whole request, or stay idle between requests, and
    # a websocket to send connection_init; then it is closed (insider_selling/server.py).
    connection_timeout: float = Field(default=10.0, gt=0, le=300, validation_alias="INSIDER_CONNECTION_TIMEOUT")
    # A request head (request line and header fields) larger than this many bytes, or with more
    # header fields than this, is answered 431 (gql/heads.py).
    max_head_bytes: int = Field(default=64 * 1024, ge=4096, le=1024 * 1024, validation_alias="INSIDER_MAX_HEAD_BYTES")
    max_headers: int = Field(default=100, ge=16, le=1000, validation_alias="INSIDER_MAX_HEADERS")
    # `insider-selling import`: the most bytes one file may hold once decompressed, and the longest
    # line; both are checked while the file streams (ingest/importers/base.py).
    import_max_bytes: int = Field(default=1 << 30, ge=1024, le=1 << 40, validation_alias="INSIDER_IMPORT_MAX_BYTES")
    import_max_line_bytes: int = Field(
        default=64 * 1024, ge=256, le=64 << 20, validation_alias="INSIDER_IMPORT_MAX_LINE_BYTES"
    )
    # Seconds the websockets of a key refused for its limits (429) stay open before they are closed
    # (gql/sockets.py); an operation of the key admitted meanwhile keeps them.
    ws_over_limit_grace: float = Field(default=10.0, gt=0, le=600, validation_alias="INSIDER_WS_OVER_LIMIT_GRACE")
    allow_unsafe: bool = Field(default=False, validation_alias="INSIDER_ALLOW_UNSAFE")
    # prometheus_client's multi-process directory: `serve --workers N` sets it to a fresh directory;
    # set it yourself when a process manager starts several `serve` processes (clear it before).
    prometheus_multiproc_dir: str | None = Field(default=None, validation_alias="PROMETHEUS_MULTIPROC_DIR")
    # The operator's key for `insider-selling admin tenants|keys|audit` (read by the CLI only).
    admin_key: SecretStr | None = Field(default=None, validation_alias="INSIDER_ADMIN_KEY")
    # Reverse proxies whose X-Forwarded-For names the client (comma-separated IPs or CIDRs); empty:
    # the header is ignored and the connecting address is the client.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="INSIDER_TRUSTED_PROXIES"
    )
    # Live ingest (INSIDER_INGEST_SOURCE=live): per-request timeouts, the per-venue and whole-cycle
    # deadlines (seconds), retries, and which coins are enriched (the candidates).
    ingest_connect_timeout: float = Field(default=5.0, gt=0, le=60, validation_alias="INSIDER_INGEST_CONNECT_TIMEOUT")
    ingest_read_timeout: float = Field(default=10.0, gt=0, le=120, validation_alias="INSIDER_INGEST_READ_TIMEOUT")
    ingest_venue_timeout: float = Field(default=60.0, gt=0, le=900, validation_alias="INSIDER_INGEST_VENUE_TIMEOUT")
    ingest_deadline: float = Field(default=240.0, gt=0, le=1800, validation_alias="INSIDER_INGEST_DEADLINE")
    ingest_retries: int = Field(default=3, ge=1, le=10, validation_alias="INSIDER_INGEST_RETRIES")
    ingest_max_candidates: int = Field(default=40, ge=1, le=500, validation_alias="INSIDER_INGEST_MAX_CANDIDATES")
    ingest_min_negative_venues: int = Field(
        default=2, ge=1, le=13, validation_alias="INSIDER_INGEST_MIN_NEGATIVE_VENUES"
    )

    # Webhooks (the webhooks package; docs/webhooks.md). The server key every endpoint secret is
    # derived from (at least 32 characters; every process that delivers needs the same one); unset:
    # a random key per process in the embedded mode, webhooks disabled with MONGODB_URI set.
    webhook_key: SecretStr | None = Field(default=None, min_length=32, validation_alias="INSIDER_WEBHOOK_KEY")
    # plain http:// endpoint URLs, and private/loopback/link-local addresses: local use only
    webhook_allow_http: bool = Field(default=False, validation_alias="INSIDER_WEBHOOK_ALLOW_HTTP")
    webhook_allow_private: bool = Field(default=False, validation_alias="INSIDER_WEBHOOK_ALLOW_PRIVATE")
    webhook_timeout: float = Field(default=10.0, gt=0, le=60, validation_alias="INSIDER_WEBHOOK_TIMEOUT")
    # seconds before each retry (comma-separated); the default spans about 27.6 h (webhooks/config.py)
    webhook_retry_schedule: Annotated[tuple[float, ...], NoDecode] = Field(
        default=(5, 300, 1800, 7200, 18000, 36000, 36000), validation_alias="INSIDER_WEBHOOK_RETRY_SCHEDULE"
    )
    webhook_disable_after_attempts: int = Field(
        default=100, ge=1, le=100_000, validation_alias="INSIDER_WEBHOOK_DISABLE_AFTER_ATTEMPTS"
    )
    webhook_disable_after_seconds: float = Field(
        default=86_400.0, ge=0, le=30 * 86_400, validation_alias="INSIDER_WEBHOOK_DISABLE_AFTER_SECONDS"
    )
    webhook_concurrency: int = Field(default=256, ge=1, le=4096, validation_alias="INSIDER_WEBHOOK_CONCURRENCY")
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60, validation_alias="INSIDER_WEBHOOK_POLL_SECONDS")

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _schedule(cls, value: object) -> tuple[float, ...]:
        items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
        try:
            waits = tuple(float(str(item).strip()) for item in items if str(item).strip())
        except ValueError:
            raise ValueError("must be comma-separated seconds") from None
        if not 1 <= len(waits) <= 20 or not all(0 < w <= 86_400 for w in waits):
            raise ValueError("must list 1 to 20 waits, each above 0 and at most 86400 seconds")
        return waits

    @field_validator("mongodb_uri", "redis_url")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
        networks = []
        for item in (str(i).strip() for i in items):
            if item:
                try:
                    networks.append(str(ipaddress.ip_network(item, strict=False)))
                except ValueError:
                    raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
        return tuple(networks)

    @field_validator("mongodb_uri")
    @classmethod
    def _mongo_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(
            ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
        ):
            raise ValueError(
                "must start with redis://, rediss://, unix:// or (a Redis Cluster) "
                "redis+cluster:// or rediss+cluster://"
            )
        return value

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        production = self.mongodb_uri is not None
        if production and self.argon2_profile == "test" and not self.allow_unsafe:
            raise ValueError(
                "INSIDER_ARGON2_PROFILE=test is below OWASP's minimum and refused with MONGODB_URI "
                "set (set INSIDER_ALLOW_UNSAFE=1 to override)"
            )
        if production and (self.webhook_allow_private or self.webhook_allow_http) and not self.allow_unsafe:
            raise ValueError(
                "INSIDER_WEBHOOK_ALLOW_PRIVATE and INSIDER_WEBHOOK_ALLOW_HTTP are for local use and refused "
                "with MONGODB_URI set (set INSIDER_ALLOW_UNSAFE=1 to override)"
            )
        return self

    @property
    def embedded(self) -> bool:
        """True when no MongoDB is configured: in-memory store, demo key printed at start."""
        return self.mongodb_uri is None

    @property
    def introspection_enabled(self) -> bool:
        return self.embedded if self.graphql_introspection is None else self.graphql_introspection

    @property
    def graphiql_enabled(self) -> bool:
        return self.embedded if self.graphiql is None else self.graphiql


_ALIASES = {name: (f.validation_alias or name) for name, f in Settings.model_fields.items()}


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (and explicit overrides), or raise one clear line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = str(error["loc"][0]) if error["loc"] else ""
        name = _ALIASES.get(loc, loc) or "settings"
        raise SettingsError(f"invalid setting {name}: {error['msg']}") from None
