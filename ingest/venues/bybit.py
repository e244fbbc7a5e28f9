"""Bybit linear perpetuals (ccxt ``bybit``).

Scan, 2 requests: ``/v5/market/tickers?category=linear`` (funding, mark, index, last, OI value in
USD) and ``/v5/market/instruments-info?category=linear`` (``fundingInterval`` in minutes, contract
type). Default interval: 8 h. Candidates get the account long/short ratio (``account-ratio``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.errors import VenueError
from ingest.venues.base import CcxtVenue, Num, Quote, Raw


class Envelope(Raw):
    retCode: int
    retMsg: str = ""
    result: dict[str, Any]


class Ticker(Raw):
    symbol: str
    markPrice: float
    indexPrice: Num = None
    lastPrice: Num = None
    fundingRate: Num = None
    openInterestValue: Num = None


class Instrument(Raw):
    symbol: str
    contractType: str
    baseCoin: str
    quoteCoin: str
    fundingInterval: Num = None


class AccountRatio(Raw):
    buyRatio: float
    sellRatio: float


class FundingPrint(Raw):
    fundingRateTimestamp: int
    fundingRate: float


class Bybit(CcxtVenue):
    id = "bybit"
    exchange_id = "bybit"
    default_interval_hours = 8.0

    async def _list(self, method: str, params: dict[str, Any]) -> Any:
        env = self.envelope(Envelope, await self.get(method, params))
        if env.retCode != 0:
            raise VenueError(self.id, f"retCode {env.retCode}: {env.retMsg}")
        return env.result.get("list")

    async def scan(self) -> list[Quote]:
        linear = {"category": "linear"}
        tickers = self.rows(Ticker, await self._list("publicGetV5MarketTickers", linear))
        instruments = self.rows(
            Instrument,
            await self._list("publicGetV5MarketInstrumentsInfo", {**linear, "limit": 1000}),
        )
        perps = {i.symbol: i for i in instruments if i.contractType == "LinearPerpetual"}
        quotes = []
        for row in tickers:
            inst = perps.get(row.symbol)
            if inst is None or row.fundingRate is None:
                continue
            minutes = inst.fundingInterval
            quotes.append(
                Quote(
                    venue=self.id,
                    symbol=row.symbol,
                    base=inst.baseCoin,
                    quote=inst.quoteCoin,
                    funding_rate=row.fundingRate,
                    funding_interval_hours=minutes / 60 if minutes else self.default_interval_hours,
                    open_interest_usd=row.openInterestValue,
                    mark_price=row.markPrice,
                    index_price=row.indexPrice,
                    price=row.lastPrice,
                )
            )
        return quotes

    async def enrich(self, quotes: Sequence[Quote]) -> None:
        for quote in quotes:
            params = {"category": "linear", "symbol": quote.symbol, "period": "1h", "limit": 1}
            ratios = self.rows(
                AccountRatio, await self._list("publicGetV5MarketAccountRatio", params)
            )
            if ratios and ratios[0].sellRatio > 0:
                quote.long_short_ratio = ratios[0].buyRatio / ratios[0].sellRatio

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        # Bybit rejects startTime without endTime; the latest 200 prints cover 72 h at 1 h.
        params = {"category": "linear", "symbol": quote.symbol, "limit": 200}
        rows = self.rows(FundingPrint, await self._list("publicGetV5MarketFundingHistory", params))
        return sorted(
            (r.fundingRateTimestamp, r.fundingRate)
            for r in rows
            if r.fundingRateTimestamp >= since_ms
        )
