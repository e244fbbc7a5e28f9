"""A long multi-venue funding file: one row per venue, contract and funding print.

Columns ``venue, venue_symbol, coin, quote, funding_time`` (ms), ``funding_rate`` (per interval),
``interval_hours``, and optionally ``mark_price`` (the coin's mark at the print; it becomes both
``mark_price`` and ``price``). ``venue`` must be a monitored venue id; ``coin`` is the base asset,
multiplier prefixes allowed (``kPEPE``, ``1000PEPE``: the price is divided by the multiplier).
"""

from __future__ import annotations

from typing import ClassVar

from ingest.importers.base import (
    FileReport,
    FundingPrint,
    Importer,
    Observation,
    Reject,
    coin_from_base,
    epoch_ms,
    finite,
    funding_rate,
    one_contract_per_coin,
    venue_id,
)

__all__ = ["MultiVenueFunding"]


class MultiVenueFunding(Importer):
    name = "multivenue-funding"
    description = (
        "long multi-venue funding: venue, venue_symbol, coin, quote, funding_time (ms), "
        "funding_rate, interval_hours[, mark_price]"
    )
    required: ClassVar[tuple[str, ...]] = ("venue", "coin", "funding_time", "funding_rate", "interval_hours")

    def parse_row(self, row: dict[str, str]) -> Observation:
        venue = venue_id(row["venue"])
        coin_id, multiplier = coin_from_base((row.get("coin") or "").strip())
        interval = finite(row["interval_hours"], "funding interval", positive=True)
        if interval > 24 * 7:
            raise Reject("funding interval out of range")
        price: float | None = None
        mark = row.get("mark_price")
        if mark is not None and mark.strip():
            price = finite(mark, "mark price", positive=True) / multiplier
        quote = (row.get("quote") or "").strip().upper()
        contract = f"{(row.get('venue_symbol') or coin_id).strip()}/{quote}"
        return FundingPrint(
            coin_id=coin_id,
            venue=venue,
            at_ms=epoch_ms(row["funding_time"], "funding_time"),
            rate=funding_rate(row["funding_rate"]),
            interval_hours=interval,
            price=price,
            contract=contract,
        )

    def finish(self, observations: list[Observation], report: FileReport) -> list[Observation]:
        return one_contract_per_coin(observations, report)
