"""GoPlus token security: holder count, top-10 share, creator and owner share, risk flags.

``GET /api/v1/token_security/{chain_id}?contract_addresses=...`` (EVM chains). GoPlus gives
shares as fractions of supply; they are stored in percent (0-100), like ``top10_holders_pct``.
Only flags GoPlus sets to ``"1"`` are kept. Insider, dev, sniper and bundler shares have no
source here and stay null.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from ingest.errors import VenueError
from ingest.onchain.base import Provider
from ingest.venues.base import Num, Raw

FLAGS = (
    "is_honeypot",
    "is_mintable",
    "is_proxy",
    "hidden_owner",
    "can_take_back_ownership",
    "owner_change_balance",
    "selfdestruct",
    "transfer_pausable",
    "is_blacklisted",
    "cannot_sell_all",
    "slippage_modifiable",
    "is_airdrop_scam",
)


class Envelope(Raw):
    code: int
    message: str = ""
    result: dict[str, Any] | None = None


class Holder(Raw):
    percent: float


class Security(Raw):
    holder_count: Num = None
    holders: list[Holder] = Field(default_factory=list)
    creator_percent: Num = None
    owner_percent: Num = None


@dataclass(frozen=True, slots=True)
class TokenSecurity:
    holders: float | None
    top10_holders_pct: float | None
    creator_pct: float | None
    owner_pct: float | None
    flags: tuple[str, ...]


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100.0


class GoPlus(Provider):
    id = "goplus"
    base_url = "https://api.gopluslabs.io"
    min_request_interval = 2.0  # 30 calls per minute without a key

    async def token(self, chain_id: str, address: str) -> TokenSecurity | None:
        env = self.envelope(
            Envelope,
            await self.get(f"/api/v1/token_security/{chain_id}", {"contract_addresses": address}),
        )
        if env.code != 1:
            raise VenueError(self.id, f"code {env.code}: {env.message}")
        raw = (env.result or {}).get(address.lower())
        if raw is None:
            return None
        sec = self.envelope(Security, raw)
        top = sorted((h.percent for h in sec.holders), reverse=True)[:10]
        return TokenSecurity(
            holders=sec.holder_count,
            top10_holders_pct=_pct(sum(top)) if top else None,
            creator_pct=_pct(sec.creator_percent),
            owner_pct=_pct(sec.owner_percent),
            flags=tuple(flag for flag in FLAGS if str(raw.get(flag)) == "1"),
        )
