"""MEXC USDT-M perpetual futures (ccxt ``mexc``; ``has.fetchFundingRates`` is false).

Scan, 2 requests: ``contract/ticker`` without a symbol (funding rate, fair (mark) price, index,
last, ``holdVol`` = OI in contracts) and ``contract/detail`` (``contractSize``, base units per
contract). The interval (``collectCycle``, hours) is only per symbol, so the scan assumes the
8 h default and candidates get their real interval from ``contract/funding_rate/{symbol}``.
OI in USD = holdVol x contractSize x fair price. Contracts whose ``state`` is 1-3 (delivering,
settled, offline) are skipped. Funding history:
``contract/funding_rate/history?symbol&page_size=100`` (newest first, ``settleTime`` ms; MEXC
takes no start time, so the rows before ``since`` are dropped here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.venues.base import CcxtVenue, CodedEnvelope, Num, Quote, Raw, usd


class Envelope(CodedEnvelope):
    success: bool
    code: int = 0
    data: Any = None

    def refusal(self) -> str | None:
        return None if self.success else f"code {self.code}"


class Ticker(Raw):
    symbol: str
    fairPrice: float
    indexPrice: Num = None
    lastPrice: Num = None
    fundingRate: float
    holdVol: Num = None


class Detail(Raw):
    symbol: str
    baseCoin: str
    quoteCoin: str
    contractSize: float
    #: 0 enabled, 1 delivery, 2 completed, 3 offline, 4 pause (ccxt mexc.py, fetch_swap_markets)
    state: int = 0


class FundingDetail(Raw):
    fundingRate: float
    collectCycle: float


class FundingPage(Raw):
    resultList: list[Any]


class FundingPrint(Raw):
    settleTime: int
    fundingRate: float


class Mexc(CcxtVenue):
    id = "mexc"
    exchange_id = "mexc"
    default_interval_hours = 8.0

    async def scan(self) -> list[Quote]:
        tickers = self.rows(Ticker, await self.unwrap(Envelope, "contractPublicGetTicker", {}))
        details = self.rows(Detail, await self.unwrap(Envelope, "contractPublicGetDetail", {}))
        size = {d.symbol: d for d in details}
        quotes = []
        for row in tickers:
            detail = size.get(row.symbol)
            if detail is None or detail.quoteCoin != "USDT" or detail.state not in (0, 4):
                continue
            quotes.append(
                Quote(
                    venue=self.id,
                    symbol=row.symbol,
                    base=detail.baseCoin,
                    funding_rate=row.fundingRate,
                    funding_interval_hours=self.default_interval_hours,
                    open_interest_usd=usd(row.holdVol, detail.contractSize, row.fairPrice),
                    mark_price=row.fairPrice,
                    index_price=row.indexPrice,
                    price=row.lastPrice,
                )
            )
        return quotes

    async def enrich(self, quotes: Sequence[Quote]) -> None:
        for quote in quotes:
            data = await self.unwrap(Envelope, "contractPublicGetFundingRateSymbol", {"symbol": quote.symbol})
            detail = self.envelope(FundingDetail, data)
            quote.funding_rate = detail.fundingRate
            quote.funding_interval_hours = detail.collectCycle

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        params = {"symbol": quote.symbol, "page_size": 100}
        page = self.envelope(FundingPage, await self.unwrap(Envelope, "contractPublicGetFundingRateHistory", params))
        rows = self.rows(FundingPrint, page.resultList)
        return sorted((r.settleTime, r.fundingRate) for r in rows if r.settleTime >= since_ms)
