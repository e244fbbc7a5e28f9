"""Gate.io USDT-settled perpetual futures (ccxt ``gate``).

Scan, 1 request: ``futures/usdt/contracts`` carries, per contract, the funding rate and its
interval (``funding_interval``, seconds), mark, index and last price, the open position size in
contracts and the contract size (``quanto_multiplier``, base units per contract).
Default interval: 8 h. OI in USD = position_size x quanto_multiplier x mark.
Candidates: ``futures/usdt/contract_stats`` (5-minute rows: ``lsr_account`` is the account
long/short ratio; ``long_taker_size`` / ``short_taker_size`` are taker buys/sells in contracts,
valued at the row's ``mark_price``; the last 30 minutes are summed). History: hourly
``candlesticks`` (price path) and hourly ``contract_stats`` (``open_interest_usd``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.venues.base import Bar, CcxtVenue, Num, Quote, Raw, usd


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


class Stat(Raw):
    time: int
    lsr_account: Num = None
    mark_price: Num = None
    open_interest_usd: Num = None
    long_taker_size: Num = None
    short_taker_size: Num = None


class Candle(Raw):
    t: int
    c: float


class FundingPrint(Raw):
    t: int
    r: float


class Gate(CcxtVenue):
    id = "gate"
    exchange_id = "gate"
    default_interval_hours = 8.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: base units per contract, from the last scan (for taker sizes in contracts)
        self._size: dict[str, float] = {}

    async def scan(self) -> list[Quote]:
        contracts = self.rows(Contract, await self.get("publicFuturesGetSettleContracts", {"settle": "usdt"}))
        quotes = []
        for row in contracts:
            base, _, quote = row.name.partition("_")
            if quote != "USDT" or row.in_delisting:
                continue
            seconds = row.funding_interval
            if row.quanto_multiplier:
                self._size[row.name] = row.quanto_multiplier
            quotes.append(
                Quote(
                    venue=self.id,
                    symbol=row.name,
                    base=base,
                    funding_rate=row.funding_rate,
                    funding_interval_hours=seconds / 3600 if seconds else self.default_interval_hours,
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

    async def _stats(self, quote: Quote, interval: str, **params: int) -> list[Stat]:
        request = {"settle": "usdt", "contract": quote.symbol, "interval": interval, **params}
        rows = self.rows(Stat, await self.get("publicFuturesGetSettleContractStats", request))
        return sorted(rows, key=lambda r: r.time)

    async def enrich(self, quotes: Sequence[Quote]) -> None:
        for quote in quotes:
            stats = await self._stats(quote, "5m", limit=6)
            if not stats:
                continue
            quote.long_short_ratio = stats[-1].lsr_account
            size = self._size.get(quote.symbol)
            buys = [usd(r.long_taker_size, size, r.mark_price) for r in stats]
            sells = [usd(r.short_taker_size, size, r.mark_price) for r in stats]
            if len(stats) == 6 and None not in buys and None not in sells:
                quote.taker_buy_usd = sum(b for b in buys if b is not None)
                quote.taker_sell_usd = sum(s for s in sells if s is not None)

    async def price_history(self, quote: Quote, since_ms: int) -> list[Bar]:
        params: dict[str, Any] = {"settle": "usdt", "contract": quote.symbol, "interval": "1h"}
        params["from"] = since_ms // 1000
        rows = self.rows(Candle, await self.get("publicFuturesGetSettleCandlesticks", params))
        return [Bar(r.t * 1000, price=r.c) for r in sorted(rows, key=lambda r: r.t)]

    async def oi_history(self, quote: Quote, since_ms: int) -> list[Bar]:
        stats = await self._stats(quote, "1h", **{"from": since_ms // 1000})
        return [Bar(r.time * 1000, open_interest_usd=r.open_interest_usd) for r in stats]
