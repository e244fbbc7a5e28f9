"""Bybit linear perpetuals (ccxt ``bybit``).

Scan, 2+ requests: ``/v5/market/tickers?category=linear`` (funding, mark, index, last, OI value in
USD) and ``/v5/market/instruments-info?category=linear`` (``fundingInterval`` in minutes, contract
type; 1000 per page, followed by ``nextPageCursor``). Default interval: 8 h.
Candidates get the account long/short ratio (``account-ratio``) and taker buy/sell notional of
the last 30 minutes from ``recent-trade`` (Bybit publishes no taker-volume statistic; ``side`` is
the taker's side). History: hourly ``kline`` (price path) and ``open-interest`` (in coins, valued
at the same hour's kline close).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.errors import VenueError
from ingest.venues.base import Bar, CcxtVenue, Num, Quote, Raw, taker_flow

#: instruments-info pages followed at most (1000 instruments each)
MAX_PAGES = 10
TAKER_WINDOW_MS = 30 * 60_000


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


class Page(Raw):
    list: list[Any]
    nextPageCursor: str = ""


class Trade(Raw):
    time: int
    price: float
    size: float
    side: str


class OpenInterest(Raw):
    timestamp: int
    openInterest: float


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

    async def _result(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        env = self.envelope(Envelope, await self.get(method, params))
        if env.retCode != 0:
            raise VenueError(self.id, f"retCode {env.retCode}: {env.retMsg}")
        return env.result

    async def _list(self, method: str, params: dict[str, Any]) -> Any:
        return (await self._result(method, params)).get("list")

    async def _instruments(self) -> list[Instrument]:
        rows: list[Instrument] = []
        cursor = ""
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"category": "linear", "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = self.envelope(Page, await self._result("publicGetV5MarketInstrumentsInfo", params))
            rows += self.rows(Instrument, page.list)
            cursor = page.nextPageCursor
            if not cursor:
                break
        return rows

    async def scan(self) -> list[Quote]:
        linear = {"category": "linear"}
        tickers = self.rows(Ticker, await self._list("publicGetV5MarketTickers", linear))
        instruments = await self._instruments()
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
            ratios = self.rows(AccountRatio, await self._list("publicGetV5MarketAccountRatio", params))
            if ratios and ratios[0].sellRatio > 0:
                quote.long_short_ratio = ratios[0].buyRatio / ratios[0].sellRatio
            trades = self.rows(
                Trade,
                await self._list(
                    "publicGetV5MarketRecentTrade",
                    {"category": "linear", "symbol": quote.symbol, "limit": 1000},
                ),
            )
            if trades:
                newest = max(t.time for t in trades)
                flow = taker_flow(
                    ((t.time, t.price, t.size, t.side == "Buy") for t in trades),
                    newest - TAKER_WINDOW_MS,
                )
                if flow is not None:
                    quote.taker_buy_usd, quote.taker_sell_usd = flow

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        # Bybit rejects startTime without endTime; the latest 200 prints cover 72 h at 1 h.
        params = {"category": "linear", "symbol": quote.symbol, "limit": 200}
        rows = self.rows(FundingPrint, await self._list("publicGetV5MarketFundingHistory", params))
        return sorted((r.fundingRateTimestamp, r.fundingRate) for r in rows if r.fundingRateTimestamp >= since_ms)

    async def _closes(self, quote: Quote, since_ms: int) -> dict[int, float]:
        params = {
            "category": "linear",
            "symbol": quote.symbol,
            "interval": "60",
            "start": since_ms,
            "limit": 200,
        }
        rows = await self._list("publicGetV5MarketKline", params)
        if not isinstance(rows, list):
            raise VenueError(self.id, "kline: expected a list")
        closes: dict[int, float] = {}
        for row in rows:  # [start, open, high, low, close, volume, turnover], newest first
            try:
                closes[int(row[0])] = float(row[4])
            except (TypeError, ValueError, IndexError):
                self.stats.rejected += 1
        return closes

    async def price_history(self, quote: Quote, since_ms: int) -> list[Bar]:
        closes = await self._closes(quote, since_ms)
        return [Bar(ms, price=close) for ms, close in sorted(closes.items())]

    async def oi_history(self, quote: Quote, since_ms: int) -> list[Bar]:
        params = {
            "category": "linear",
            "symbol": quote.symbol,
            "intervalTime": "1h",
            "startTime": since_ms,
            "limit": 200,
        }
        rows = self.rows(OpenInterest, await self._list("publicGetV5MarketOpenInterest", params))
        closes = await self._closes(quote, since_ms)
        # OI is in coins; an hour without a kline close has no USD value (never the current mark)
        return [
            Bar(r.timestamp, open_interest_usd=r.openInterest * closes[r.timestamp])
            for r in sorted(rows, key=lambda r: r.timestamp)
            if r.timestamp in closes
        ]
