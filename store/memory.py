"""An in-memory stand-in for PyMongo's async API, for the embedded mode and the tests.

It implements the part of MongoDB's collection API this code base uses, with the awaitable surface
of ``pymongo.AsyncMongoClient``: ``await coll.find_one()``, ``coll.find()`` returning a cursor with
``sort/skip/limit/to_list`` and ``async for``, ``insert_*``, ``update_*`` with ``upsert``,
``find_one_and_update``, ``delete_*``, ``count_documents``, ``distinct`` and unique indexes; bulk
updates go through :func:`store.update_each` (PyMongo's operation objects are opaque). Queries
support equality (also against arrays), ``$eq $ne $gt $gte $lt $lte $in $nin $exists $and $or``
and dotted paths; updates ``$set $unset $inc $setOnInsert $max $min $push``.

Documents are copied on the way in and out, as a server would. The first field of every index is
also a hash index used to narrow equality and ``$in`` queries. TTL indexes are accepted and not
enforced: the embedded store lives as long as its process. Every operation is counted per
collection in ``MemoryClient.ops``, so tests can assert how many queries a request costs.

Only PyMongo's public API is used (``tests/store/test_store.py`` checks it). Every test that touches the
store runs on this stand-in and on a real MongoDB wire server (the ``store`` fixture in
``tests/conftest.py``); where they disagree, the server is right and this module is fixed.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

__all__ = ["MemoryClient", "MemoryCollection", "MemoryCursor", "MemoryDatabase"]

_MISSING = object()


def _copy(value: Any) -> Any:
    """A document (or query) as it comes back from the server: BSON has no tuples, keeps
    milliseconds, and stores UTC (a naive datetime is taken as UTC; the client is ``tz_aware``)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        elif value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


