"""BingX USDT-M perpetual swaps (ccxt ``bingx``).

Scan, 2 requests: ``swap/v2/quote/premiumIndex`` without a symbol (mark, index, last funding rate
of every contract) and ``swap/v2/quote/ticker`` (last price). BingX states no interval in bulk;
default 8 h (a ``fundingIntervalHours`` field is used when present). Open interest (already in
USDT) has no bulk endpoint and is fetched per candidate. Funding history:
``swap/v2/quote/fundingRate`` (``fundingTime`` ms, ``fundingRate`` per interval).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ingest.venues.base import CcxtVenue, CodedEnvelope, Num, Quote, Raw

_PERP = re.compile(r"^(?P<base>[A-Za-z0-9]+)-USDT$")


class Envelope(CodedEnvelope):
    code: int
    msg: str = ""
    data: Any = None

    def refusal(self) -> str | None:
        return None if self.code == 0 else f"code {self.code}: {self.msg}"


class Premium(Raw):
    symbol: str
    markPrice: float
    indexPrice: Num = None
    lastFundingRate: float
    fundingIntervalHours: Num = None


class Ticker(Raw):
    symbol: str
    lastPrice: Num = None


class OpenInterest(Raw):
    openInterest: float


class FundingPrint(Raw):
    fundingTime: int
    fundingRate: float


class Bingx(CcxtVenue):
    id = "bingx"
    exchange_id = "bingx"
    default_interval_hours = 8.0

    async def scan(self) -> list[Quote]:
        premiums = self.rows(Premium, await self.unwrap(Envelope, "swapV2PublicGetQuotePremiumIndex", {}))
        tickers = self.rows(Ticker, await self.unwrap(Envelope, "swapV2PublicGetQuoteTicker", {}))
        last = {t.symbol: t.lastPrice for t in tickers}
        quotes = []
        for row in premiums:
            match = _PERP.match(row.symbol)
            if not match:
                continue
            quotes.append(
                Quote(
                    venue=self.id,
                    symbol=row.symbol,
                    base=match["base"],
                    funding_rate=row.lastFundingRate,
                    funding_interval_hours=row.fundingIntervalHours or self.default_interval_hours,
                    mark_price=row.markPrice,
                    index_price=row.indexPrice,
                    price=last.get(row.symbol),
                )
            )
        return quotes

    async def enrich(self, quotes: Sequence[Quote]) -> None:
        for quote in quotes:
            data = await self.unwrap(Envelope, "swapV2PublicGetQuoteOpenInterest", {"symbol": quote.symbol})
            quote.open_interest_usd = self.envelope(OpenInterest, data).openInterest

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        params = {"symbol": quote.symbol, "startTime": since_ms, "limit": 1000}
        data = await self.unwrap(Envelope, "swapV2PublicGetQuoteFundingRate", params)
        rows = self.rows(FundingPrint, data)
        return sorted((r.fundingTime, r.fundingRate) for r in rows if r.fundingTime >= since_ms)
