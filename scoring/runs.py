"""Scoring runs and their scores in the document store (DESIGN §4).

A run is inserted as ``running``; its score documents are written under its ``run_id``; only then
is it flipped to ``succeeded``. Readers only ever follow the latest *succeeded* run, so a run's
scores become visible all at once, and a failed or interrupted run leaves the previous leaderboard
in place (its partial documents are deleted).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from scoring.errors import StaleRun

__all__ = ["RunStore", "new_run_id"]

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


def new_run_id(at: datetime) -> str:
    return f"run_{at.astimezone(UTC):%Y%m%dT%H%M%SZ}_{secrets.token_hex(3)}"


class RunStore:
    """Persistence of runs and scores; ``db`` is an ``AsyncDatabase`` or the in-memory stand-in."""

    def __init__(self, db: Any) -> None:
        self.runs = db["runs"]
        self.scores = db["scores"]
        self.fences = db["run_fences"]

    async def start(
        self, run_id: str, at: datetime, model_version: str, source: str, fencing_token: int | None = None
    ) -> None:
        await self.runs.insert_one(
            {
                "run_id": run_id,
                "at": at,
                "status": RUNNING,
                "source": source,
                "model_version": model_version,
                "started_at": datetime.now(UTC),
                "finished_at": None,
                "fencing_token": fencing_token,
            }
        )

    async def claim_fence(self, fencing_token: int) -> None:
        """Record ``fencing_token`` as the newest to commit, or raise :class:`StaleRun` when a newer
        one already has. One conditional upsert: with a newer token stored the filter matches
        nothing and the upsert's insert collides with the existing document."""
        try:
            await self.fences.update_one(
                {"_id": "runs", "token": {"$lte": fencing_token}}, {"$set": {"token": fencing_token}}, upsert=True
            )
        except DuplicateKeyError:
            newest = await self.fences.find_one({"_id": "runs"})
            raise StaleRun(
                f"fencing token {fencing_token} is older than the committed "
                f"{newest and newest.get('token')}: another worker holds the lock"
            ) from None

    async def write_scores(self, run_id: str, docs: Sequence[dict[str, Any]]) -> None:
        if docs:
            await self.scores.insert_many([{**d, "run_id": run_id} for d in docs], ordered=False)

    async def succeed(
        self,
        run_id: str,
        summary: Mapping[str, Any],
        fencing_token: int | None = None,
        changes: Sequence[Mapping[str, Any]] = (),
        *,
        outbox: bool = True,
    ) -> None:
        """Flip the run to ``succeeded``; with a fencing token, only if no newer token has committed
        (else :class:`StaleRun`, and the run stays ``running`` for the caller to fail).
        ``outbox=False``: a backdated run (history scored after the present was served) announces
        nothing to webhooks: its events would arrive late and out of order.

        The run's **outbox** is written in the same single-document update: ``changes`` (the coins
        whose score or phase moved since the previous run) and ``outbox_pending: true``. The webhook
        dispatcher fans pending outboxes out to endpoints and clears the flag, so a process that
        dies right after this update loses no event (no transaction needed: one document)."""
        if fencing_token is not None:
            await self.claim_fence(fencing_token)
        await self.runs.update_one(
            {"run_id": run_id, "status": RUNNING},
            {
                "$set": {
                    "status": SUCCEEDED,
                    "finished_at": datetime.now(UTC),
                    **summary,
                    "changes": [dict(c) for c in changes] if outbox else [],
                    "outbox_pending": outbox,
                }
            },
        )

    async def fail(self, run_id: str, error: str, summary: Mapping[str, Any] | None = None) -> None:
        """Mark the run failed (its partial scores deleted); the same update puts it in the outbox
        (``outbox_pending``) for the ``run.failed`` webhook event."""
        await self.scores.delete_many({"run_id": run_id})
        await self.runs.update_one(
            {"run_id": run_id},
            {
                "$set": {
                    "status": FAILED,
                    "finished_at": datetime.now(UTC),
                    "error": error[:500],
                    **(summary or {}),
                    "outbox_pending": True,
                }
            },
        )

    async def abandon_stale(self, older_than: timedelta = timedelta(hours=1)) -> int:
        """Mark runs left ``running`` by a crashed process as failed; returns how many."""
        cutoff = datetime.now(UTC) - older_than
        stale = await self.runs.find({"status": RUNNING, "started_at": {"$lt": cutoff}}).to_list()
        for run in stale:
            await self.fail(run["run_id"], "interrupted")
        return len(stale)

    async def latest_succeeded(self) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.runs.find_one(
            {"status": SUCCEEDED}, {"_id": 0}, sort=[("at", DESCENDING), ("finished_at", DESCENDING)]
        )
        return doc

    async def in_force(self, as_of: datetime) -> dict[str, Any] | None:
        """The run whose ranking was served at ``as_of``: the latest succeeded run timed at or
        before it (a run is served from its market time on, until the next one succeeds)."""
        doc: dict[str, Any] | None = await self.runs.find_one(
            {"status": SUCCEEDED, "at": {"$lte": as_of}},
            {"_id": 0},
            sort=[("at", DESCENDING), ("finished_at", DESCENDING)],
        )
        return doc

    async def retained_since(self) -> datetime | None:
        """The earliest time whose served ranking is still stored in full: the first succeeded run
        after the latest one that retention pruned (or the first succeeded run); ``None`` when
        there is no run at all."""
        pruned = await self.runs.find_one(
            {"status": SUCCEEDED, "pruned": True}, {"at": 1, "_id": 0}, sort=[("at", DESCENDING)]
        )
        query: dict[str, Any] = {"status": SUCCEEDED, "pruned": {"$ne": True}}
        if pruned is not None:
            query["at"] = {"$gt": pruned["at"]}
        first = await self.runs.find_one(query, {"at": 1, "_id": 0}, sort=[("at", ASCENDING)])
        if first is None:
            return None
        at: datetime = first["at"]
        return at if at.tzinfo else at.replace(tzinfo=UTC)

    async def get_run(self, run_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.runs.find_one({"run_id": run_id}, {"_id": 0})
        return doc

    async def recent_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        cursor = self.runs.find({}, {"_id": 0}).sort([("started_at", DESCENDING)]).limit(limit)
        runs: list[dict[str, Any]] = await cursor.to_list()
        return runs

    async def succeeded_runs(self) -> list[dict[str, Any]]:
        cursor = self.runs.find({"status": SUCCEEDED}, {"_id": 0}).sort([("at", ASCENDING)])
        runs: list[dict[str, Any]] = await cursor.to_list()
        return runs

    async def leaderboard(
        self,
        run_id: str,
        *,
        limit: int = 500,
        min_score: float = 0.0,
        projection: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The run's coins with score > 0 and >= ``min_score``, by score descending."""
        query = {"run_id": run_id, "score": {"$gt": 0, "$gte": min_score}}
        proj = dict(projection) if projection is not None else {}
        proj["_id"] = 0
        # ties at the displayed two decimals are broken by the unrounded score
        cursor = (
            self.scores.find(query, proj)
            .sort([("score", DESCENDING), ("score_exact", DESCENDING), ("coin_id", ASCENDING)])
            .limit(limit)
        )
        docs: list[dict[str, Any]] = await cursor.to_list()
        return docs

    async def run_scores(self, run_id: str, projection: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        proj = {**(projection or {}), "_id": 0}
        docs: list[dict[str, Any]] = await self.scores.find({"run_id": run_id}, proj).to_list()
        return docs

    async def coin_score(self, run_id: str, coin_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.scores.find_one({"run_id": run_id, "coin_id": coin_id}, {"_id": 0})
        return doc

    async def history(
        self,
        coin_ids: Sequence[str],
        *,
        before: datetime | None = None,
        after: datetime | None = None,
        limit_per_coin: int | None = None,
        projection: Mapping[str, Any] | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """Succeeded runs' scores for several coins, newest first per coin.

        With ``limit_per_coin`` the read is bounded: one query finds the newest ``limit_per_coin``
        succeeded runs in the window, and one query reads just those runs' documents for every
        coin, so the cost does not grow with the length of the history."""
        query: dict[str, Any] = {"coin_id": {"$in": list(coin_ids)}, "visible": True}
        window: dict[str, Any] = {}
        if before is not None:
            window["$lt"] = before
        if after is not None:
            window["$gte"] = after
        if window:
            query["at"] = window
        if limit_per_coin is not None:
            runs_query: dict[str, Any] = {
                "status": SUCCEEDED,
                "pruned": {"$ne": True},
                **({"at": window} if window else {}),
            }
            recent = (
                await self.runs.find(runs_query, {"run_id": 1, "_id": 0})
                .sort([("at", DESCENDING)])
                .limit(limit_per_coin)
                .to_list()
            )
            query["run_id"] = {"$in": [r["run_id"] for r in recent]}
        proj = {**(projection or {}), "_id": 0}
        docs = await self.scores.find(query, proj).sort([("coin_id", ASCENDING), ("at", DESCENDING)]).to_list()
        out: dict[str, list[dict[str, Any]]] = {cid: [] for cid in coin_ids}
        for doc in docs:
            rows = out[doc["coin_id"]]
            if limit_per_coin is None or len(rows) < limit_per_coin:
                rows.append(doc)
        return out

    async def roll_up(self, full_days: int, now: datetime | None = None, *, batch: int = 200) -> int:
        """Retention by roll-up: runs older than ``full_days`` (counted back from the start of
        today, UTC) keep one run per UTC day, the day's latest succeeded run (``daily: true``);
        the others lose their score documents and are marked ``pruned`` (their run documents, with
        the per-venue outcomes, stay). Each old run is looked at once. The latest run is never
        pruned: it is the latest of its day. Returns how many runs were pruned."""
        now = now or datetime.now(UTC)
        cutoff = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=full_days)
        old = (
            await self.runs.find(
                {"status": SUCCEEDED, "at": {"$lt": cutoff}, "pruned": {"$ne": True}, "daily": {"$ne": True}},
                {"run_id": 1, "at": 1, "_id": 0},
            )
            .sort([("at", ASCENDING)])
            .to_list()
        )
        if not old:
            return 0
        keep: dict[Any, str] = {}
        for run in old:  # ascending: the last one seen on a day is the day's latest
            at = run["at"] if run["at"].tzinfo else run["at"].replace(tzinfo=UTC)
            keep[at.date()] = run["run_id"]
        kept = set(keep.values())
        pruned = [r["run_id"] for r in old if r["run_id"] not in kept]
        for start in range(0, len(pruned), batch):
            chunk = pruned[start : start + batch]
            await self.scores.delete_many({"run_id": {"$in": chunk}})
            await self.runs.update_many({"run_id": {"$in": chunk}}, {"$set": {"pruned": True}})
        await self.runs.update_many({"run_id": {"$in": sorted(kept)}}, {"$set": {"daily": True}})
        return len(pruned)

    async def slim_unlisted(self, run_id: str) -> None:
        """Drop the per-venue breakdown of ``run_id``'s unlisted coins once a later run is stored:
        only the latest run needs it (a coin looked up shows its funding and OI now), and it would
        triple the size of every retained score document (docs/operations.md, "MongoDB: collections and storage")."""
        await self.scores.update_many({"run_id": run_id, "score": 0.0}, {"$set": {"venues": []}})

    async def mark_visible(self, run_id: str) -> None:
        """Flag a succeeded run's scores for history queries (one update, after the flip)."""
        await self.scores.update_many({"run_id": run_id}, {"$set": {"visible": True}})