def _get(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isdigit():
            index = int(part)
            value = value[index] if index < len(value) else _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        doc = doc.setdefault(part, {})
    doc[parts[-1]] = value


def _unset(doc: dict[str, Any], path: str) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        doc = doc.get(part, {})
        if not isinstance(doc, dict):
            return
    doc.pop(parts[-1], None)


# BSON's comparison order: null (and missing) < numbers < strings < objects < arrays < binary <
# ObjectId < booleans < dates
_TYPE_ORDER = {type(None): 0, int: 1, float: 1, str: 2, dict: 3, list: 4, bytes: 5, ObjectId: 6, bool: 7, datetime: 8}


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is _MISSING or value is None:
        return (0, 0)
    rank = _TYPE_ORDER.get(type(value), 9)
    if rank == 3 or rank == 4:
        return (rank, str(value))
    return (rank, value)


def _sort_key_of_field(value: Any, descending: bool) -> tuple[int, Any]:
    """How a sort orders a field: an array by its least element ascending (greatest descending),
    an empty array before null."""
    if isinstance(value, list):
        if not value:
            return (-1, 0)
        keys = [_sort_key(v) for v in value]
        return max(keys) if descending else min(keys)
    return _sort_key(value)


def _comparable(a: Any, b: Any) -> bool:
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
        return True
    return type(a) is type(b)


def _cmp(op: str, value: Any, arg: Any) -> bool:
    if value is _MISSING or value is None or not _comparable(value, arg):
        return False
    if op == "$gt":
        return bool(value > arg)
    if op == "$gte":
        return bool(value >= arg)
    if op == "$lt":
        return bool(value < arg)
    return bool(value <= arg)


def _eq(value: Any, arg: Any) -> bool:
    if value is _MISSING:
        return arg is None
    if isinstance(value, list) and not isinstance(arg, list):
        return any(_eq(v, arg) for v in value)
    return bool(value == arg)


def _match_field(value: Any, cond: Any) -> bool:
    if isinstance(cond, Mapping) and cond and all(str(k).startswith("$") for k in cond):
        for op, arg in cond.items():
            if op == "$eq":
                ok = _eq(value, arg)
            elif op == "$ne":
                ok = not _eq(value, arg)
            elif op in ("$gt", "$gte", "$lt", "$lte"):
                values = value if isinstance(value, list) else [value]
                ok = any(_cmp(op, v, arg) for v in values)
            elif op == "$in":
                ok = any(_eq(value, a) for a in arg)
            elif op == "$nin":
                ok = not any(_eq(value, a) for a in arg)
            elif op == "$exists":
                ok = (value is not _MISSING) == bool(arg)
            elif op == "$not":
                ok = not _match_field(value, arg)
            else:
                raise NotImplementedError(f"query operator {op}")
            if not ok:
                return False
        return True
    return _eq(value, cond)


def matches(doc: Mapping[str, Any], query: Mapping[str, Any] | None) -> bool:
    if not query:
        return True
    for key, cond in query.items():
        if key == "$and":
            if not all(matches(doc, q) for q in cond):
                return False
        elif key == "$or":
            if not any(matches(doc, q) for q in cond):
                return False
        elif key == "$nor":
            if any(matches(doc, q) for q in cond):
                return False
        elif not _match_field(_get(doc, key), cond):
            return False
    return True


def _project(doc: Mapping[str, Any], projection: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    if projection is None:
        copied: dict[str, Any] = _copy(dict(doc))
        return copied
    if not isinstance(projection, Mapping):
        projection = dict.fromkeys(projection, 1)
    include = {k for k, v in projection.items() if v and k != "_id"}
    if include:
        out: dict[str, Any] = {}
        for path in include:
            value = _get(doc, path)
            if value is not _MISSING:
                _set(out, path, _copy(value))
        if projection.get("_id", 1) and "_id" in doc:
            out["_id"] = doc["_id"]
        return out
    out = _copy(dict(doc))
    for path, v in projection.items():
        if not v:
            _unset(out, path)
    return out


def _apply_update(doc: dict[str, Any], update: Mapping[str, Any], *, inserting: bool) -> None:
    if not any(str(k).startswith("$") for k in update):
        keep = doc.get("_id")
        doc.clear()
        doc.update(_copy(dict(update)))
        if keep is not None:
            doc["_id"] = keep
        return
    for op, fields in update.items():
        for path, arg in fields.items():
            current = _get(doc, path)
            if op == "$set":
                _set(doc, path, _copy(arg))
            elif op == "$setOnInsert":
                if inserting:
                    _set(doc, path, _copy(arg))
            elif op == "$unset":
                _unset(doc, path)
            elif op == "$inc":
                _set(doc, path, (0 if current is _MISSING else current) + arg)
            elif op == "$max":
                if current is _MISSING or _sort_key(arg) > _sort_key(current):
                    _set(doc, path, _copy(arg))
            elif op == "$min":
                if current is _MISSING or _sort_key(arg) < _sort_key(current):
                    _set(doc, path, _copy(arg))
            elif op == "$push":
                items = [] if current is _MISSING else list(current)
                if isinstance(arg, Mapping) and "$each" in arg:
                    items.extend(_copy(arg["$each"]))
                else:
                    items.append(_copy(arg))
                _set(doc, path, items)
            else:
                raise NotImplementedError(f"update operator {op}")


@dataclass(slots=True)
class _Result:
    inserted_id: Any = None
    inserted_ids: list[Any] | None = None
    matched_count: int = 0
    modified_count: int = 0
    upserted_id: Any = None
    deleted_count: int = 0
    acknowledged: bool = True


_RANGE_OPS = frozenset({"$gt", "$gte", "$lt", "$lte"})


@dataclass(slots=True)
class _Index:
    name: str
    keys: list[tuple[str, int]]
    unique: bool
    buckets: dict[Any, dict[int, dict[str, Any]]]
    keys_seen: dict[tuple[Any, ...], int]
    options: dict[str, Any]  # e.g. expireAfterSeconds (accepted, reported, not enforced)
    ordered: list[Any] | None = None  # the bucket keys, sorted; rebuilt after a key is added

    def key_of(self, doc: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(_hashable(_get(doc, k)) for k, _ in self.keys)

    def in_range(self, cond: Mapping[str, Any]) -> list[dict[int, dict[str, Any]]] | None:
        """The buckets whose key may satisfy a range condition (``$gt``/``$gte``/``$lt``/``$lte``),
        or ``None`` when the keys cannot be ordered (mixed types): then the caller scans."""
        if self.ordered is None:
            try:
                self.ordered = sorted(self.buckets)
            except TypeError:
                return None
        keys = self.ordered
        try:
            lo = max((bisect.bisect_left(keys, cond[op]) for op in ("$gt", "$gte") if op in cond), default=0)
            hi = min((bisect.bisect_right(keys, cond[op]) for op in ("$lt", "$lte") if op in cond), default=len(keys))
        except TypeError:
            return None
        return [self.buckets[k] for k in keys[lo:hi]]


def _hashable(value: Any) -> Any:
    if value is _MISSING:
        return None
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


class MemoryCursor:
    """The subset of ``pymongo.asynchronous.cursor.AsyncCursor`` the code uses."""

    def __init__(self, load: Callable[[], list[dict[str, Any]]], projection: Any = None) -> None:
        self._load = load
        self._projection = projection
        self._sort: list[tuple[str, int]] = []
        self._skip = 0
        self._limit = 0

    def sort(self, key: str | Sequence[tuple[str, int]], direction: int | None = None) -> MemoryCursor:
        self._sort = [(key, direction or 1)] if isinstance(key, str) else list(key)
        return self

    def skip(self, count: int) -> MemoryCursor:
        self._skip = count
        return self

    def limit(self, count: int) -> MemoryCursor:
        self._limit = count
        return self

    def _results(self) -> list[dict[str, Any]]:
        docs = self._load()
        for key, direction in reversed(self._sort):

            def by(doc: dict[str, Any], path: str = key, descending: bool = direction < 0) -> tuple[int, Any]:
                return _sort_key_of_field(_get(doc, path), descending)

            docs.sort(key=by, reverse=direction < 0)
        docs = docs[self._skip :]
        if self._limit:
            docs = docs[: self._limit]
        return [_project(d, self._projection) for d in docs]

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        docs = self._results()
        return docs if length is None else docs[:length]

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        for doc in self._results():
            yield doc

    async def close(self) -> None:
        return None


class MemoryCollection:
    """One collection: documents in insertion order, unique and hash indexes."""

    def __init__(self, name: str, counter: Counter[str]) -> None:
        self.name = name
        self._counter = counter
        self._docs: dict[int, dict[str, Any]] = {}
        self._seq = itertools.count()
        self._indexes: dict[str, _Index] = {}
        self._ids: dict[Any, int] = {}

    # -- internals --
    def _count(self, op: str) -> None:
        self._counter[self.name] += 1
        self._counter[f"{self.name}.{op}"] += 1

    def _candidates(self, query: Mapping[str, Any] | None) -> Iterable[tuple[int, dict[str, Any]]]:
        if query and "_id" in query and not isinstance(query["_id"], Mapping):
            seq = self._ids.get(_hashable(query["_id"]))
            return [] if seq is None else [(seq, self._docs[seq])]
        if (
            query
            and isinstance(query.get("_id"), Mapping)
            and set(query["_id"]) == {"$in"}
            and not any(isinstance(v, (list, dict)) for v in query["_id"]["$in"])
        ):
            seqs = {self._ids.get(_hashable(v)) for v in query["_id"]["$in"]}
            return sorted((seq, self._docs[seq]) for seq in seqs if seq is not None)
        if query:
            # every index that applies narrows the candidates (``matches`` still checks each
            # document); the one that leaves the fewest is used, as a query planner would choose
            best: dict[int, dict[str, Any]] | None = None
            for index in self._indexes.values():
                field = index.keys[0][0]
                if len(index.keys) != 1 and not index.unique and field not in query:
                    continue
                cond = query.get(field, _MISSING)
                if cond is _MISSING:
                    continue
                found: dict[int, dict[str, Any]] = {}
                if isinstance(cond, Mapping) and cond and set(cond) <= _RANGE_OPS:
                    # a sorted walk over the index's keys
                    buckets = index.in_range(cond)
                    if buckets is None:
                        continue
                    for bucket in buckets:
                        found.update(bucket)
                else:
                    if isinstance(cond, Mapping) and set(cond) == {"$in"}:
                        values = cond["$in"]
                    elif isinstance(cond, Mapping) and any(str(k).startswith("$") for k in cond):
                        continue
                    else:
                        values = [cond]
                    if any(isinstance(v, (list, dict)) for v in values):
                        continue
                    for v in values:
                        found.update(index.buckets.get(v, {}))
                if best is None or len(found) < len(best):
                    best = found
                    if len(best) <= 1:
                        break
            if best is not None:
                return sorted(best.items())
        return list(self._docs.items())

    def _find(self, query: Mapping[str, Any] | None) -> list[tuple[int, dict[str, Any]]]:
        if query:
            query = _copy(dict(query))  # compared as the server compares: UTC datetimes, no tuples
        return [(i, d) for i, d in self._candidates(query) if matches(d, query)]

    def _index_add(self, seq: int, doc: dict[str, Any]) -> None:
        self._ids[_hashable(doc["_id"])] = seq
        for index in self._indexes.values():
            key = _hashable(_get(doc, index.keys[0][0]))
            bucket = index.buckets.get(key)
            if bucket is None:
                bucket = index.buckets[key] = {}
                index.ordered = None
            bucket[seq] = doc
            if index.unique:
                index.keys_seen[index.key_of(doc)] = seq

    def _index_remove(self, seq: int, doc: dict[str, Any]) -> None:
        self._ids.pop(_hashable(doc.get("_id")), None)
        for index in self._indexes.values():
            bucket = index.buckets.get(_hashable(_get(doc, index.keys[0][0])))
            if bucket is not None:
                bucket.pop(seq, None)
            if index.unique and index.keys_seen.get(index.key_of(doc)) == seq:
                del index.keys_seen[index.key_of(doc)]

    def _check_unique(self, doc: dict[str, Any], ignore: int | None = None) -> None:
        for index in self._indexes.values():
            if index.unique:
                seq = index.keys_seen.get(index.key_of(doc))
                if seq is not None and seq != ignore:
                    raise DuplicateKeyError(f"E11000 duplicate key error collection: {self.name} index: {index.name}")

    def _insert(self, document: Mapping[str, Any]) -> Any:
        doc = _copy(dict(document))
        doc.setdefault("_id", ObjectId())
        if _hashable(doc["_id"]) in self._ids:
            raise DuplicateKeyError(f"E11000 duplicate key error collection: {self.name} index: _id_")
        self._check_unique(doc)
        seq = next(self._seq)
        self._docs[seq] = doc
        self._index_add(seq, doc)
        return doc["_id"]

    def _unindexed_set(self, update: Any) -> bool:
        if not isinstance(update, Mapping) or set(update) != {"$set"}:
            return False
        indexed = {"_id"} | {k.split(".")[0] for index in self._indexes.values() for k, _ in index.keys}
        return all(str(path).split(".")[0] not in indexed for path in update["$set"])

    def _update(
        self, query: Mapping[str, Any], update: Any, *, upsert: bool, many: bool, keep: bool = True
    ) -> tuple[_Result, list[dict[str, Any]], list[dict[str, Any]]]:
        """Apply ``update``; ``keep``: also return copies of each document before and after."""
        result = _Result()
        before: list[dict[str, Any]] = []
        after: list[dict[str, Any]] = []
        found = self._find(query)
        if not many:
            found = found[:1]
        result.matched_count = len(found)
        if not keep and found and self._unindexed_set(update):
            # ``$set`` of fields no index reads: change the documents in place
            values = [(path, _copy(arg)) for path, arg in update["$set"].items()]
            for _seq, doc in found:
                if any(_get(doc, path) != value for path, value in values):
                    _apply_update(doc, update, inserting=False)
                    result.modified_count += 1  # the server counts documents that changed
            return result, before, after
        for seq, doc in found:
            if keep:
                before.append(_copy(doc))
            new = _copy(doc)
            _apply_update(new, update, inserting=False)
            if new == doc:
                if keep:
                    after.append(new)
                continue
            self._check_unique(new, ignore=seq)
            self._index_remove(seq, doc)
            doc.clear()
            doc.update(new)
            self._index_add(seq, doc)
            if keep:
                after.append(_copy(doc))
            result.modified_count += 1
        if not found and upsert:
            seed: dict[str, Any] = {}
            for k, v in (query or {}).items():
                if not k.startswith("$") and not (isinstance(v, Mapping) and any(str(x).startswith("$") for x in v)):
                    _set(seed, k, _copy(v))
            _apply_update(seed, update, inserting=True)
            result.upserted_id = self._insert(seed)
            before.append({})
            after.append(_copy(self._find({"_id": result.upserted_id})[0][1]))
        return result, before, after

    # -- the public, awaitable API --
    def find(
        self,
        filter: Mapping[str, Any] | None = None,
        projection: Any = None,
        *,
        sort: Sequence[tuple[str, int]] | None = None,
        limit: int = 0,
        skip: int = 0,
    ) -> MemoryCursor:
        self._count("find")
        query = dict(filter or {})
        cursor = MemoryCursor(lambda: [d for _, d in self._find(query)], projection)
        if sort:
            cursor.sort(sort)
        return cursor.skip(skip).limit(limit)

    async def find_one(
        self,
        filter: Mapping[str, Any] | None = None,
        projection: Any = None,
        *,
        sort: Sequence[tuple[str, int]] | None = None,
    ) -> dict[str, Any] | None:
        self._count("find_one")
        cursor = MemoryCursor(lambda: [d for _, d in self._find(filter)], projection)
        if sort:
            cursor.sort(sort)
        docs = cursor.limit(1)._results()
        return docs[0] if docs else None

    async def count_documents(self, filter: Mapping[str, Any], **_: Any) -> int:
        self._count("count_documents")
        return len(self._find(filter))

    async def estimated_document_count(self) -> int:
        return len(self._docs)

    async def distinct(self, key: str, filter: Mapping[str, Any] | None = None) -> list[Any]:
        self._count("distinct")
        seen: list[Any] = []
        # strings (ids, the common case) are looked up in a set, not by a scan of ``seen`` (a
        # string equals no other type, so the result and its order are the same)
        strings: set[str] = set()
        for _, doc in self._find(filter):
            value = _get(doc, key)
            for v in value if isinstance(value, list) else [value]:
                if v is _MISSING:
                    continue
                if isinstance(v, str):
                    if v in strings:
                        continue
                    strings.add(v)
                elif v in seen:
                    continue
                seen.append(v)
        return seen

    async def insert_one(self, document: dict[str, Any], **_: Any) -> _Result:
        self._count("insert_one")
        inserted = self._insert(document)
        document.setdefault("_id", inserted)
        return _Result(inserted_id=inserted)

    async def insert_many(self, documents: Iterable[dict[str, Any]], *, ordered: bool = True, **_: Any) -> _Result:
        self._count("insert_many")
        ids = []
        errors: list[dict[str, Any]] = []
        for index, document in enumerate(documents):
            try:
                inserted = self._insert(document)
            except DuplicateKeyError as exc:
                # as the server: ordered stops at the first error, unordered inserts the rest
                errors.append({"index": index, "code": 11000, "errmsg": str(exc), "op": document})
                if ordered:
                    break
                continue
            document.setdefault("_id", inserted)
            ids.append(inserted)
        if errors:
            raise BulkWriteError(
                {
                    "writeErrors": errors,
                    "writeConcernErrors": [],
                    "nInserted": len(ids),
                    "nUpserted": 0,
                    "nMatched": 0,
                    "nModified": 0,
                    "nRemoved": 0,
                    "upserted": [],
                }
            )
        return _Result(inserted_ids=ids)

    async def update_one(self, filter: Mapping[str, Any], update: Any, *, upsert: bool = False, **_: Any) -> _Result:
        self._count("update_one")
        return self._update(filter, update, upsert=upsert, many=False, keep=False)[0]

    async def update_many(self, filter: Mapping[str, Any], update: Any, *, upsert: bool = False, **_: Any) -> _Result:
        self._count("update_many")
        return self._update(filter, update, upsert=upsert, many=True, keep=False)[0]

    async def replace_one(
        self, filter: Mapping[str, Any], replacement: Mapping[str, Any], *, upsert: bool = False, **_: Any
    ) -> _Result:
        self._count("replace_one")
        return self._update(filter, replacement, upsert=upsert, many=False)[0]

    async def find_one_and_update(
        self,
        filter: Mapping[str, Any],
        update: Any,
        projection: Any = None,
        *,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        sort: Sequence[tuple[str, int]] | None = None,
        **_: Any,
    ) -> dict[str, Any] | None:
        self._count("find_one_and_update")
        if sort:
            first = await MemoryCursor(lambda: [d for _, d in self._find(filter)]).sort(sort).limit(1).to_list()
            if first:
                filter = {"_id": first[0]["_id"]}
        _result, before, after = self._update(filter, update, upsert=upsert, many=False)
        chosen = after if return_document == ReturnDocument.AFTER else before
        if not chosen or not chosen[0]:
            return None
        return _project(chosen[0], projection)

    async def find_one_and_delete(
        self, filter: Mapping[str, Any], projection: Any = None, **_: Any
    ) -> dict[str, Any] | None:
        self._count("find_one_and_delete")
        found = self._find(filter)[:1]
        for seq, doc in found:
            self._index_remove(seq, doc)
            del self._docs[seq]
            return _project(doc, projection)
        return None

    async def delete_one(self, filter: Mapping[str, Any], **_: Any) -> _Result:
        self._count("delete_one")
        return self._delete(filter, many=False)

    async def delete_many(self, filter: Mapping[str, Any], **_: Any) -> _Result:
        self._count("delete_many")
        return self._delete(filter, many=True)

    def _delete(self, filter: Mapping[str, Any], *, many: bool) -> _Result:
        found = self._find(filter)
        if not many:
            found = found[:1]
        for seq, doc in found:
            self._index_remove(seq, doc)
            del self._docs[seq]
        return _Result(deleted_count=len(found))

    def update_each(self, updates: Sequence[Any], *, ordered: bool = True) -> int:
        """:func:`store.bulk.update_each` on the stand-in: each ``Update`` in order; the matched
        count. A failed update raises ``BulkWriteError`` after the others, as ``bulk_write`` does
        (ordered: none after the first failure)."""
        matched = upserted = modified = 0
        errors: list[dict[str, Any]] = []
        for index, u in enumerate(updates):
            try:
                result = self._update(u.filter, u.update, upsert=u.upsert, many=False, keep=False)[0]
            except DuplicateKeyError as exc:
                errors.append({"index": index, "code": 11000, "errmsg": str(exc)})
                if ordered:
                    break
                continue
            matched += result.matched_count
            modified += result.modified_count
            upserted += result.upserted_id is not None
        if errors:
            raise BulkWriteError(
                {
                    "writeErrors": errors,
                    "writeConcernErrors": [],
                    "nInserted": 0,
                    "nUpserted": upserted,
                    "nMatched": matched,
                    "nModified": modified,
                    "nRemoved": 0,
                    "upserted": [],
                }
            )
        return matched

    async def bulk_write(self, requests: Sequence[Any], **_: Any) -> _Result:
        # PyMongo's operation objects keep their contents in private attributes: not read here
        raise TypeError("the in-memory store does not take PyMongo operation objects; use store.update_each")

    async def create_index(
        self,
        keys: str | Sequence[tuple[str, int]],
        *,
        unique: bool = False,
        name: str | None = None,
        **options: Any,
    ) -> str:
        key_list = [(keys, 1)] if isinstance(keys, str) else [(k, int(d)) for k, d in keys]
        name = name or "_".join(f"{k}_{d}" for k, d in key_list)
        if name not in self._indexes:
            index = _Index(name, key_list, unique, {}, {}, dict(options))
            for seq, doc in self._docs.items():
                if unique and index.key_of(doc) in index.keys_seen:
                    raise DuplicateKeyError(f"E11000 cannot build unique index {name}: duplicates")
                index.buckets.setdefault(_hashable(_get(doc, key_list[0][0])), {})[seq] = doc
                if unique:
                    index.keys_seen[index.key_of(doc)] = seq
            self._indexes[name] = index
        return name

    async def index_information(self) -> dict[str, Any]:
        info: dict[str, Any] = {"_id_": {"v": 2, "key": [("_id", 1)]}}
        for index in self._indexes.values():
            info[index.name] = {"v": 2, "key": list(index.keys), **({"unique": True} if index.unique else {})}
            info[index.name].update(index.options)
        return info

    async def drop(self) -> None:
        self._docs.clear()
        self._ids.clear()
        for index in self._indexes.values():
            index.buckets.clear()
            index.keys_seen.clear()


class MemoryDatabase:
    def __init__(self, name: str, counter: Counter[str]) -> None:
        self.name = name
        self._counter = counter
        self._collections: dict[str, MemoryCollection] = {}

    def __getitem__(self, name: str) -> MemoryCollection:
        coll = self._collections.get(name)
        if coll is None:
            coll = self._collections[name] = MemoryCollection(name, self._counter)
        return coll

    def __getattr__(self, name: str) -> MemoryCollection:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def get_collection(self, name: str) -> MemoryCollection:
        return self[name]

    async def list_collection_names(self) -> list[str]:
        return [n for n, c in self._collections.items() if c._docs]

    async def command(self, name: str) -> dict[str, Any]:
        if name == "ping":
            return {"ok": 1.0}
        raise NotImplementedError(name)


class MemoryClient:
    """Stands in for ``AsyncMongoClient``; ``ops`` counts operations per collection."""

    def __init__(self) -> None:
        self.ops: Counter[str] = Counter()
        self._databases: dict[str, MemoryDatabase] = {}

    def __getitem__(self, name: str) -> MemoryDatabase:
        db = self._databases.get(name)
        if db is None:
            db = self._databases[name] = MemoryDatabase(name, self.ops)
        return db

    def get_database(self, name: str) -> MemoryDatabase:
        return self[name]

    async def close(self) -> None:
        return None
