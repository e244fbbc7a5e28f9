"""The track record and point-in-time reads over GraphQL and REST.

- ``trackRecord`` (GraphQL) and ``GET /v1/insider-selling/track-record`` (REST, JSON or CSV with
  ``Accept: text/csv``) serve :meth:`scoring.track.TrackRecord.summary`: the realized forward
  excess returns of closed runs, against the universe median, with 95 % intervals.
- :func:`gql.history.run_as_of` resolves ``asOf``/``as_of`` to the run whose ranking was served at
  that time.

Every client input is bounded: the window and the band are enums, ``top_n`` is 1 to
:data:`scoring.track.MAX_TOP_N`, a model version at most 64 characters, and a time range is cut to
the :data:`MAX_SPAN_DAYS` days ending at ``to`` (the answer says which range it covers).
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl

import orjson
import strawberry
from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info

from gql.admission import Gate
from gql.context import Context
from gql.envelope import error_response, meta, new_request_id
from gql.errors import ApiError
from gql.openapi import TRACK_PATH
from gql.values import format_datetime, parse_datetime
from scoring.track import BAND_IDS, MAX_TOP_N, TOP_N, WINDOWS, TrackRecord

if TYPE_CHECKING:
    from gql.services import Services

__all__ = [
    "MAX_SPAN_DAYS",
    "TRACK_PATH",
    "RunTrackRecord",
    "ScoreBand",
    "TrackRecordReport",
    "TrackWindow",
    "track_record",
    "track_record_endpoint",
]

#: The longest range of run times one answer covers, and the default range.
MAX_SPAN_DAYS = 366
DEFAULT_SPAN_DAYS = 90
MAX_SERIES = 500
_VERSION = re.compile(r"^[A-Za-z0-9._+-]{1,64}$")


# -- arguments ---------------------------------------------------------------------------------


def _bad(param: str, message: str) -> ApiError:
    return ApiError(400, "parameter_invalid", message, param=param)


def _window(value: str, param: str = "window") -> str:
    if value not in WINDOWS:
        raise _bad(param, f"{param} must be one of {', '.join(WINDOWS)}")
    return value


def _top_n(value: int, param: str = "top_n") -> int:
    if not 1 <= value <= MAX_TOP_N:
        raise _bad(param, f"{param} must be an integer from 1 to {MAX_TOP_N}")
    return value


def _model_version(value: str | None, param: str = "model_version") -> str | None:
    if value is not None and not _VERSION.match(value):
        raise _bad(param, f"{param} must be 1 to 64 letters, digits, dots, dashes, pluses or underscores")
    return value


def _span(start: datetime | None, end: datetime | None) -> datetime:
    """The earliest run time covered: ``start``, by default :data:`DEFAULT_SPAN_DAYS` before
    ``end``, and a longer range is cut to the :data:`MAX_SPAN_DAYS` days ending at ``end``. Without
    ``end`` the range runs up to now, counted from the start of the hour (so that answers are
    cached for an hour, see ``TrackRecord.summary``)."""
    base = end or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = start or _before(base, DEFAULT_SPAN_DAYS)
    return max(start, _before(base, MAX_SPAN_DAYS))


def _after_hour(at: datetime) -> datetime:
    """The start of the next hour (the latest time there is, when none follows)."""
    try:
        return at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def _before(at: datetime, days: int) -> datetime:
    """``days`` before ``at``, or the earliest time there is."""
    try:
        return at - timedelta(days=days)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def _reader(services: Services) -> TrackRecord:
    reader = services.track
    return reader if reader is not None else TrackRecord(services.store.db)


async def _summary(
    services: Services,
    window: str,
    model_version: str | None,
    band: str | None,
    top_n: int,
    start: datetime | None,
    end: datetime | None,
) -> tuple[dict[str, Any], datetime, datetime]:
    # whole hours on both ends: distinct ranges that cover the same runs share one computation
    # (a summary costs a bootstrap; a client cannot buy a fresh one per second of ``from``)
    if end is not None and end != end.replace(minute=0, second=0, microsecond=0):
        end = _after_hour(end)
    first = _span(start, end).replace(minute=0, second=0, microsecond=0)
    summary = await _reader(services).summary(
        window, model_version=model_version, band=band, top_n=top_n, start=first, end=end
    )
    last = end or datetime.now(UTC).replace(microsecond=0)
    current = await services.leaderboard.current_run()
    if not summary["simulated"] and current is not None and current.get("source") == "demo":
        summary = {**summary, "simulated": True}  # this server scores the demo's simulated market
    return summary, first, last


def _num(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


# -- GraphQL -----------------------------------------------------------------------------------


@strawberry.enum(description="A track record window: the forward return's horizon.")
class TrackWindow(Enum):
    H24 = "24h"
    D7 = "7d"


@strawberry.enum(description="A score band of the track record (the displayed, two-decimal score).")
class ScoreBand(Enum):
    NOT_LISTED = "unlisted"
    BELOW_2_5 = "0-2.5"
    FROM_2_5_TO_5 = "2.5-5"
    FROM_5_TO_7_5 = "5-7.5"
    FROM_7_5_TO_10 = "7.5-10"


assert tuple(b.value for b in ScoreBand) == BAND_IDS


@strawberry.type(description="One selection's realized forward excess return over the closed runs.")
class TrackSelection:
    id: str = strawberry.field(description="top5 (top N), listed, universe, or a band id such as 2.5-5.")
    kind: str = strawberry.field(description="top, listed, band or universe.")
    label: str
    n: int = strawberry.field(description="(run, coin) pairs with a realized return.")
    coins: int
    runs: int
    mean_excess_return: float | None = strawberry.field(description="Mean excess over the universe median.")
    ci95_low: float | None = strawberry.field(description="95 % interval (two-way bootstrap: coins x time blocks).")
    ci95_high: float | None
    hit_rate: float | None = strawberry.field(description="Share of pairs that did worse than the universe.")
    mean_return: float | None
    blocks: int = strawberry.field(description="Blocks of time the interval resampled.")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TrackSelection:
        return cls(
            id=row["id"],
            kind=row["kind"],
            label=row["label"],
            n=int(row["n"]),
            coins=int(row["coins"]),
            runs=int(row["runs"]),
            mean_excess_return=_num(row["mean_excess_return"]),
            ci95_low=_num(row["ci95_low"]),
            ci95_high=_num(row["ci95_high"]),
            hit_rate=_num(row["hit_rate"]),
            mean_return=_num(row["mean_return"]),
            blocks=int(row["blocks"]),
        )


@strawberry.type(description="One run of the chart's chain (runs whose windows do not overlap).")
class TrackPoint:
    run_id: str
    at: datetime = strawberry.field(description="The run's time.")
    closes_at: datetime = strawberry.field(description="When its window closed.")
    model_version: str | None
    listed: int
    universe_return: float | None = strawberry.field(description="The universe median's forward return.")
    top_excess: float = strawberry.field(description="Mean excess of the run's top N (0 when none priced).")
    listed_excess: float = strawberry.field(description="Mean excess of its listed coins (0 when none).")
    top_cumulative: float = strawberry.field(description="Compounded excess of the top N up to this run.")
    listed_cumulative: float = strawberry.field(description="Compounded excess of every listed coin.")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TrackPoint:
        return cls(
            run_id=row["run_id"],
            at=row["at"],
            closes_at=row["closes_at"],
            model_version=row.get("model_version"),
            listed=int(row["listed"]),
            universe_return=_num(row.get("universe_return")),
            top_excess=float(row["top_excess"]),
            listed_excess=float(row["listed_excess"]),
            top_cumulative=float(row["top_cumulative"]),
            listed_cumulative=float(row["listed_cumulative"]),
        )


@strawberry.type(
    name="TrackRecord",
    description=(
        "Realized forward excess returns of closed runs against the universe median, computed when each "
        "window closed from the prices stored then, under each run's own model version."
    ),
)
class TrackRecordReport:
    window: TrackWindow
    benchmark: str
    top_n: int
    runs: int = strawberry.field(description="Closed runs counted.")
    from_: datetime = strawberry.field(name="from", description="Earliest run time covered.")
    to: datetime = strawberry.field(description="Latest run time covered.")
    model_versions: list[str]
    simulated: bool = strawberry.field(
        description="The runs, or this server's current run, scored the demo's simulated market."
    )
    bootstrap_reps: int
    block_hours: int
    selections: list[TrackSelection]
    _series: strawberry.Private[list[dict[str, Any]]]

    @strawberry.field(description="The chart's chain of runs, oldest first (the most recent `last`).")
    def series(
        self, last: Annotated[int, strawberry.argument(description=f"1 to {MAX_SERIES}.")] = MAX_SERIES
    ) -> list[TrackPoint]:
        if not 1 <= last <= MAX_SERIES:
            raise _bad("last", f"last must be an integer from 1 to {MAX_SERIES}")
        return [TrackPoint.from_row(r) for r in self._series[-last:]]


@strawberry.type(description="A run's realized figures for one window, stored when the window closed.")
class RunTrackRecord:
    window: TrackWindow
    closes_at: datetime
    model_version: str | None = strawberry.field(description="The run's model version (never recomputed).")
    coins: int = strawberry.field(description="Coins with a realized return.")
    listed: int
    universe_return: float | None
    top_excess: float | None = strawberry.field(description="Mean excess of the run's top 5.")
    listed_excess: float | None

    @classmethod
    def from_doc(cls, window: str, doc: dict[str, Any]) -> RunTrackRecord:
        return cls(
            window=TrackWindow(window),
            closes_at=doc["closes_at"],
            model_version=doc.get("model_version"),
            coins=int(doc.get("coins") or 0),
            listed=int(doc.get("listed") or 0),
            universe_return=_num(doc.get("universe_return")),
            top_excess=_num(doc.get("top_excess")),
            listed_excess=_num(doc.get("listed_excess")),
        )


def run_track_records(doc: dict[str, Any]) -> list[RunTrackRecord]:
    track = doc.get("track") or {}
    return [RunTrackRecord.from_doc(w, track[w]) for w in WINDOWS if w in track]


async def track_record(
    info: Info[Context, Any],
    window: TrackWindow,
    model_version: str | None,
    band: ScoreBand | None,
    top_n: int,
    from_: datetime | None,
    to: datetime | None,
) -> TrackRecordReport:
    summary, first, last = await _summary(
        info.context.services,
        window.value,
        _model_version(model_version, "modelVersion"),
        band.value if band is not None else None,
        _top_n(top_n, "topN"),
        from_,
        to,
    )
    return TrackRecordReport(
        window=window,
        benchmark=summary["benchmark"],
        top_n=summary["top_n"],
        runs=summary["runs"],
        from_=first,
        to=last,
        model_versions=summary["model_versions"],
        simulated=summary["simulated"],
        bootstrap_reps=summary["bootstrap"]["reps"],
        block_hours=summary["bootstrap"]["block_hours"],
        selections=[TrackSelection.from_row(r) for r in summary["selections"]],
        _series=summary["series"],
    )


# -- REST --------------------------------------------------------------------------------------

_PARAMS = ("window", "model_version", "band", "top_n", "from", "to")
_INT = re.compile(r"^[+]?[0-9]{1,4}$")
CSV_COLUMNS = (
    "window",
    "id",
    "kind",
    "label",
    "n",
    "coins",
    "runs",
    "mean_excess_return",
    "ci95_low",
    "ci95_high",
    "hit_rate",
    "mean_return",
    "blocks",
)


def parse_track_params(
    items: list[tuple[str, str]],
) -> tuple[str, str | None, str | None, int, datetime | None, datetime | None]:
    seen: dict[str, str] = {}
    for name, value in items:
        if name not in _PARAMS:
            raise ApiError(
                400, "parameter_unknown", f"unknown parameter {name[:40]!r}; allowed: {', '.join(_PARAMS)}", param=name
            )
        if name in seen:
            raise ApiError(400, "parameter_repeated", f"{name} may be given only once", param=name)
        seen[name] = value
    window = _window(seen.get("window", "24h"))
    model_version = _model_version(seen.get("model_version"))
    band = seen.get("band")
    if band is not None and band not in BAND_IDS:
        raise _bad("band", f"band must be one of {', '.join(BAND_IDS)}")
    top_n = TOP_N
    if "top_n" in seen:
        raw = seen["top_n"].strip()
        if not _INT.match(raw):
            raise _bad("top_n", f"top_n must be an integer from 1 to {MAX_TOP_N}")
        top_n = _top_n(int(raw))
    times: dict[str, datetime | None] = {}
    for name in ("from", "to"):
        raw_time = seen.get(name)
        try:
            times[name] = None if raw_time is None else parse_datetime(raw_time)
        except ValueError as error:
            raise _bad(name, f"{name}: {error}") from None
    return window, model_version, band, top_n, times["from"], times["to"]


def _json_ready(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def _wants_csv(accept: str) -> bool:
    """``text/csv`` named in Accept with a higher preference than JSON (or JSON not named)."""

    def quality(media: str) -> float:
        best = -1.0
        for part in accept.split(",")[:20]:
            kind, _, params = part.strip().partition(";")
            if kind.strip().lower() != media:
                continue
            q = 1.0
            for param in params.split(";"):
                key, _, val = param.strip().partition("=")
                if key.strip().lower() == "q":
                    try:
                        q = float(val)
                    except ValueError:
                        q = 0.0
            best = max(best, q if math.isfinite(q) else 0.0)
        return best

    csv_q = quality("text/csv")
    return csv_q > 0 and csv_q >= quality("application/json")


async def track_record_endpoint(request: Request) -> Response:
    """``GET /v1/insider-selling/track-record``: as ``/v1/insider-selling/data``, a ``signals:read``
    key is authenticated and charged one request; then the figures, as JSON in the data envelope or
    as CSV (one row per selection)."""
    started = time.perf_counter()
    request_id = new_request_id()
    services: Services = request.app.state.services
    gate: Gate = request.app.state.gate
    headers: dict[str, str] = {}
    try:
        client = request.client.host if request.client else "unknown"
        principal = await gate.authenticate(services, request.headers.get("authorization"), client, "REST")
        gate.require(principal, "signals:read")
        headers.update(await gate.charge(services, principal))
        if len(request.scope["query_string"]) > 1024:
            raise ApiError(400, "parameter_invalid", "the query string is longer than 1024 bytes")
        items = parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)
        window, model_version, band, top_n, start, end = parse_track_params(items)
        summary, first, last = await _summary(services, window, model_version, band, top_n, start, end)
    except ApiError as error:
        return error_response(error, request_id, started, headers)
    headers["X-Request-Id"] = request_id
    data = _json_ready({**summary, "from": first, "to": last})
    if _wants_csv(request.headers.get("accept", "")):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row in data["selections"]:
            writer.writerow([window, *("" if row.get(c) is None else row[c] for c in CSV_COLUMNS[1:])])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    body = orjson.dumps({"data": data, "meta": meta(request_id, started)})
    return Response(body, media_type="application/json", headers=headers)
