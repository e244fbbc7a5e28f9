"""Bearer-key authentication: shape and checksum first, then a warm cache, then argon2id.

- A malformed key is rejected by :func:`tenants.keys.parse_key` before any store lookup.
- A warm key is found in a cache keyed by keyed BLAKE2b(process pepper, key): argon2 is skipped. The
  cache honours revocation (a revoked key id is dropped at once, see :meth:`Authenticator.forget`)
  and expiry (each entry carries the key's ``expires_at`` and grace end).
- A cold key is verified in a worker thread, at most ``max_concurrent_verifications`` at a time,
  so a burst of cold keys never blocks the event loop.
- Failed attempts are counted per client address; past ``max_failures`` in ``failure_window``
  seconds that address gets 429 before any argon2 work.
- ``last_used_at`` is collected in memory and written in batches by :meth:`flush_last_used`.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tenants.errors import InvalidKey, MissingKey, TooManyFailures
from tenants.hashing import KeyHasher
from tenants.keys import KEY_PREFIX, parse_key
from tenants.plans import limits_for
from tenants.principal import Principal
from tenants.repository import TenantRepository

__all__ = ["Authenticator", "key_is_usable"]


_BEARER_KEY = b"Bearer " + KEY_PREFIX.encode()


def key_is_usable(doc: dict[str, Any], now: datetime) -> bool:
    """A key works unless revoked, past its expiry, or rotated and past its grace end."""
    if doc.get("revoked_at") is not None:
        return False
    for field in ("expires_at", "grace_until"):
        limit = doc.get(field)
        if limit is not None and _aware(limit) <= now:
            return False
    return True


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@dataclass(slots=True)
class _Entry:
    principal: Principal
    not_after: float | None  # epoch seconds when the key stops working (expiry or grace end)
    cached_at: float
    checked_at: float = 0.0  # last confirmation against the store (see ``revalidate_after``)


class Authenticator:
    def __init__(
        self,
        repo: TenantRepository,
        hasher: KeyHasher,
        *,
        cache_size: int = 10_000,
        cache_ttl: float = 300.0,
        max_concurrent_verifications: int = 2,
        max_failures: int = 20,
        failure_window: float = 60.0,
    ) -> None:
        self.repo = repo
        self.hasher = hasher
        self._pepper = secrets.token_bytes(32)
        self._mac = hashlib.blake2b(key=self._pepper, digest_size=32)  # copied per key: keyed once
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self._by_key_id: dict[str, set[bytes]] = {}
        self._cache_size = cache_size
        self._cache_ttl = cache_ttl
        self._verify_slots = asyncio.Semaphore(max_concurrent_verifications)
        self._failures: dict[str, list[float]] = {}
        self._max_failures = max_failures
        self._failure_window = failure_window
        self._last_used: dict[str, float] = {}  # key id -> epoch seconds, converted at flush
        self.lookups = 0  # store lookups, for tests and metrics
        # Bumped by every forget: a verification that started before a revocation is not cached.
        self._generation = 0
        #: When set, a warm entry older than this many seconds is confirmed against the store (one
        #: read, no argon2) before use. The key-change listener sets it while it cannot hear Redis,
        #: so that a revocation still reaches this worker within about that long.
        self.revalidate_after: float | None = None

    # -- cache --
    def _digest(self, key: str) -> bytes:
        return self._digest_bytes(key.encode())

    def _digest_bytes(self, key: bytes) -> bytes:
        # keyed BLAKE2b is a MAC (RFC 7693 §2.9) and ~3x cheaper than HMAC-SHA256 here; copying the
        # keyed state skips compressing the key block again
        mac = self._mac.copy()
        mac.update(key)
        return mac.digest()

    def forget(self, key_id: str) -> None:
        """Drop every cached entry of ``key_id`` (revocation, rotation, scope change)."""
        self._generation += 1
        for digest in self._by_key_id.pop(key_id, set()):
            self._cache.pop(digest, None)

    def forget_all(self) -> None:
        self._generation += 1
        self._cache.clear()
        self._by_key_id.clear()

    def _remember(self, digest: bytes, entry: _Entry) -> None:
        self._cache[digest] = entry
        self._by_key_id.setdefault(entry.principal.key_id, set()).add(digest)
        while len(self._cache) > self._cache_size:
            old, evicted = self._cache.popitem(last=False)
            self._by_key_id.get(evicted.principal.key_id, set()).discard(old)

    # -- failures --
    def _check_failures(self, client: str) -> None:
        now = time.monotonic()
        recent = [t for t in self._failures.get(client, []) if now - t < self._failure_window]
        self._failures[client] = recent
        if len(recent) >= self._max_failures:
            raise TooManyFailures(retry_after=self._failure_window - (now - recent[0]))

    def _fail(self, client: str) -> None:
        self._failures.setdefault(client, []).append(time.monotonic())
        if len(self._failures) > 100_000:  # bound memory under a flood of addresses
            self._failures.clear()

    # -- the entry points --
    def authenticate_warm(self, authorization: bytes) -> Principal | None:
        """The hot path, without I/O: the principal of ``Authorization: Bearer <key>`` (the raw
        header value) when the key is in the warm cache and needs no store read, else ``None`` (then
        :meth:`authenticate` decides). Accepts exactly what :meth:`authenticate` accepts from its
        cache; any other spelling of the header goes the long way."""
        if not authorization.startswith(_BEARER_KEY):
            return None
        entry = self._cache.get(self._digest_bytes(authorization[7:]))
        if entry is None:
            return None
        now = time.time()
        if ((entry.not_after is None or now < entry.not_after) and now - entry.cached_at < self._cache_ttl
                and (self.revalidate_after is None or now - entry.checked_at < self.revalidate_after)):
            self._last_used[entry.principal.key_id] = now
            return entry.principal
        return None

    async def authenticate(self, authorization: str | None, client: str = "unknown") -> Principal:
        if not authorization:
            raise MissingKey("missing Authorization header; send 'Authorization: Bearer sk_live_...'")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(KEY_PREFIX):
            raise MissingKey("Authorization must be 'Bearer sk_live_...'")
        digest = self._digest(token)
        entry = self._cache.get(digest)
        now = time.time()
        if entry is not None:
            if (entry.not_after is None or now < entry.not_after) and now - entry.cached_at < self._cache_ttl:
                if self.revalidate_after is None or now - entry.checked_at < self.revalidate_after:
                    self._last_used[entry.principal.key_id] = now
                    return entry.principal
                if await self._still_usable(entry, now):
                    return entry.principal
            self._cache.pop(digest, None)
        try:
            parsed = parse_key(token)
        except Exception:
            self._check_failures(client)
            self._fail(client)
            raise
        self._check_failures(client)
        generation = self._generation
        self.lookups += 1
        doc = await self.repo.get_key(parsed.key_id)
        utcnow = datetime.now(UTC)
        if doc is None or not key_is_usable(doc, utcnow):
            self._fail(client)
            raise InvalidKey("invalid API key")
        async with self._verify_slots:
            ok = await asyncio.to_thread(self.hasher.verify, doc["secret_hash"], token)
        if not ok:
            self._fail(client)
            raise InvalidKey("invalid API key")
        tenant = await self.repo.get_tenant(doc["tenant_id"])
        limits = limits_for(tenant)
        principal = Principal(
            tenant_id=doc["tenant_id"], key_id=doc["key_id"], scopes=frozenset(doc.get("scopes", ())),
            plan=(tenant or {}).get("plan", "free"), expires_at=doc.get("expires_at"),
            per_minute=limits.per_minute, per_month=limits.per_month,
            key_per_minute=min(limits.per_minute, doc.get("rate_limit_per_minute") or limits.per_minute),
        )
        ends = [_aware(doc[f]).timestamp() for f in ("expires_at", "grace_until") if doc.get(f)]
        if generation == self._generation:
            self._remember(digest, _Entry(principal, min(ends) if ends else None, now, now))
        self._last_used[principal.key_id] = utcnow.timestamp()
        return principal

    async def _still_usable(self, entry: _Entry, now: float) -> bool:
        self.lookups += 1
        doc = await self.repo.get_key(entry.principal.key_id)
        if doc is None or not key_is_usable(doc, datetime.now(UTC)):
            self.forget(entry.principal.key_id)
            return False
        entry.checked_at = now
        self._last_used[entry.principal.key_id] = now
        return True

    def pending_last_used(self, key_id: str) -> datetime | None:
        """A use not yet written to the store (listings merge it with the stored value)."""
        at = self._last_used.get(key_id)
        return None if at is None else datetime.fromtimestamp(at, UTC)

    async def flush_last_used(self) -> int:
        """Write the collected ``last_used_at`` values in one batch; returns how many."""
        pending, self._last_used = self._last_used, {}
        await self.repo.touch_keys([(k, datetime.fromtimestamp(at, UTC)) for k, at in pending.items()])
        return len(pending)
