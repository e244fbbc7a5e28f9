"""HTX (Huobi) USDT-margined perpetual swaps (ccxt ``htx``).

ccxt 4.5.90 declares no implicit method for the linear batch funding or open-interest endpoints,
so they go through ``exchange.request`` with ccxt's own ``contract``/``public`` URL and signing.
Scan, 4 requests: ``linear-swap-api/v1/swap_batch_funding_rate``,
``linear-swap-api/v1/swap_open_interest`` (``value`` = OI in USDT),
``linear-swap-ex/market/detail/batch_merged`` (last price) and ``linear-swap-api/v1/swap_index``
(every contract's index price). Default interval: 8 h, unless ``next_funding_time - funding_time``
states another. HTX publishes no bulk mark price: candidates get theirs from the last 1-minute
bar of ``index/market/history/linear_swap_mark_price_kline``. Funding history:
``v5/market/funding_rate_history`` (``funding_time`` ms).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ingest.errors import VenueError
from ingest.venues.base import CcxtVenue, Num, Quote, Raw, interval_from_ms

_SWAP = re.compile(r"^(?P<base>[A-Z0-9]+)-USDT$")
_API = "contract.public:"


class Envelope(Raw):
    status: str
    data: list[Any] | None = None
    ticks: list[Any] | None = None
    err_msg: str | None = None


class Funding(Raw):
    contract_code: str
    symbol: str
    funding_rate: float
    funding_time: Num = None
    next_funding_time: Num = None


class OpenInterest(Raw):
    contract_code: str
    value: Num = None


class Tick(Raw):
    contract_code: str
    close: Num = None


class Index(Raw):
    contract_code: str
    index_price: float


class MarkBar(Raw):
    close: float


class HistoryEnvelope(Raw):
    code: int
    message: str = ""
    data: list[Any]


class FundingPrint(Raw):
    funding_time: int
    funding_rate: float


class Htx(CcxtVenue):
    id = "htx"
    exchange_id = "htx"
    default_interval_hours = 8.0

    async def _env(self, path: str, params: dict[str, Any]) -> Envelope:
        env = self.envelope(Envelope, await self.get(path, params))
        if env.status != "ok":
            raise VenueError(self.id, f"status {env.status}: {env.err_msg}")
        return env

    async def scan(self) -> list[Quote]:
        funding = await self._env(_API + "linear-swap-api/v1/swap_batch_funding_rate", {})
        ois = await self._env(
            _API + "linear-swap-api/v1/swap_open_interest", {"contract_type": "swap"}
        )
        ticks = await self._env(
            "contractPublicGetLinearSwapExMarketDetailBatchMerged", {"business_type": "swap"}
        )
        index = await self._env(_API + "linear-swap-api/v1/swap_index", {})
        idx = {i.contract_code: i.index_price for i in self.rows(Index, index.data)}
        oi = {o.contract_code: o.value for o in self.rows(OpenInterest, ois.data)}
        last = {t.contract_code: t.close for t in self.rows(Tick, ticks.ticks)}
        quotes = []
        for row in self.rows(Funding, funding.data):
            match = _SWAP.match(row.contract_code)
            if not match:
                continue
            quotes.append(
                Quote(
                    venue=self.id,
                    symbol=row.contract_code,
                    base=match["base"],
                    funding_rate=row.funding_rate,
                    funding_interval_hours=interval_from_ms(row.funding_time, row.next_funding_time)
                    or self.default_interval_hours,
                    open_interest_usd=oi.get(row.contract_code),
                    index_price=idx.get(row.contract_code),
                    price=last.get(row.contract_code),
                )
            )
        return quotes

    async def enrich(self, quotes: Sequence[Quote]) -> None:
        for quote in quotes:
            params = {"contract_code": quote.symbol, "period": "1min", "size": 1}
            env = await self._env(
                "contractPublicGetIndexMarketHistoryLinearSwapMarkPriceKline", params
            )
            bars = self.rows(MarkBar, env.data)
            if bars:
                quote.mark_price = bars[-1].close

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        params = {"contract_code": quote.symbol, "start_time": since_ms, "limit": 100}
        raw = await self.get("contractPublicGetV5MarketFundingRateHistory", params)
        env = self.envelope(HistoryEnvelope, raw)
        if env.code != 200:
            raise VenueError(self.id, f"code {env.code}: {env.message}")
        rows = self.rows(FundingPrint, env.data)
        return sorted((r.funding_time, r.funding_rate) for r in rows if r.funding_time >= since_ms)
