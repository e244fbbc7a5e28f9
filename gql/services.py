"""What the web layer needs, built once by the composition root (``insider_selling.app``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from gql.caching import RateLimitFields
from gql.errors import ApiError
from scoring.leaderboard import Leaderboard
from scoring.runs import RunStore
from scoring.track import TrackRecord
from store import StoreHandle
from tenants.auth import Authenticator
from tenants.errors import LimiterUnavailable, RateLimited
from tenants.principal import Principal
from tenants.ratelimit import Encoded, RateLimiter
from tenants.revocation import KeyChangeBus
from tenants.service import KeyService

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from scoring.updates import RunUpdates
    from tenants.service import IssuedKey
    from webhooks.service import WebhookService

__all__ = ["ApiLimiter", "RequestLimiter", "Services"]


class RequestLimiter(Protocol):
    async def check_request(self, principal: Principal, cost: int = 1) -> dict[str, str]:
        """Charge ``cost`` and return the RateLimit-* headers; raise ``ApiError(429)`` (with those
        headers) when limited."""
        ...

    def take(self, principal: Principal) -> Encoded | None:
        """The REST hot path: charge one request without I/O and return the encoded
        ``(RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset)`` values, or ``None`` when that
        needs the backend (then call :meth:`check_encoded`)."""
        ...

    async def check_encoded(self, principal: Principal) -> Encoded:
        """:meth:`check_request` for one request, the values encoded as :meth:`take` gives them."""
        ...


class ApiLimiter:
    """:class:`tenants.ratelimit.RateLimiter` behind the :class:`RequestLimiter` protocol."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self.fields = RateLimitFields()  # the IETF draft's RateLimit-Policy and RateLimit

    def _with_draft(self, principal: Principal, legacy: dict[str, str] | None) -> dict[str, str]:
        return {**legacy, **self.fields.headers(principal, legacy)} if legacy else {}

    async def check_request(self, principal: Principal, cost: int = 1) -> dict[str, str]:
        try:
            return self._with_draft(principal, await self.limiter.check(principal, cost))
        except RateLimited as exc:
            raise self._refused(principal, exc) from None
        except LimiterUnavailable as exc:
            raise ApiError(503, exc.code, str(exc), retry_after=exc.retry_after) from None

    def _refused(self, principal: Principal, exc: RateLimited) -> ApiError:
        """A 429 with its RateLimit-* headers (a 503, when the limiter is down, carries none)."""
        return ApiError(
            429, exc.code, str(exc), retry_after=exc.retry_after, headers=self._with_draft(principal, exc.headers)
        )

    def take(self, principal: Principal) -> Encoded | None:
        return self.limiter.take(principal)

    async def check_encoded(self, principal: Principal) -> Encoded:
        try:
            return await self.limiter.check_encoded(principal)
        except RateLimited as exc:
            raise self._refused(principal, exc) from None
        except LimiterUnavailable as exc:
            raise ApiError(503, exc.code, str(exc), retry_after=exc.retry_after) from None


@dataclass(slots=True)
class Services:
    """Built by the composition root and handed to :func:`gql.app.create_app`; the web layer reads
    no settings."""

    store: StoreHandle
    runs: RunStore
    leaderboard: Leaderboard
    authenticator: Authenticator
    keys: KeyService
    limiter: RequestLimiter | None = None
    ratelimiter: RateLimiter | None = None  # the limiter itself (viewer, upkeep)
    bus: KeyChangeBus | None = None  # key changes to every worker
    redis: Redis | None = None
    updates: RunUpdates | None = None  # run notifications for GraphQL subscriptions
    cycle: Any = None  # the ingest-and-score cycle when this process runs it (tests drive it)
    # "now", for the planned next run (scoring.schedule); the scheduler may be in another process
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    bootstrap: tuple[IssuedKey, IssuedKey] | None = None  # (admin, read) keys issued at an empty embedded start
    track: TrackRecord | None = None  # the track record's reader (its summaries cached per app)
    webhooks: WebhookService | None = None  # webhook endpoints (issue 22)
    dispatcher: Any = None  # the webhook delivery worker when this process runs it (tests drive it)
