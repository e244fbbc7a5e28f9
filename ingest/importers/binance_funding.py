"""Binance futures funding history (``GET /fapi/v1/fundingRate`` saved as CSV).

Columns ``symbol, funding_time, funding_rate``. The interval is not a column: each print's interval
is the time since the symbol's previous print when that is a valid interval (1, 2, 4 or 8 h) -
unless the prints before and after run at a shorter interval that divides it (a missed print) -
else the time to the next print, else the symbol's most common spacing. So a symbol that moves
from 8 h to 4 h settlements gets 8 h up to the change and 4 h after it, and a missed print does not
make a 16 h interval.
"""

from __future__ import annotations

import itertools
from typing import ClassVar

from ingest.importers.base import (
    FileReport,
    FundingPrint,
    Importer,
    Observation,
    coin_from_symbol,
    epoch_ms,
    funding_rate,
    group_by_series,
    one_contract_per_coin,
    typical_spacing,
    whole_hours,
)

__all__ = ["VALID_INTERVALS", "BinanceFunding", "infer_intervals"]

#: Funding intervals venues use, in hours.
VALID_INTERVALS = (1.0, 2.0, 4.0, 8.0)


def infer_intervals(times_ms: list[int]) -> list[float | None]:
    """Each print's funding interval from the spacing of a symbol's sorted print times."""
    n = len(times_ms)
    spacing = [whole_hours(b - a) for a, b in itertools.pairwise(times_ms)]
    typical = typical_spacing(times_ms)
    fallback = typical if typical in VALID_INTERVALS else None
    out: list[float | None] = []
    for i in range(n):
        before = spacing[i - 1] if i > 0 else None
        after = spacing[i] if i < n - 1 else None
        if (
            before in VALID_INTERVALS
            and after is not None
            and after < before
            and before % after == 0
            and out
            and out[-1] == after
        ):
            out.append(after)  # one missed print inside a shorter regime, not a switch and back
        elif before in VALID_INTERVALS:
            out.append(before)
        elif after in VALID_INTERVALS:
            out.append(after)
        else:
            out.append(fallback)
    return out


class BinanceFunding(Importer):
    name = "binance-funding"
    description = "Binance futures funding history: symbol, funding_time (ms), funding_rate (interval inferred)"
    required: ClassVar[tuple[str, ...]] = ("symbol", "funding_time", "funding_rate")

    def matches(self, header: list[str] | tuple[str, ...]) -> bool:  # type: ignore[override]
        return super().matches(header) and "venue" not in header and "interval_hours" not in header

    def parse_row(self, row: dict[str, str]) -> Observation:
        coin_id, _ = coin_from_symbol(row["symbol"])
        return FundingPrint(
            coin_id=coin_id,
            venue="binance",
            at_ms=epoch_ms(row["funding_time"], "funding_time"),
            rate=funding_rate(row["funding_rate"]),
            interval_hours=None,
            contract=row["symbol"].strip().upper(),
        )

    def finish(self, observations: list[Observation], report: FileReport) -> list[Observation]:
        out: list[Observation] = []
        for series in group_by_series(one_contract_per_coin(observations, report)):
            intervals = infer_intervals([o.at_ms for o in series])
            for obs, interval in zip(series, intervals, strict=True):
                if interval is None or not isinstance(obs, FundingPrint):
                    report.reject("funding interval not inferable (fewer than two prints a valid interval apart)")
                    continue
                out.append(FundingPrint(obs.coin_id, obs.venue, obs.at_ms, obs.rate, interval, contract=obs.contract))
        return out
