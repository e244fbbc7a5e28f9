"""Opening and closing the document store, in the composition root's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from store.collections import ensure_indexes
from store.errors import StoreUnavailable
from store.memory import MemoryClient

__all__ = ["StoreHandle", "open_store"]


@dataclass(slots=True)
class StoreHandle:
    """An open store: ``db`` is an ``AsyncDatabase`` or its in-memory stand-in."""

    kind: Literal["mongodb", "memory"]
    client: Any
    db: Any

    @property
    def persistent(self) -> bool:
        return self.kind == "mongodb"

    async def ping(self) -> bool:
        try:
            await self.db.command("ping")
        except Exception:
            return False
        return True

    async def aclose(self) -> None:
        await self.client.close()

    def describe(self) -> str:
        if self.kind == "memory":
            return "store: in-memory stand-in (data is lost on exit; set MONGODB_URI for MongoDB)"
        return f"store: MongoDB database {self.db.name!r}"


async def open_store(
    mongodb_uri: str | None,
    database: str,
    *,
    snapshot_retention_days: int = 30,
    server_selection_timeout_ms: int = 5000,
) -> StoreHandle:
    """Connect (or build the stand-in), check it answers, and create the indexes."""
    handle: StoreHandle
    if mongodb_uri is None:
        client = MemoryClient()
        handle = StoreHandle("memory", client, client[database])
    else:
        from pymongo import AsyncMongoClient

        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            mongodb_uri,
            tz_aware=True,
            serverSelectionTimeoutMS=server_selection_timeout_ms,
            appname="insider-selling",
        )
        handle = StoreHandle("mongodb", mongo, mongo[database])
        try:
            await handle.db.command("ping")
        except Exception as exc:
            await mongo.close()
            raise StoreUnavailable(f"MongoDB at MONGODB_URI is unreachable: {exc}") from exc
    await ensure_indexes(handle.db, snapshot_retention_days=snapshot_retention_days)
    return handle
