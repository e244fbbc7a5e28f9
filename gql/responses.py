"""Encoded GraphQL responses: the per-run cache of public answers, and the two-part response that
sends a cached body with its per-caller end."""

from __future__ import annotations

import sys
from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import Receive, Scope, Send

__all__ = ["CachedResponse", "JSONBytes", "ResponseCache", "ResponseKey"]

#: (normalized document, operation name, variables' sorted JSON, "run id|next planned run")
ResponseKey = tuple[str, str | None, bytes, str]


@dataclass(frozen=True, slots=True)
class CachedResponse:
    prefix: bytes  # b'{"data":...' without the closing brace: extensions are per caller
    actual: int


class ResponseCache:
    """Encoded responses of public operations, per scoring run. Holds no tenant data: only
    error-free responses of :data:`PUBLIC_ROOT_FIELDS` operations are stored, and they are served
    only to keys with ``signals:read`` (what those fields require)."""

    def __init__(self, maxsize: int = 1024, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self._entries: OrderedDict[ResponseKey, CachedResponse] = OrderedDict()
        self._run: str | None = None
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def _roll(self, run_id: str) -> None:
        if run_id != self._run:  # a new run: every entry is stale
            self._entries.clear()
            self._bytes = 0
            self._run = run_id

    def get(self, key: ResponseKey) -> CachedResponse | None:
        self._roll(key[3])
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    @staticmethod
    def _size(key: ResponseKey, entry: CachedResponse) -> int:
        # the key holds the client's normalized document and variables: count them too
        return len(entry.prefix) + len(key[0]) + len(key[2]) + sys.getsizeof(key[1] or "") + 256

    def put(self, key: ResponseKey, entry: CachedResponse) -> None:
        self._roll(key[3])
        size = self._size(key, entry)
        if size > self.max_bytes // 8:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= self._size(key, old)
        self._entries[key] = entry
        self._bytes += size
        while len(self._entries) > self.maxsize or self._bytes > self.max_bytes:
            old_key, evicted = self._entries.popitem(last=False)
            self._bytes -= self._size(old_key, evicted)

    @property
    def bytes(self) -> int:
        return self._bytes


class JSONBytes:
    """An already encoded JSON response sent as two ASGI messages (the hot path skips Starlette's
    ``Response`` header machinery, which costs more than the cache lookup)."""

    __slots__ = ("body", "headers", "status", "tail")

    def __init__(self, body: bytes, status: int, headers: dict[str, str], tail: bytes = b"") -> None:
        self.body, self.status, self.headers, self.tail = body, status, headers, tail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = len(self.body) + len(self.tail)
        raw = [(b"content-type", b"application/json"), (b"content-length", str(length).encode())]
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        if self.tail:
            await send({"type": "http.response.body", "body": self.body, "more_body": True})
            await send({"type": "http.response.body", "body": self.tail})
        else:
            await send({"type": "http.response.body", "body": self.body})
