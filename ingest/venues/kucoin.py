"""KuCoin Futures USDT-margined perpetuals (ccxt ``kucoinfutures``).

Scan, 1 request: ``api/v1/contracts/active`` carries, per contract, the funding rate
(``fundingFeeRate``) and its interval (``fundingRateGranularity``, ms), mark, index, last,
open interest in contracts and the contract size (``multiplier``, base units per contract).
Default interval: 8 h. KuCoin names bitcoin ``XBT``. OI in USD = openInterest x multiplier x mark.
Funding history: ``api/v1/contract/funding-rates?symbol&from&to`` (``timepoint`` ms).
"""

from __future__ import annotations

import time
from typing import Any

from ingest.errors import VenueError
from ingest.venues.base import CcxtVenue, Num, Quote, Raw, usd


class Envelope(Raw):
    code: str
    data: list[Any]


class Contract(Raw):
    symbol: str
    type: str
    baseCurrency: str
    quoteCurrency: str
    isInverse: bool
    multiplier: float
    markPrice: float
    indexPrice: Num = None
    lastTradePrice: Num = None
    openInterest: Num = None
    fundingFeeRate: Num = None
    #: the funding interval in ms (ccxt kucoin.py parse_contract_ticker's contracts/active row)
    fundingRateGranularity: Num = None
    #: the same, under the name later KuCoin docs use; read when the first is absent
    currentFundingRateGranularity: Num = None


class FundingPrint(Raw):
    timepoint: int
    fundingRate: float


class Kucoin(CcxtVenue):
    id = "kucoin"
    exchange_id = "kucoinfutures"
    default_interval_hours = 8.0

    async def scan(self) -> list[Quote]:
        env = self.envelope(Envelope, await self.get("futuresPublicGetContractsActive"))
        if env.code != "200000":
            raise VenueError(self.id, f"code {env.code}")
        quotes = []
        for row in self.rows(Contract, env.data):
            if row.type != "FFWCSX" or row.isInverse or row.fundingFeeRate is None:
                continue  # FFWCSX: perpetual swap; FFICSX: dated future
            granularity = row.fundingRateGranularity or row.currentFundingRateGranularity
            quotes.append(
                Quote(
                    venue=self.id,
                    symbol=row.symbol,
                    base=row.baseCurrency,
                    quote=row.quoteCurrency,
                    funding_rate=row.fundingFeeRate,
                    funding_interval_hours=granularity / 3_600_000 if granularity else self.default_interval_hours,
                    open_interest_usd=usd(row.openInterest, row.multiplier, row.markPrice),
                    mark_price=row.markPrice,
                    index_price=row.indexPrice,
                    price=row.lastTradePrice,
                )
            )
        return quotes

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        params = {"symbol": quote.symbol, "from": since_ms, "to": int(time.time() * 1000)}
        env = self.envelope(Envelope, await self.get("futuresPublicGetContractFundingRates", params))
        if env.code != "200000":
            raise VenueError(self.id, f"code {env.code}")
        rows = self.rows(FundingPrint, env.data)
        return sorted((r.timepoint, r.fundingRate) for r in rows if r.timepoint >= since_ms)
