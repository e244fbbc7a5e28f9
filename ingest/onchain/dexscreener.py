"""DexScreener: DEX liquidity, 24 h volume and 24 h buy/sell counts of a token.

``GET /tokens/v1/{chainId}/{address}`` returns every pair of the token; the pairs where it is the
base token are summed. DexScreener gives no buy/sell *volume*, so those fields stay null.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.onchain.base import Provider
from ingest.venues.base import Num, Raw


class Token(Raw):
    address: str


class Window(Raw):
    h24: Num = None


class Txns(Raw):
    buys: int = 0
    sells: int = 0


class TxnWindows(Raw):
    h24: Txns = Txns()


class Liquidity(Raw):
    usd: Num = None


class Pair(Raw):
    chainId: str
    baseToken: Token
    liquidity: Liquidity = Liquidity()
    volume: Window = Window()
    txns: TxnWindows = TxnWindows()


@dataclass(frozen=True, slots=True)
class DexStats:
    liquidity_usd: float | None
    volume_24h_usd: float | None
    buys_24h: float | None
    sells_24h: float | None


def _sum(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


class DexScreener(Provider):
    id = "dexscreener"
    base_url = "https://api.dexscreener.com"
    min_request_interval = 0.25  # 300 requests per minute

    async def token(self, chain: str, address: str) -> DexStats | None:
        pairs = self.rows(Pair, await self.get(f"/tokens/v1/{chain}/{address}"))
        own = [p for p in pairs if p.baseToken.address.lower() == address.lower()]
        if not own:
            return None
        return DexStats(
            liquidity_usd=_sum([p.liquidity.usd for p in own]),
            volume_24h_usd=_sum([p.volume.h24 for p in own]),
            buys_24h=float(sum(p.txns.h24.buys for p in own)),
            sells_24h=float(sum(p.txns.h24.sells for p in own)),
        )
