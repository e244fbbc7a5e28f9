"""Observations -> hourly snapshot rows, carrying each value forward without looking ahead.

The scorer works on hourly panels, so the importer writes one market row per coin, venue and
hour. A value observed at time ``t`` fills the hour containing ``t`` and the following hours for
as long as it stands, and never an hour before ``t``:

- a funding print, for its funding interval (an 8 h print at 08:00 fills 08:00 .. 15:00);
- an open-interest point or a price, until the series' usual spacing has passed (a 4 h OI value
  at 08:00 fills 08:00 .. 11:00; an hourly kline's close fills its close hour);

and in every case only until the next observation of the same series. A missing print is not
filled beyond that: the hours stay empty, as they would in a live recording. Nothing is
interpolated, so a run at hour ``T`` sees only what was published at or before ``T``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ingest.importers.base import (
    HOUR_MS,
    FundingPrint,
    Observation,
    OpenInterestPoint,
    PricePoint,
    typical_spacing,
)
from ingest.snapshot import MARKET_COLUMNS

__all__ = ["HourlySeries", "hourly_series"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class HourlySeries:
    """One coin on one venue: epoch hours (ascending) and one column per snapshot field."""

    coin_id: str
    venue: str
    hours: I64
    columns: dict[str, F64]


def _carry(base: int, span: int, hours: I64, holds: I64, values: F64) -> F64:
    """Dense ``(span,)`` array from ``base``: value ``i`` fills ``[hours[i], min(hours[i] + holds[i],
    hours[i + 1]))``; NaN elsewhere. ``hours`` ascending; a later value in the same hour wins."""
    out = np.full(span, np.nan)
    if not hours.size:
        return out
    nxt = np.r_[hours[1:], np.iinfo(np.int64).max]
    end = np.minimum(hours + holds, nxt)
    lengths = np.maximum(end - hours, 0)
    total = int(lengths.sum())
    which = np.repeat(np.arange(hours.size), lengths)
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[hours[which] + offsets - base] = values[which]
    return out


def _hold(spacing: float | None) -> int:
    return max(1, math.ceil(spacing)) if spacing else 1


def hourly_series(observations: Iterable[Observation]) -> Iterator[HourlySeries]:
    """Group observations by coin and venue and lay them on an hourly grid (see module doc)."""
    groups: dict[tuple[str, str], list[Observation]] = {}
    for obs in observations:
        groups.setdefault((obs.coin_id, obs.venue), []).append(obs)
    for (coin_id, venue), items in sorted(groups.items()):
        items.sort(key=lambda o: o.at_ms)
        funding = [o for o in items if isinstance(o, FundingPrint)]
        oi = [o for o in items if isinstance(o, OpenInterestPoint)]
        prices = [o for o in items if isinstance(o, PricePoint)]
        marks = [o for o in funding if o.price is not None]

        def hours_of(seq: list[FundingPrint] | list[OpenInterestPoint] | list[PricePoint]) -> I64:
            return np.array([o.at_ms // HOUR_MS for o in seq], dtype=np.int64)

        f_hours, o_hours, m_hours = hours_of(funding), hours_of(oi), hours_of(marks)
        p_spacing = typical_spacing([o.at_ms for o in prices])
        p_ms = np.array([o.at_ms for o in prices], dtype=np.int64)
        if p_spacing is not None:  # a kline's close is known one spacing after its open
            p_ms = p_ms + np.array([o.bar for o in prices], dtype=bool) * round(p_spacing * HOUR_MS)
        p_hours = p_ms // HOUR_MS
        f_hold = np.array([_hold(o.interval_hours) for o in funding], dtype=np.int64)
        o_hold = np.full(len(oi), _hold(typical_spacing([o.at_ms for o in oi])), dtype=np.int64)
        p_hold = np.full(len(prices), _hold(p_spacing), dtype=np.int64)
        m_hold = np.array([_hold(o.interval_hours) for o in marks], dtype=np.int64)
        ends = [h[-1] + d[-1] for h, d in ((f_hours, f_hold), (o_hours, o_hold), (p_hours, p_hold)) if h.size]
        starts = [h[0] for h in (f_hours, o_hours, p_hours) if h.size]
        base, span = int(min(starts)), int(max(ends) - min(starts))
        columns = {name: np.full(span, np.nan) for name in MARKET_COLUMNS}
        columns["funding_rate"] = _carry(base, span, f_hours, f_hold, np.array([o.rate for o in funding]))
        columns["funding_interval_hours"] = _carry(
            base, span, f_hours, f_hold, np.array([o.interval_hours or np.nan for o in funding])
        )
        columns["open_interest_usd"] = _carry(base, span, o_hours, o_hold, np.array([o.open_interest_usd for o in oi]))
        price = _carry(base, span, p_hours, p_hold, np.array([o.price for o in prices]))
        mark = _carry(base, span, m_hours, m_hold, np.array([o.price or np.nan for o in marks]))
        columns["mark_price"] = mark
        # the traded price where klines give it, else the mark (the multi-venue file has marks only)
        columns["price"] = np.where(np.isnan(price), mark, price)
        present = np.zeros(span, dtype=bool)
        for values in columns.values():
            present |= ~np.isnan(values)
        keep = np.flatnonzero(present)
        yield HourlySeries(
            coin_id, venue, base + keep.astype(np.int64), {name: values[keep] for name, values in columns.items()}
        )
