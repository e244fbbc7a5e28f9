"""Bulk updates written once for both backends.

PyMongo's bulk operation objects (``UpdateOne`` ...) keep their filter and update in private
attributes, so the in-memory stand-in cannot read them without depending on PyMongo's internals.
The store code therefore describes a bulk update with :class:`Update`, and :func:`update_each`
sends it as one ``bulk_write`` to MongoDB, or applies it to the stand-in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import UpdateOne

from store.memory import MemoryCollection

__all__ = ["Update", "update_each"]


@dataclass(frozen=True, slots=True)
class Update:
    """One update of a bulk write, as ``pymongo.UpdateOne(filter, update, upsert=...)`` takes it."""

    filter: Mapping[str, Any]
    update: Mapping[str, Any]
    upsert: bool = False


async def update_each(collection: Any, updates: Sequence[Update], *, ordered: bool = True) -> int:
    """Apply every update (one round trip on MongoDB); returns how many documents matched."""
    if not updates:
        return 0
    if isinstance(collection, MemoryCollection):
        return collection.update_each(updates, ordered=ordered)
    result = await collection.bulk_write(
        [UpdateOne(dict(u.filter), dict(u.update), upsert=u.upsert) for u in updates], ordered=ordered
    )
    return int(result.matched_count)
