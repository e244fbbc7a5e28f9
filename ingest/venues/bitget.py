"""Bitget USDT-M perpetual futures (ccxt ``bitget``, API v2).

Scan, 2 requests: ``mix/market/tickers?productType=USDT-FUTURES`` (funding, mark, index, last,
``holdingAmount`` = OI in base units) and ``mix/market/current-fund-rate?productType=...`` (every
symbol's ``fundingRateInterval`` in hours, which ccxt's ``fetchFundingIntervals`` reads).
Default interval: 8 h. OI in USD = holdingAmount x mark.
Candidates: the account long/short ratio (``account-long-short``, ``longAccountRatio /
shortAccountRatio``) and taker buy/sell notional of the last 30 minutes from
``fills-history`` (ccxt declares no taker-volume endpoint for Bitget). History: hourly
``candles`` (price path).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.venues.base import Bar, CcxtVenue, CodedEnvelope, Num, Quote, Raw, taker_flow, usd

TAKER_WINDOW_MS = 30 * 60_000

_PRODUCT = {"productType": "USDT-FUTURES"}


class Envelope(CodedEnvelope):
    code: str
    msg: str = ""
    data: list[Any]

    def refusal(self) -> str | None:
        return None if self.code == "00000" else f"code {self.code}: {self.msg}"


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


class AccountRatio(Raw):
    longAccountRatio: float
    shortAccountRatio: float
    ts: int


class Fill(Raw):
    ts: int
    price: float
    size: float
    side: str


class FundingPrint(Raw):
    fundingTime: int
    fundingRate: float


class Bitget(CcxtVenue):
    id = "bitget"
    exchange_id = "bitget"
    default_interval_hours = 8.0

    async def scan(self) -> list[Quote]:
        tickers = self.rows(Ticker, await self.unwrap(Envelope, "publicMixGetV2MixMarketTickers", _PRODUCT))
        current = self.rows(
            CurrentFunding, await self.unwrap(Envelope, "publicMixGetV2MixMarketCurrentFundRate", _PRODUCT)
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
        rows = self.rows(FundingPrint, await self.unwrap(Envelope, "publicMixGetV2MixMarketHistoryFundRate", params))
        return sorted((r.fundingTime, r.fundingRate) for r in rows if r.fundingTime >= since_ms)

    async def enrich(self, quotes: Sequence[Quote]) -> None:
        for quote in quotes:
            params = {**_PRODUCT, "symbol": quote.symbol}
            ratios = self.rows(
                AccountRatio,
                await self.unwrap(Envelope, "publicMixGetV2MixMarketAccountLongShort", {**params, "period": "5m"}),
            )
            if ratios:
                latest = max(ratios, key=lambda r: r.ts)
                if latest.shortAccountRatio > 0:
                    quote.long_short_ratio = latest.longAccountRatio / latest.shortAccountRatio
            fills = self.rows(
                Fill,
                await self.unwrap(Envelope, "publicMixGetV2MixMarketFillsHistory", {**params, "limit": 1000}),
            )
            if fills:
                newest = max(f.ts for f in fills)
                flow = taker_flow(
                    ((f.ts, f.price, f.size, f.side.lower() == "buy") for f in fills),
                    newest - TAKER_WINDOW_MS,
                )
                if flow is not None:
                    quote.taker_buy_usd, quote.taker_sell_usd = flow

    async def price_history(self, quote: Quote, since_ms: int) -> list[Bar]:
        params = {**_PRODUCT, "symbol": quote.symbol, "granularity": "1H", "limit": 200}
        params["startTime"] = since_ms
        bars = []
        for row in await self.unwrap(Envelope, "publicMixGetV2MixMarketCandles", params):
            try:  # [ts, open, high, low, close, base volume, quote volume]
                bars.append(Bar(int(row[0]), price=float(row[4])))
            except (TypeError, ValueError, IndexError):
                self.stats.rejected += 1
        return sorted((b for b in bars if b.at_ms >= since_ms), key=lambda b: b.at_ms)
