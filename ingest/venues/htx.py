"""HTX (Huobi) USDT-margined perpetual swaps (ccxt ``htx``).

ccxt 4.5.90 declares no implicit method for the linear batch funding or open-interest endpoints
(its ``fetchFundingRates`` and ``fetchOpenInterests`` raise ``NotSupported`` for linear swaps), so
they go through ``exchange.request`` with ccxt's own ``contract``/``public`` URL and signing.
Scan, 4 requests: ``linear-swap-api/v1/swap_batch_funding_rate``,
``linear-swap-api/v1/swap_open_interest`` (``value`` = OI in USDT),
``linear-swap-ex/market/detail/batch_merged`` (last price) and ``linear-swap-api/v1/swap_index``
(every contract's index price). The batch funding answer documents ``next_funding_time`` as
deprecated (always null), so the scan assumes the 8 h default; candidates get their real interval
from ``v5/market/funding_rate?contract_code`` (``next_funding_time - funding_time``, what ccxt's
``fetchFundingRate`` reads for linear swaps). HTX publishes no bulk mark price: candidates get
theirs from the last 1-minute bar of ``index/market/history/linear_swap_mark_price_kline``.
History: ``v5/market/funding_rate_history`` (``funding_time`` ms), hourly
``linear-swap-ex/market/history/kline`` (price path; ``id`` is the bar's open in seconds) and
``linear-swap-api/v1/swap_his_open_interest`` (``amount_type=2``; ``value`` in USDT per hour).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from ingest.errors import VenueError
from ingest.venues.base import Bar, CcxtVenue, Num, Quote, Raw, interval_from_ms

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


class Kline(Raw):
    id: int
    close: float


class CurrentFunding(Raw):
    contract_code: str
    funding_rate: float
    funding_time: Num = None
    next_funding_time: Num = None


class OpenInterestHistory(Raw):
    tick: list[Any]


class OpenInterestEnvelope(Raw):
    status: str
    data: OpenInterestHistory | None = None
    err_msg: str | None = None


class OpenInterestTick(Raw):
    ts: int
    value: float


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
        ois = await self._env(_API + "linear-swap-api/v1/swap_open_interest", {"contract_type": "swap"})
        ticks = await self._env("contractPublicGetLinearSwapExMarketDetailBatchMerged", {"business_type": "swap"})
        index = await self._env("contractPublicGetLinearSwapApiV1SwapIndex", {})
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

    async def _v5(self, method: str, params: dict[str, Any]) -> list[Any]:
        env = self.envelope(HistoryEnvelope, await self.get(method, params))
        if env.code != 200:
            raise VenueError(self.id, f"code {env.code}: {env.message}")
        return env.data

    async def enrich(self, quotes: Sequence[Quote]) -> None:
        for quote in quotes:
            current = self.rows(
                CurrentFunding,
                await self._v5("contractPublicGetV5MarketFundingRate", {"contract_code": quote.symbol}),
            )
            if current:
                now = current[0]
                quote.funding_rate = now.funding_rate
                quote.funding_interval_hours = (
                    interval_from_ms(now.funding_time, now.next_funding_time) or quote.funding_interval_hours
                )
            params = {"contract_code": quote.symbol, "period": "1min", "size": 1}
            env = await self._env("contractPublicGetIndexMarketHistoryLinearSwapMarkPriceKline", params)
            bars = self.rows(MarkBar, env.data)
            if bars:
                quote.mark_price = bars[-1].close

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        params = {"contract_code": quote.symbol, "start_time": since_ms, "limit": 100}
        rows = self.rows(FundingPrint, await self._v5("contractPublicGetV5MarketFundingRateHistory", params))
        return sorted((r.funding_time, r.funding_rate) for r in rows if r.funding_time >= since_ms)

    async def price_history(self, quote: Quote, since_ms: int) -> list[Bar]:
        hours = max(1, min(2000, (int(time.time() * 1000) - since_ms) // 3_600_000 + 1))
        params = {"contract_code": quote.symbol, "period": "60min", "size": hours}
        env = await self._env("contractPublicGetLinearSwapExMarketHistoryKline", params)
        rows = self.rows(Kline, env.data)
        return sorted(
            (Bar(r.id * 1000, price=r.close) for r in rows if r.id * 1000 >= since_ms),
            key=lambda b: b.at_ms,
        )

    async def oi_history(self, quote: Quote, since_ms: int) -> list[Bar]:
        hours = max(1, min(200, (int(time.time() * 1000) - since_ms) // 3_600_000 + 1))
        params = {
            "contract_code": quote.symbol,
            "contract_type": "swap",
            "period": "60min",
            "amount_type": 2,
            "size": hours,
        }
        env = self.envelope(
            OpenInterestEnvelope,
            await self.get("contractPublicGetLinearSwapApiV1SwapHisOpenInterest", params),
        )
        if env.status != "ok" or env.data is None:
            raise VenueError(self.id, f"status {env.status}: {env.err_msg}")
        rows = self.rows(OpenInterestTick, env.data.tick)  # newest first
        return sorted(
            (Bar(r.ts, open_interest_usd=r.value) for r in rows if r.ts >= since_ms),
            key=lambda b: b.at_ms,
        )
