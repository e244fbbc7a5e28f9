"""Point in time: the run whose ranking was served at a given time (REST ``as_of``, GraphQL ``asOf``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gql.errors import ApiError
from gql.values import format_datetime
from scoring.schedule import next_run_at as planned_run_at

if TYPE_CHECKING:
    from gql.services import Services

__all__ = ["next_run_at", "run_as_of"]

#: Clients' clocks differ a little: an asOf this far ahead of ours is still "now".
_FUTURE_SLACK = timedelta(minutes=5)


async def run_as_of(services: Services, as_of: datetime, param: str) -> dict[str, Any]:
    """The succeeded run in force at ``as_of`` (the latest timed at or before it), from the stored
    runs; 400 before the retention limit (the earliest time whose ranking is stored in full) or in
    the future, 503 before the first run."""
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    if as_of > datetime.now(UTC) + _FUTURE_SLACK:
        raise ApiError(400, "parameter_invalid", f"{param} must not be in the future", param=param)
    limit = await services.runs.retained_since()
    if limit is None:
        raise ApiError(503, "not_ready", "the first scoring run has not finished yet; retry shortly", retry_after=5)
    if as_of < limit:
        raise ApiError(
            400,
            "before_retention",
            f"{param} {format_datetime(as_of)} is before the retention limit {format_datetime(limit)}: "
            f"the runs served before {format_datetime(limit)} are no longer stored in full",
            param=param,
        )
    run = await services.runs.in_force(as_of)
    if run is None:  # retention moved between the two reads
        raise ApiError(400, "before_retention", f"{param} is before the retention limit", param=param)
    return run


def next_run_at(services: Any, run: Mapping[str, Any]) -> datetime:
    """When the next run is planned, from the stored run and the configured interval (the
    leaderboard's, handed over by the composition root): the scheduler may live in another
    process (``insider-selling worker``), so this process never asks one."""
    return planned_run_at(run["at"], services.leaderboard.interval_seconds, services.clock())
