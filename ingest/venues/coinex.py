"""CoinEx USDT perpetual futures, over httpx (CoinEx left ccxt in 4.5.87). API v2.

Scan, 3 requests: ``GET /v2/futures/ticker`` (every market: last, mark, index),
``GET /v2/futures/funding-rate`` (every market's ``latest_funding_rate``; the interval is
``next_funding_time - latest_funding_time``) and ``GET /v2/futures/market`` (every market's
``open_interest_volume``, in the base coin). The ticker example in the last ccxt that had CoinEx
carries no open interest; the market list does (ccxt ``fetchContractMarkets``). When every ticker
row does carry ``open_interest_volume`` (some SDKs read it there), the market list is skipped.
Default interval: 8 h. Funding history: ``GET /v2/futures/funding-rate-history`` (``funding_time``
ms, ``actual_funding_rate`` as settled).
"""

from __future__ import annotations

from typing import Any

from ingest.venues.base import CodedEnvelope, HttpVenue, Num, Quote, Raw, interval_from_ms, usd


class Envelope(CodedEnvelope):
    code: int
    message: str = ""
    data: list[Any]

    def refusal(self) -> str | None:
        return None if self.code == 0 else f"code {self.code}: {self.message}"


class Ticker(Raw):
    market: str
    last: Num = None
    mark_price: float
    index_price: Num = None
    open_interest_volume: Num = None


class Market(Raw):
    market: str
    open_interest_volume: Num = None


class Funding(Raw):
    market: str
    latest_funding_rate: float
    latest_funding_time: Num = None
    next_funding_time: Num = None


class FundingPrint(Raw):
    funding_time: int
    actual_funding_rate: float


class Coinex(HttpVenue):
    id = "coinex"
    base_url = "https://api.coinex.com"
    default_interval_hours = 8.0
    min_request_interval = 0.2

    async def scan(self) -> list[Quote]:
        tickers = {t.market: t for t in self.rows(Ticker, await self.unwrap(Envelope, "/v2/futures/ticker"))}
        funding = self.rows(Funding, await self.unwrap(Envelope, "/v2/futures/funding-rate"))
        oi = {m: t.open_interest_volume for m, t in tickers.items()}
        if any(v is None for v in oi.values()):
            markets = self.rows(Market, await self.unwrap(Envelope, "/v2/futures/market"))
            for m in markets:
                if oi.get(m.market) is None:
                    oi[m.market] = m.open_interest_volume
        quotes = []
        for row in funding:
            ticker = tickers.get(row.market)
            if ticker is None or not row.market.endswith("USDT"):
                continue
            quotes.append(
                Quote(
                    venue=self.id,
                    symbol=row.market,
                    base=row.market.removesuffix("USDT"),
                    funding_rate=row.latest_funding_rate,
                    funding_interval_hours=interval_from_ms(row.latest_funding_time, row.next_funding_time)
                    or self.default_interval_hours,
                    open_interest_usd=usd(oi.get(row.market), ticker.mark_price),
                    mark_price=ticker.mark_price,
                    index_price=ticker.index_price,
                    price=ticker.last,
                )
            )
        return quotes

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        params = {"market": quote.symbol, "start_time": since_ms, "limit": 100}
        rows = self.rows(FundingPrint, await self.unwrap(Envelope, "/v2/futures/funding-rate-history", params))
        return sorted((r.funding_time, r.actual_funding_rate) for r in rows if r.funding_time >= since_ms)
