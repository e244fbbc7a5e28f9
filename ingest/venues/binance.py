"""Binance USDⓈ-M futures (ccxt ``binanceusdm``).

Scan, 3 requests: ``premiumIndex`` (mark, index, last funding rate of every symbol), ``fundingInfo``
(only the symbols whose interval was changed from the default, ``fundingIntervalHours``; this is
what ccxt's ``fetchFundingIntervals`` reads) and ``ticker/24hr`` (last price).
Default interval: 8 h. Binance has no bulk open interest, so OI, taker buy/sell volume
(``futures/data/takerlongshortRatio``) and the account long/short ratio are fetched per candidate.
History: hourly ``klines`` (close, and taker buy quote volume: taker sell = quote volume - taker
buy) and ``futures/data/openInterestHist`` (``sumOpenInterestValue``, USD).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ingest.errors import MalformedResponse
from ingest.venues.base import Bar, CcxtVenue, Num, Quote, Raw, usd

_PERP = re.compile(r"^(?P<base>[A-Z0-9]+?)(?P<quote>USDT|USDC)$")


class PremiumIndex(Raw):
    symbol: str
    markPrice: float
    indexPrice: Num = None
    lastFundingRate: Num = None


class FundingInfo(Raw):
    symbol: str
    fundingIntervalHours: float


class Ticker(Raw):
    symbol: str
    lastPrice: Num = None


class OpenInterest(Raw):
    symbol: str
    openInterest: float


class TakerVolume(Raw):
    buyVol: float
    sellVol: float


class AccountRatio(Raw):
    longShortRatio: float


class OpenInterestHour(Raw):
    timestamp: int
    sumOpenInterestValue: float


class FundingPrint(Raw):
    fundingTime: int
    fundingRate: float


class Binance(CcxtVenue):
    id = "binance"
    exchange_id = "binanceusdm"
    default_interval_hours = 8.0

    async def scan(self) -> list[Quote]:
        marks = self.rows(PremiumIndex, await self.get("fapiPublicGetPremiumIndex"))
        infos = self.rows(FundingInfo, await self.get("fapiPublicGetFundingInfo"))
        tickers = self.rows(Ticker, await self.get("fapiPublicGetTicker24hr"))
        intervals = {i.symbol: i.fundingIntervalHours for i in infos}
        last = {t.symbol: t.lastPrice for t in tickers}
        quotes = []
        for row in marks:
            match = _PERP.match(row.symbol)
            if not match or row.lastFundingRate is None:
                continue  # dated futures carry no funding rate
            quotes.append(
                Quote(
                    venue=self.id,
                    symbol=row.symbol,
                    base=match["base"],
                    quote=match["quote"],
                    funding_rate=row.lastFundingRate,
                    funding_interval_hours=intervals.get(row.symbol, self.default_interval_hours),
                    mark_price=row.markPrice,
                    index_price=row.indexPrice,
                    price=last.get(row.symbol),
                )
            )
        return quotes

    async def enrich(self, quotes: Sequence[Quote]) -> None:
        for quote in quotes:
            params = {"symbol": quote.symbol}
            oi = self.envelope(OpenInterest, await self.get("fapiPublicGetOpenInterest", params))
            quote.open_interest_usd = usd(oi.openInterest, quote.mark_price)
            window = {**params, "period": "30m", "limit": 1}
            flow = self.rows(TakerVolume, await self.get("fapiDataGetTakerlongshortRatio", window))
            if flow:  # volumes are in the base asset
                quote.taker_buy_usd = usd(flow[-1].buyVol, quote.mark_price)
                quote.taker_sell_usd = usd(flow[-1].sellVol, quote.mark_price)
            ratio = self.rows(AccountRatio, await self.get("fapiDataGetGlobalLongShortAccountRatio", window))
            if ratio:
                quote.long_short_ratio = ratio[-1].longShortRatio

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        params = {"symbol": quote.symbol, "startTime": since_ms, "limit": 1000}
        rows = self.rows(FundingPrint, await self.get("fapiPublicGetFundingRate", params))
        return [(r.fundingTime, r.fundingRate) for r in rows]

    async def price_history(self, quote: Quote, since_ms: int) -> list[Bar]:
        params = {"symbol": quote.symbol, "interval": "1h", "startTime": since_ms, "limit": 500}
        rows = await self.get("fapiPublicGetKlines", params)
        if not isinstance(rows, list):
            raise MalformedResponse(self.id, "klines: expected a list")
        bars = []
        for row in rows:  # [open time, o, h, l, c, volume, close time, quote volume, n, buy base,
            try:  #          buy quote, ignore]
                quote_volume, buy_quote = float(row[7]), float(row[10])
                bars.append(
                    Bar(
                        int(row[0]),
                        price=float(row[4]),
                        taker_buy_usd=buy_quote,
                        taker_sell_usd=quote_volume - buy_quote,
                    )
                )
            except (TypeError, ValueError, IndexError):
                self.stats.rejected += 1
        return bars

    async def oi_history(self, quote: Quote, since_ms: int) -> list[Bar]:
        params = {"symbol": quote.symbol, "period": "1h", "startTime": since_ms, "limit": 500}
        rows = self.rows(OpenInterestHour, await self.get("fapiDataGetOpenInterestHist", params))
        return [Bar(r.timestamp, open_interest_usd=r.sumOpenInterestValue) for r in rows]
