"""Event types, the per-endpoint filters, and the events a run's outbox yields for one endpoint.

A coin is *listed* for an endpoint when its score is above 0 and at least the endpoint's
``min_score`` (0 when unset). ``coin.score_crossed`` fires when the score moves from below the
endpoint's ``threshold`` to at or above it (``up``), or back (``down``). Payloads follow Standard
Webhooks: ``{"type", "timestamp", "data"}``; the ``webhook-id`` of an event is derived from the
endpoint, the run and the event, so fanning one outbox out twice (after a crash) yields the same
ids, and the store's unique index keeps one delivery per (endpoint, id).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webhooks.errors import InvalidArgument

__all__ = ["DIRECTIONS", "EVENT_TYPES", "Event", "Filters", "events_for", "iso", "message_id", "validate_events"]

EVENT_TYPES = (
    "coin.listed",
    "coin.delisted",
    "coin.score_crossed",
    "coin.phase_changed",
    "run.completed",
    "run.failed",
)
DIRECTIONS = ("up", "down", "both")
TEST_EVENT = "webhook.test"


@dataclass(frozen=True, slots=True)
class Event:
    msg_id: str
    type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Filters:
    min_score: float | None = None
    threshold: float | None = None
    direction: str = "both"

    @classmethod
    def checked(
        cls, events: Sequence[str], min_score: float | None, threshold: float | None, direction: str | None
    ) -> Filters:
        for name, value in (("minScore", min_score), ("threshold", threshold)):
            if value is not None and (not math.isfinite(value) or not 0 <= value <= 10):
                raise InvalidArgument(name, f"{name} must be a number from 0 to 10")
        if direction is not None and direction not in DIRECTIONS:
            raise InvalidArgument("direction", f"direction must be one of {', '.join(DIRECTIONS)}")
        if "coin.score_crossed" in events and threshold is None:
            raise InvalidArgument("threshold", "coin.score_crossed needs a threshold (0 to 10)")
        if threshold is not None and threshold <= 0:
            raise InvalidArgument("threshold", "threshold must be above 0 (a score of 0 means not listed)")
        return cls(min_score, threshold, direction or "both")

    def doc(self) -> dict[str, Any]:
        return {"min_score": self.min_score, "threshold": self.threshold, "direction": self.direction}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> Filters:
        doc = doc or {}
        return cls(doc.get("min_score"), doc.get("threshold"), str(doc.get("direction") or "both"))


def validate_events(events: Sequence[str]) -> list[str]:
    if not isinstance(events, list | tuple) or not 1 <= len(events) <= len(EVENT_TYPES):
        raise InvalidArgument("events", f"events must list 1 to {len(EVENT_TYPES)} of {', '.join(EVENT_TYPES)}")
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise InvalidArgument("events", f"unknown event type; events must be among {', '.join(EVENT_TYPES)}")
    return sorted(set(events), key=EVENT_TYPES.index)


def iso(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def message_id(endpoint_id: str, *parts: str) -> str:
    digest = hashlib.sha256("|".join((endpoint_id, *parts)).encode()).hexdigest()
    return "msg_" + digest[:32]


def _payload(type_: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, "timestamp": iso(at), "data": data}


def events_for(endpoint: Mapping[str, Any], run: Mapping[str, Any]) -> Iterable[Event]:
    """The events ``run`` (a stored run document with its outbox) yields for ``endpoint``."""
    wanted = set(endpoint.get("events") or ())
    filters = Filters.from_doc(endpoint.get("filters"))
    endpoint_id = str(endpoint["endpoint_id"])
    run_id = str(run["run_id"])
    at = run.get("finished_at") or run["at"]
    status = run.get("status")
    if status == "failed":
        if "run.failed" in wanted:
            failed: dict[str, Any] = {
                "run_id": run_id,
                "at": iso(run["at"]),
                "error": str(run.get("error") or "")[:500],
            }
            yield Event(message_id(endpoint_id, run_id, "run.failed"), "run.failed", _payload("run.failed", at, failed))
        return
    if status != "succeeded":
        return
    floor = filters.min_score or 0.0

    def listed(score: float) -> bool:
        return score > 0 and score >= floor

    for change in run.get("changes") or ():
        score, before = float(change["score"]), float(change["previous_score"])
        coin = {
            "run_id": run_id,
            "coin_id": change["coin_id"],
            "symbol": change["symbol"],
            "name": change["name"],
            "score": score,
            "previous_score": before,
            "phase": change["phase"],
            "previous_phase": change["previous_phase"],
        }
        found: list[tuple[str, dict[str, Any]]] = []
        if "coin.listed" in wanted and listed(score) and not listed(before):
            found.append(("coin.listed", {**coin, "min_score": filters.min_score}))
        if "coin.delisted" in wanted and listed(before) and not listed(score):
            found.append(("coin.delisted", {**coin, "min_score": filters.min_score}))
        if "coin.score_crossed" in wanted and filters.threshold is not None:
            t = filters.threshold
            direction = "up" if before < t <= score else "down" if score < t <= before else None
            if direction is not None and filters.direction in (direction, "both"):
                found.append(("coin.score_crossed", {**coin, "threshold": t, "direction": direction}))
        if "coin.phase_changed" in wanted and change["phase"] != change["previous_phase"]:
            found.append(("coin.phase_changed", coin))
        for type_, body in found:
            msg_id = message_id(endpoint_id, run_id, type_, str(change["coin_id"]))
            yield Event(msg_id, type_, _payload(type_, at, body))
    if "run.completed" in wanted:
        summary: dict[str, Any] = {
            "run_id": run_id,
            "at": iso(run["at"]),
            "model_version": run.get("model_version"),
            "coins": run.get("coins"),
            "listed": run.get("listed"),
            "seconds": run.get("seconds"),
            "changes": len(run.get("changes") or ()),
        }
        yield Event(
            message_id(endpoint_id, run_id, "run.completed"), "run.completed", _payload("run.completed", at, summary)
        )
