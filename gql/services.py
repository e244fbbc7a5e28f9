"""What the web layer needs, built once by the composition root (``gql.app.create_app``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gql.errors import ApiError
from gql.leaderboard import Leaderboard
from insider_selling.settings import Settings
from scoring.runs import RunStore
from store import StoreHandle
from tenants.auth import Authenticator
from tenants.errors import LimiterUnavailable, RateLimited
from tenants.principal import Principal
from tenants.ratelimit import Encoded, RateLimiter
from tenants.revocation import KeyChangeBus
from tenants.service import KeyService

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from gql.updates import RunUpdates
    from insider_selling.cycle import Cycle, Scheduler

__all__ = ["ApiLimiter", "LimitError", "RequestLimiter", "Services"]


class RequestLimiter(Protocol):
    async def check_request(self, principal: Principal, cost: int = 1) -> dict[str, str]:
        """Charge ``cost`` and return the RateLimit-* headers; raise ``ApiError(429)`` when limited."""
        ...

    def take(self, principal: Principal) -> Encoded | None:
        """The REST hot path: charge one request without I/O and return the encoded
        ``(RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset)`` values, or ``None`` when that
        needs the backend (then call :meth:`check_encoded`)."""
        ...

    async def check_encoded(self, principal: Principal) -> Encoded:
        """:meth:`check_request` for one request, the values encoded as :meth:`take` gives them."""
        ...


@dataclass
class LimitError(ApiError):
    """A 429 (or a 503 when the limiter is down and fails closed) with its RateLimit-* headers."""

    headers: dict[str, str] | None = None


class ApiLimiter:
    """:class:`tenants.ratelimit.RateLimiter` behind the :class:`RequestLimiter` protocol."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def check_request(self, principal: Principal, cost: int = 1) -> dict[str, str]:
        try:
            return await self.limiter.check(principal, cost)
        except RateLimited as exc:
            raise LimitError(429, exc.code, str(exc), retry_after=exc.retry_after, headers=exc.headers) from None
        except LimiterUnavailable as exc:
            raise LimitError(503, exc.code, str(exc), retry_after=exc.retry_after) from None

    def take(self, principal: Principal) -> Encoded | None:
        return self.limiter.take(principal)

    async def check_encoded(self, principal: Principal) -> Encoded:
        try:
            return await self.limiter.check_encoded(principal)
        except RateLimited as exc:
            raise LimitError(429, exc.code, str(exc), retry_after=exc.retry_after, headers=exc.headers) from None
        except LimiterUnavailable as exc:
            raise LimitError(503, exc.code, str(exc), retry_after=exc.retry_after) from None


@dataclass(slots=True)
class Services:
    settings: Settings
    store: StoreHandle
    runs: RunStore
    leaderboard: Leaderboard
    authenticator: Authenticator
    keys: KeyService
    limiter: RequestLimiter | None = None
    ratelimiter: RateLimiter | None = None  # the limiter itself (viewer, upkeep)
    bus: KeyChangeBus | None = None  # key changes to every worker
    redis: Redis | None = None
    cycle: Cycle | None = None  # when this process ingests and scores (embedded mode, tests)
    scheduler: Scheduler | None = None
    updates: RunUpdates | None = None  # run notifications for GraphQL subscriptions
