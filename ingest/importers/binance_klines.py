"""Binance futures klines (``GET /fapi/v1/klines`` saved as CSV), at any spacing.

Columns ``symbol, open_time, close`` (``open, high, low`` and the volume columns are read past). A kline's
close is known only when it closes, so it becomes a price at ``open_time + spacing`` (the
symbol's most common spacing between opens), valid until the next close: an hourly kline opening
at 10:00 is the 11:00 price. A *one-print* kline (``open``, ``high``, ``low`` and ``close`` all
equal, as files that sample a mark price at funding times write them) is a point price, not a bar:
its price was already known at its open time, so it is placed there (an 8-hourly sample is not
served 8 h late). A multiplied symbol's price is divided by its multiplier (``1000PEPEUSDT`` quotes
1000 PEPE).
"""

from __future__ import annotations

from typing import ClassVar

from ingest.importers.base import (
    FileReport,
    Importer,
    Observation,
    PricePoint,
    Reject,
    coin_from_symbol,
    epoch_ms,
    finite,
    group_by_series,
    one_contract_per_coin,
    typical_spacing,
)

__all__ = ["BinanceKlines"]


def _one_print(row: dict[str, str], close: float) -> bool:
    """The kline's open, high and low are present and equal to its close (a point price)."""
    try:
        return all(finite(row.get(k), k) == close for k in ("open", "high", "low"))
    except Reject:
        return False


class BinanceKlines(Importer):
    name = "binance-klines"
    description = "Binance futures klines at any spacing: symbol, open_time (ms), open, high, low, close, ..."
    required: ClassVar[tuple[str, ...]] = ("symbol", "open_time", "close")

    def parse_row(self, row: dict[str, str]) -> Observation:
        coin_id, multiplier = coin_from_symbol(row["symbol"])
        close = finite(row["close"], "close price", positive=True)
        return PricePoint(
            coin_id=coin_id,
            venue="binance",
            at_ms=epoch_ms(row["open_time"], "open_time"),
            price=close / multiplier,
            contract=row["symbol"].strip().upper(),
            bar=not _one_print(row, close),
        )

    def finish(self, observations: list[Observation], report: FileReport) -> list[Observation]:
        out: list[Observation] = []
        for series in group_by_series(one_contract_per_coin(observations, report)):
            if typical_spacing([o.at_ms for o in series]) is None:
                report.reject("kline spacing not inferable (a single kline)", len(series))
            else:
                out.extend(series)
        return out
