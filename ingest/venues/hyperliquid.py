"""Hyperliquid perpetuals (ccxt ``hyperliquid``; every market is USDC-margined and linear).

Scan, 1 request: ``POST /info {"type": "metaAndAssetCtxs"}`` returns the universe and, in the same
order, each asset's context: hourly ``funding``, ``openInterest`` in coins, ``markPx``,
``oraclePx`` (the index) and ``midPx``. Interval: always 1 h. Multiplied coins are ``kPEPE``,
``kBONK``, ... (1000 coins per unit).
History: ``{"type": "fundingHistory"}`` and the hourly price path from ``{"type": "candleSnapshot",
"req": {"coin", "interval": "1h", "startTime", "endTime"}}`` (``t`` = bar open ms, ``c`` = close
per unit, as ccxt's ``fetch_ohlcv`` reads it).
"""

from __future__ import annotations

import time
from typing import Any

from ingest.errors import MalformedResponse
from ingest.venues.base import Bar, CcxtVenue, Num, Quote, Raw, usd


class Asset(Raw):
    name: str
    isDelisted: bool = False


class Meta(Raw):
    universe: list[Asset]


class AssetContext(Raw):
    funding: float
    openInterest: Num = None
    markPx: float
    oraclePx: Num = None
    midPx: Num = None


class Candle(Raw):
    t: int
    c: float


class FundingPrint(Raw):
    time: int
    fundingRate: float


class Hyperliquid(CcxtVenue):
    id = "hyperliquid"
    exchange_id = "hyperliquid"
    default_interval_hours = 1.0

    async def scan(self) -> list[Quote]:
        body: Any = await self.get("publicPostInfo", {"type": "metaAndAssetCtxs"})
        if not isinstance(body, list) or len(body) != 2:
            self.stats.rejected += 1
            raise MalformedResponse(self.id, "metaAndAssetCtxs: expected [meta, contexts]")
        meta = self.envelope(Meta, body[0])
        if not isinstance(body[1], list) or len(body[1]) != len(meta.universe):
            self.stats.rejected += 1
            raise MalformedResponse(self.id, "metaAndAssetCtxs: universe and contexts differ")
        quotes = []
        for asset, raw in zip(meta.universe, body[1], strict=True):
            ctx = self.rows(AssetContext, [raw])
            if asset.isDelisted or not ctx:
                continue
            c = ctx[0]
            quotes.append(
                Quote(
                    venue=self.id,
                    symbol=asset.name,
                    base=asset.name,
                    quote="USDC",
                    funding_rate=c.funding,
                    funding_interval_hours=self.default_interval_hours,
                    open_interest_usd=usd(c.openInterest, c.markPx),
                    mark_price=c.markPx,
                    index_price=c.oraclePx,
                    price=c.midPx,
                )
            )
        return quotes

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        body = {"type": "fundingHistory", "coin": quote.symbol, "startTime": since_ms}
        rows = self.rows(FundingPrint, await self.get("publicPostInfo", body))
        return [(r.time, r.fundingRate) for r in rows]

    async def price_history(self, quote: Quote, since_ms: int) -> list[Bar]:
        body = {
            "type": "candleSnapshot",
            "req": {
                "coin": quote.symbol,
                "interval": "1h",
                "startTime": since_ms,
                "endTime": int(time.time() * 1000),
            },
        }
        rows = self.rows(Candle, await self.get("publicPostInfo", body))
        return sorted((Bar(r.t, price=r.c) for r in rows if r.t >= since_ms), key=lambda b: b.at_ms)
