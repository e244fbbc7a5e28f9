"""BitMEX USDT-margined perpetuals, over httpx (BitMEX left ccxt in 4.5.84).

Scan, 1 request: ``GET /api/v1/instrument/active``. Perpetuals have ``typ == "FFWCSX"``; the
linear ones quote USDT. ``fundingInterval`` is a duration written as a time on 2000-01-01
(``"2000-01-01T08:00:00.000Z"`` = 8 h). Open interest is in contracts of
``1 / underlyingToPositionMultiplier`` coins. BitMEX names bitcoin ``XBT``. Default interval: 8 h.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.venues.base import HttpVenue, Num, Quote, Raw, usd

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class Instrument(Raw):
    symbol: str
    typ: str
    underlying: str
    quoteCurrency: str
    state: str = "Open"
    fundingRate: Num = None
    fundingInterval: str | None = None
    markPrice: float
    indicativeSettlePrice: Num = None
    lastPrice: Num = None
    openInterest: Num = None
    underlyingToPositionMultiplier: Num = None


class FundingPrint(Raw):
    timestamp: datetime
    fundingRate: float


def interval_hours(value: str | None) -> float | None:
    if not value:
        return None
    try:
        delta = datetime.fromisoformat(value.replace("Z", "+00:00")) - _EPOCH
    except ValueError:
        return None
    hours = delta.total_seconds() / 3600
    return hours if hours > 0 else None


class Bitmex(HttpVenue):
    id = "bitmex"
    base_url = "https://www.bitmex.com"
    default_interval_hours = 8.0
    min_request_interval = 1.0  # 120 requests/minute unauthenticated; stay far below

    async def scan(self) -> list[Quote]:
        instruments = self.rows(Instrument, await self.get("/api/v1/instrument/active"))
        quotes = []
        for row in instruments:
            if row.typ != "FFWCSX" or row.quoteCurrency != "USDT" or row.fundingRate is None:
                continue
            multiplier = row.underlyingToPositionMultiplier
            contracts_in_coins = row.openInterest / multiplier if row.openInterest is not None and multiplier else None
            quotes.append(
                Quote(
                    venue=self.id,
                    symbol=row.symbol,
                    base=row.underlying,
                    funding_rate=row.fundingRate,
                    funding_interval_hours=interval_hours(row.fundingInterval) or self.default_interval_hours,
                    open_interest_usd=usd(contracts_in_coins, row.markPrice),
                    mark_price=row.markPrice,
                    index_price=row.indicativeSettlePrice,
                    price=row.lastPrice,
                )
            )
        return quotes

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        start = datetime.fromtimestamp(since_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        params = {"symbol": quote.symbol, "startTime": start, "count": 500}
        rows = self.rows(FundingPrint, await self.get("/api/v1/funding", params))
        return [(int(r.timestamp.timestamp() * 1000), r.fundingRate) for r in rows]
