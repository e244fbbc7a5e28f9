"""Bitget USDT-M perpetual futures (ccxt ``bitget``, API v2).

Scan, 2 requests: ``mix/market/tickers?productType=USDT-FUTURES`` (funding, mark, index, last,
``holdingAmount`` = OI in base units) and ``mix/market/current-fund-rate?productType=...`` (every
symbol's ``fundingRateInterval`` in hours, which ccxt's ``fetchFundingIntervals`` reads).
Default interval: 8 h. OI in USD = holdingAmount x mark.
"""

from __future__ import annotations

from typing import Any

from ingest.errors import VenueError
from ingest.venues.base import CcxtVenue, Num, Quote, Raw, usd

_PRODUCT = {"productType": "USDT-FUTURES"}


class Envelope(Raw):
    code: str
    msg: str = ""
    data: list[Any]


class Ticker(Raw):
    symbol: str
    markPrice: float
    indexPrice: Num = None
    lastPr: Num = None
    fundingRate: float
    holdingAmount: Num = None


class CurrentFunding(Raw):
    symbol: str
    fundingRateInterval: Num = None


class FundingPrint(Raw):
    fundingTime: int
    fundingRate: float


class Bitget(CcxtVenue):
    id = "bitget"
    exchange_id = "bitget"
    default_interval_hours = 8.0

    async def _data(self, method: str, params: dict[str, Any]) -> list[Any]:
        env = self.envelope(Envelope, await self.get(method, params))
        if env.code != "00000":
            raise VenueError(self.id, f"code {env.code}: {env.msg}")
        return env.data

    async def scan(self) -> list[Quote]:
        tickers = self.rows(Ticker, await self._data("publicMixGetV2MixMarketTickers", _PRODUCT))
        current = self.rows(
            CurrentFunding, await self._data("publicMixGetV2MixMarketCurrentFundRate", _PRODUCT)
        )
        intervals = {c.symbol: c.fundingRateInterval for c in current}
        quotes = []
        for row in tickers:
            if not row.symbol.endswith("USDT"):
                continue
            quotes.append(
                Quote(
                    venue=self.id,
                    symbol=row.symbol,
                    base=row.symbol.removesuffix("USDT"),
                    funding_rate=row.fundingRate,
                    funding_interval_hours=intervals.get(row.symbol) or self.default_interval_hours,
                    open_interest_usd=usd(row.holdingAmount, row.markPrice),
                    mark_price=row.markPrice,
                    index_price=row.indexPrice,
                    price=row.lastPr,
                )
            )
        return quotes

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        params = {**_PRODUCT, "symbol": quote.symbol, "pageSize": 100}
        rows = self.rows(
            FundingPrint, await self._data("publicMixGetV2MixMarketHistoryFundRate", params)
        )
        return sorted((r.fundingTime, r.fundingRate) for r in rows if r.fundingTime >= since_ms)
