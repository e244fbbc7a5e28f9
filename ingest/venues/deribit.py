"""Deribit USDC-settled linear perpetuals (ccxt ``deribit``).

Scan, 1 request: ``public/get_book_summary_by_currency?currency=USDC&kind=future`` lists every
``*_USDC-PERPETUAL`` with mark, index (``estimated_delivery_price``), last, open interest (in the
base coin for linear instruments) and ``funding_8h``. Deribit accrues funding continuously; its
published figure is the rate over 8 h, so the interval is 8 h.
Funding history: ``public/get_funding_rate_history`` (hourly rows; ``interest_8h`` is the 8 h rate
at that hour, the same figure as ``funding_8h``).
"""

from __future__ import annotations

import time
from typing import Any

from ingest.venues.base import CcxtVenue, Num, Quote, Raw, usd


class Envelope(Raw):
    result: list[Any]


class Summary(Raw):
    instrument_name: str
    base_currency: str
    quote_currency: str
    mark_price: float
    estimated_delivery_price: Num = None
    last: Num = None
    open_interest: Num = None
    funding_8h: Num = None


class FundingPrint(Raw):
    timestamp: int
    interest_8h: float


class Deribit(CcxtVenue):
    id = "deribit"
    exchange_id = "deribit"
    default_interval_hours = 8.0

    async def scan(self) -> list[Quote]:
        params = {"currency": "USDC", "kind": "future"}
        env = self.envelope(Envelope, await self.get("publicGetGetBookSummaryByCurrency", params))
        quotes = []
        for row in self.rows(Summary, env.result):
            if not row.instrument_name.endswith("-PERPETUAL") or row.funding_8h is None:
                continue
            quotes.append(
                Quote(
                    venue=self.id,
                    symbol=row.instrument_name,
                    base=row.base_currency,
                    quote=row.quote_currency,
                    funding_rate=row.funding_8h,
                    funding_interval_hours=self.default_interval_hours,
                    open_interest_usd=usd(row.open_interest, row.mark_price),
                    mark_price=row.mark_price,
                    index_price=row.estimated_delivery_price,
                    price=row.last,
                )
            )
        return quotes

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        params = {
            "instrument_name": quote.symbol,
            "start_timestamp": since_ms,
            "end_timestamp": int(time.time() * 1000),
        }
        env = self.envelope(Envelope, await self.get("publicGetGetFundingRateHistory", params))
        rows = self.rows(FundingPrint, env.result)
        return sorted((r.timestamp, r.interest_8h) for r in rows if r.timestamp >= since_ms)
