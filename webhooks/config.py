"""What the composition root hands the webhook package (built from the settings)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_RETRY_SCHEDULE", "WebhookConfig"]

#: Seconds to wait before each retry after a failed attempt (the Standard Webhooks / Svix schedule):
#: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — eight attempts over about 27.6 h (at least 24 h), each
#: wait with ±20 % jitter. After the last one the delivery is ``failed`` (replay re-sends it).
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    #: the server key every endpoint secret is derived from (see :mod:`webhooks.secrets`); ``None``
    #: disables webhooks (creating an endpoint is refused with a clear error)
    server_key: bytes | None = None
    allow_http: bool = False  # plain http:// URLs (local use)
    allow_private: bool = False  # private, loopback, link-local addresses (local use, tests)
    timeout: float = 10.0  # seconds per attempt (connect, write, read, all together)
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    jitter: float = 0.2
    #: an endpoint is disabled (and audited) after this many failed attempts in a row, spanning at
    #: least ``disable_after_seconds`` since its last success
    disable_after_attempts: int = 100
    disable_after_seconds: float = 24 * 3600.0
    concurrency: int = 256  # attempts in flight at once, over all endpoints
    poll_seconds: float = 1.0  # how often the dispatcher looks for due deliveries and new outboxes
    response_cap: int = 4096  # bytes of a response body read (and an excerpt kept)
    batch: int = 2000  # due deliveries claimed per pass
    lease_seconds: float = 60.0  # a claimed delivery is retried by another pass after this
    secret_overlap_seconds: float = 24 * 3600.0  # after a rotation both secrets sign this long
    extra: dict[str, str] = field(default_factory=dict)
