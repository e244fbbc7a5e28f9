"""Binance futures open-interest history (``GET /futures/data/openInterestHist`` saved as CSV).

Columns ``symbol, timestamp, sum_open_interest`` (contracts), ``sum_open_interest_value`` (USDT, the
snapshot's ``open_interest_usd``). Any period (5 m .. 1 d); each value stands until the next one.
"""

from __future__ import annotations

from typing import ClassVar

from ingest.importers.base import (
    FileReport,
    Importer,
    Observation,
    OpenInterestPoint,
    coin_from_symbol,
    epoch_ms,
    finite,
    one_contract_per_coin,
)

__all__ = ["BinanceOpenInterest"]


class BinanceOpenInterest(Importer):
    name = "binance-open-interest"
    description = (
        "Binance futures open-interest history: symbol, timestamp (ms), sum_open_interest, "
        "sum_open_interest_value (USDT)"
    )
    required: ClassVar[tuple[str, ...]] = ("symbol", "timestamp", "sum_open_interest_value")

    def parse_row(self, row: dict[str, str]) -> Observation:
        coin_id, _ = coin_from_symbol(row["symbol"])
        if "sum_open_interest" in row:
            finite(row["sum_open_interest"], "open interest (contracts)", non_negative=True)
        return OpenInterestPoint(
            coin_id=coin_id,
            venue="binance",
            at_ms=epoch_ms(row["timestamp"], "timestamp"),
            open_interest_usd=finite(row["sum_open_interest_value"], "open interest value", non_negative=True),
            contract=row["symbol"].strip().upper(),
        )

    def finish(self, observations: list[Observation], report: FileReport) -> list[Observation]:
        return one_contract_per_coin(observations, report)
