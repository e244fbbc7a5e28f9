"""OKX USDT/USDC-margined perpetual swaps (ccxt ``okx``).

Scan, 5 requests: ``public/funding-rate?instId=ANY`` (every swap's current rate; the interval is
``nextFundingTime - fundingTime``), ``public/mark-price``, ``market/tickers``,
``public/open-interest`` (``oiUsd``, else ``oiCcy`` x mark) and ``market/index-tickers``.
Default interval: 8 h. Candidates: taker buy/sell notional of the last 30 minutes
(``rubik/stat/taker-volume-contract``, ``unit=2``: USD) and the account long/short ratio
(``rubik/stat/contracts/long-short-account-ratio-contract``). History: hourly ``market/candles``
(price path) and ``rubik/stat/contracts/open-interest-history`` (``oiUsd``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ingest.venues.base import Bar, CcxtVenue, CodedEnvelope, Num, Quote, Raw, interval_from_ms, usd

_SWAP = re.compile(r"^(?P<base>[A-Z0-9]+)-(?P<quote>USDT|USDC)-SWAP$")


class Envelope(CodedEnvelope):
    code: str
    msg: str = ""
    data: list[Any]

    def refusal(self) -> str | None:
        return None if self.code == "0" else f"code {self.code}: {self.msg}"


class Funding(Raw):
    instId: str
    fundingRate: float
    fundingTime: Num = None
    nextFundingTime: Num = None


class Mark(Raw):
    instId: str
    markPx: float


class Ticker(Raw):
    instId: str
    last: Num = None


class OpenInterest(Raw):
    instId: str
    oiCcy: Num = None
    oiUsd: Num = None


class Index(Raw):
    instId: str
    idxPx: float


class FundingPrint(Raw):
    fundingTime: int
    realizedRate: Num = None
    fundingRate: float


class Okx(CcxtVenue):
    id = "okx"
    exchange_id = "okx"
    default_interval_hours = 8.0

    async def scan(self) -> list[Quote]:
        swap = {"instType": "SWAP"}
        funding = self.rows(Funding, await self.unwrap(Envelope, "publicGetPublicFundingRate", {"instId": "ANY"}))
        marks = self.rows(Mark, await self.unwrap(Envelope, "publicGetPublicMarkPrice", swap))
        tickers = self.rows(Ticker, await self.unwrap(Envelope, "publicGetMarketTickers", swap))
        ois = self.rows(OpenInterest, await self.unwrap(Envelope, "publicGetPublicOpenInterest", swap))
        index = self.rows(Index, await self.unwrap(Envelope, "publicGetMarketIndexTickers", {"quoteCcy": "USDT"}))
        mark = {m.instId: m.markPx for m in marks}
        last = {t.instId: t.last for t in tickers}
        oi = {o.instId: o for o in ois}
        idx = {i.instId: i.idxPx for i in index}
        quotes = []
        for row in funding:
            match = _SWAP.match(row.instId)
            if not match or row.instId not in mark:
                continue
            m = mark[row.instId]
            o = oi.get(row.instId)
            oi_usd = None if o is None else (o.oiUsd if o.oiUsd is not None else usd(o.oiCcy, m))
            quotes.append(
                Quote(
                    venue=self.id,
                    symbol=row.instId,
                    base=match["base"],
                    quote=match["quote"],
                    funding_rate=row.fundingRate,
                    funding_interval_hours=interval_from_ms(row.fundingTime, row.nextFundingTime)
                    or self.default_interval_hours,
                    open_interest_usd=oi_usd,
                    mark_price=m,
                    index_price=idx.get(f"{match['base']}-{match['quote']}"),
                    price=last.get(row.instId),
                )
            )
        return quotes

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        params = {"instId": quote.symbol, "limit": 100}
        rows = self.rows(FundingPrint, await self.unwrap(Envelope, "publicGetPublicFundingRateHistory", params))
        return sorted(
            (r.fundingTime, r.realizedRate if r.realizedRate is not None else r.fundingRate)
            for r in rows
            if r.fundingTime >= since_ms
        )

    def _table(self, rows: list[Any], width: int) -> list[list[float]]:
        """Rubik and candle rows are arrays of numeric strings; a short or bad row is dropped."""
        out = []
        for row in rows:
            try:
                values = [float(x) for x in row[:width]]
            except (TypeError, ValueError):
                values = []
            if len(values) < width:
                self.stats.rejected += 1
                continue
            out.append(values)
        return out

    async def enrich(self, quotes: Sequence[Quote]) -> None:
        for quote in quotes:
            params = {"instId": quote.symbol, "period": "5m", "unit": "2", "limit": 6}
            flow = self._table(await self.unwrap(Envelope, "publicGetRubikStatTakerVolumeContract", params), 3)
            if len(flow) == 6:  # [ts, sell, buy] per 5 minutes, newest first: the last 30 min
                quote.taker_sell_usd = sum(r[1] for r in flow)
                quote.taker_buy_usd = sum(r[2] for r in flow)
            ratio = self._table(
                await self.unwrap(
                    Envelope,
                    "publicGetRubikStatContractsLongShortAccountRatioContract",
                    {"instId": quote.symbol, "period": "5m", "limit": 1},
                ),
                2,
            )
            if ratio:
                quote.long_short_ratio = ratio[0][1]

    async def price_history(self, quote: Quote, since_ms: int) -> list[Bar]:
        params = {"instId": quote.symbol, "bar": "1H", "limit": 300}
        rows = self._table(await self.unwrap(Envelope, "publicGetMarketCandles", params), 5)
        return [Bar(int(r[0]), price=r[4]) for r in sorted(rows) if r[0] >= since_ms]

    async def oi_history(self, quote: Quote, since_ms: int) -> list[Bar]:
        params = {"instId": quote.symbol, "period": "1H", "begin": since_ms, "limit": 100}
        rows = self._table(await self.unwrap(Envelope, "publicGetRubikStatContractsOpenInterestHistory", params), 4)
        return [Bar(int(r[0]), open_interest_usd=r[3]) for r in sorted(rows) if r[0] >= since_ms]
