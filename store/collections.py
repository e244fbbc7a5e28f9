"""Collection names and their indexes (DESIGN §4), created at start-up."""

from __future__ import annotations

from typing import Any

__all__ = ["ensure_indexes"]

DAY = 86_400


async def ensure_indexes(db: Any, *, snapshot_retention_days: int = 30) -> None:
    """Create every index the code relies on. Idempotent; runs at every start."""
    ttl = snapshot_retention_days * DAY
    await db["coins"].create_index([("coin_id", 1)], unique=True)
    # One frame per (venue, sample time), the bucket pattern; the TTL bounds retention.
    await db["market_snapshots"].create_index([("venue", 1), ("at", 1)], unique=True)
    await db["market_snapshots"].create_index([("at", 1)], expireAfterSeconds=ttl)
    await db["onchain_snapshots"].create_index([("at", 1)], unique=True)
    await db["onchain_snapshots"].create_index([("at", -1)], expireAfterSeconds=ttl, name="at_ttl")
    await db["runs"].create_index([("run_id", 1)], unique=True)
    await db["runs"].create_index([("status", 1), ("finished_at", -1)])
    await db["runs"].create_index([("started_at", -1)])  # the latest runs, any status (run status views)
    await db["scores"].create_index([("run_id", 1), ("score", -1)])
    await db["scores"].create_index([("coin_id", 1), ("at", -1)])
    await db["scores"].create_index([("run_id", 1), ("coin_id", 1)], unique=True)
    # the track record: one document per (run, window), written once (scoring.track)
    await db["track_record"].create_index([("run_id", 1), ("window", 1)], unique=True)
    await db["track_record"].create_index([("window", 1), ("at", 1)])
    await db["runs"].create_index([("status", 1), ("at", -1)])  # point-in-time reads (asOf)
    await db["tenants"].create_index([("tenant_id", 1)], unique=True)
    await db["api_keys"].create_index([("key_id", 1)], unique=True)
    await db["api_keys"].create_index([("tenant_id", 1)])
    # audit entries are paged newest first by "seq" (time-ordered, unique), per tenant or overall
    await db["audit_log"].create_index([("tenant_id", 1), ("seq", -1)])
    await db["audit_log"].create_index([("seq", -1)])
    await db["usage"].create_index([("tenant_id", 1), ("month", 1)], unique=True)
    # webhooks (webhooks.repository): endpoints, one delivery per (endpoint, webhook-id), attempts
    # kept 7 days, deliveries 30; the runs' outbox flag is what the dispatcher polls
    await db["webhook_endpoints"].create_index([("endpoint_id", 1)], unique=True)
    await db["webhook_endpoints"].create_index([("tenant_id", 1), ("created_at", 1)])
    await db["webhook_deliveries"].create_index([("delivery_id", 1)], unique=True)
    await db["webhook_deliveries"].create_index([("endpoint_id", 1), ("msg_id", 1)], unique=True)
    await db["webhook_deliveries"].create_index([("status", 1), ("next_at", 1)])
    await db["webhook_deliveries"].create_index([("endpoint_id", 1), ("created_at", -1)])
    await db["webhook_deliveries"].create_index([("created_at", 1)], expireAfterSeconds=30 * DAY, name="created_ttl")
    await db["webhook_attempts"].create_index([("endpoint_id", 1), ("at", -1)])
    await db["webhook_attempts"].create_index([("at", 1)], expireAfterSeconds=7 * DAY, name="at_ttl")
    await db["runs"].create_index([("outbox_pending", 1)])
