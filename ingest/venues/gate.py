"""Gate.io USDT-settled perpetual futures (ccxt ``gate``).

Scan, 1 request: ``futures/usdt/contracts`` carries, per contract, the funding rate and its
interval (``funding_interval``, seconds), mark, index and last price, the open position size in
contracts and the contract size (``quanto_multiplier``, base units per contract).
Default interval: 8 h. OI in USD = position_size x quanto_multiplier x mark.
"""

from __future__ import annotations

from ingest.venues.base import CcxtVenue, Num, Quote, Raw, usd


class Contract(Raw):
    name: str
    mark_price: float
    index_price: Num = None
    last_price: Num = None
    funding_rate: float
    funding_interval: Num = None
    position_size: Num = None
    quanto_multiplier: Num = None
    in_delisting: bool = False


class FundingPrint(Raw):
    t: int
    r: float


class Gate(CcxtVenue):
    id = "gate"
    exchange_id = "gate"
    default_interval_hours = 8.0

    async def scan(self) -> list[Quote]:
        contracts = self.rows(
            Contract, await self.get("publicFuturesGetSettleContracts", {"settle": "usdt"})
        )
        quotes = []
        for row in contracts:
            base, _, quote = row.name.partition("_")
            if quote != "USDT" or row.in_delisting:
                continue
            seconds = row.funding_interval
            quotes.append(
                Quote(
                    venue=self.id,
                    symbol=row.name,
                    base=base,
                    funding_rate=row.funding_rate,
                    funding_interval_hours=seconds / 3600
                    if seconds
                    else self.default_interval_hours,
                    open_interest_usd=usd(row.position_size, row.quanto_multiplier, row.mark_price),
                    mark_price=row.mark_price,
                    index_price=row.index_price,
                    price=row.last_price,
                )
            )
        return quotes

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        params = {
            "settle": "usdt",
            "contract": quote.symbol,
            "from": since_ms // 1000,
            "limit": 200,
        }
        rows = self.rows(FundingPrint, await self.get("publicFuturesGetSettleFundingRate", params))
        return sorted((r.t * 1000, r.r) for r in rows if r.t * 1000 >= since_ms)
