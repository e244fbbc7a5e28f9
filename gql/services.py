"""What the web layer needs, built once by the composition root (``gql.app.create_app``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from gql.leaderboard import Leaderboard
from insider_selling.settings import Settings
from scoring.runs import RunStore
from store import StoreHandle
from tenants.auth import Authenticator
from tenants.principal import Principal
from tenants.service import KeyService

__all__ = ["RequestLimiter", "Services"]


class RequestLimiter(Protocol):
    async def check_request(self, principal: Principal, cost: int = 1) -> dict[str, str]:
        """Charge ``cost`` and return the RateLimit-* headers; raise ``ApiError(429)`` when limited."""
        ...


@dataclass(slots=True)
class Services:
    settings: Settings
    store: StoreHandle
    runs: RunStore
    leaderboard: Leaderboard
    authenticator: Authenticator
    keys: KeyService
    limiter: RequestLimiter | None = None
    redis: Any = None
    cycle: Any = None  # insider_selling.cycle.Cycle when this process ingests and scores
    scheduler: Any = None
