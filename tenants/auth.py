"""Bearer-key authentication: shape and checksum first, then a warm cache, then argon2id.

- A malformed key is rejected by :func:`tenants.keys.parse_key` before any store lookup.
- A warm key is found in a cache keyed by keyed BLAKE2b(process pepper, key): argon2 is skipped. The
  cache honours revocation (a revoked key id is dropped at once, see :meth:`Authenticator.forget`)
  and expiry (each entry carries the key's ``expires_at`` and grace end).
- A cold key is verified in a worker thread, at most ``max_concurrent_verifications`` at a time,
  so a burst of cold keys never blocks the event loop.
- What fails is throttled, never what succeeds. Failed attempts are counted per client address and,
  for well-formed keys whose secret did not verify, per key id. An address past ``max_failures`` in
  ``failure_window`` seconds gets 429 for each *failing* attempt, while a valid key from that
  address (a proxy, a NAT, the replacement of a rotated key) still authenticates.
- Forged keys (a real key id is public and the checksum is computable) cannot buy unbounded argon2
  work: a key that failed is remembered (by its digest, in a bounded cache) and fails again without
  argon2; a key id is verified one request at a time (concurrent first requests of one key cost
  one argon2), and past ``max_key_failures`` failures only for clean addresses; verifications for
  addresses with recent failures queue behind clean ones and hold at most one of the verification
  slots, so a real key's first request does not wait behind them.
- ``last_used_at`` is collected in memory and written in batches by :meth:`flush_last_used`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tenants.errors import AuthenticationError, InvalidKey, MissingKey, TooManyFailures
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


class _Failures:
    """Failures per name (an address or a key id) in fixed windows of ``window`` seconds: a name's
    window starts at its first failure and holds a count and the last failure's time. At most
    ``names`` names are kept (the least recently failing are dropped), about 150 bytes each."""

    def __init__(self, limit: int, window: float, names: int = 100_000) -> None:
        self.limit = max(1, limit)
        self.window = window
        self.names = names
        self._state: OrderedDict[str, list[float]] = OrderedDict()  # name -> [started, count, last]

    def __len__(self) -> int:
        return len(self._state)

    def _current(self, name: str, now: float) -> list[float] | None:
        state = self._state.get(name)
        if state is None or now - state[0] >= self.window:
            return None
        return state

    def add(self, name: str, now: float) -> None:
        state = self._current(name, now)
        if state is None:
            self._state[name] = [now, 1.0, now]
            if len(self._state) > self.names:
                self._state.popitem(last=False)
        else:
            state[1] += 1
            state[2] = now
        self._state.move_to_end(name)

    def clean(self, name: str, now: float) -> bool:
        """No failure within the last ``window`` seconds."""
        state = self._state.get(name)
        return state is None or now - state[2] >= self.window

    def retry_after(self, name: str, now: float) -> float | None:
        """Seconds until ``name``'s window ends, when it has ``limit`` failures in it."""
        state = self._current(name, now)
        if state is None or state[1] < self.limit:
            return None
        return self.window - (now - state[0])


class _VerifySlots:
    """At most ``capacity`` argon2 verifications at once. Waiters from clean addresses are served
    before the others ("suspect": an address with recent failures), suspects hold at most
    ``suspect_max`` slots, and at most ``suspect_queue`` of them wait (more are refused)."""

    def __init__(self, capacity: int, suspect_max: int = 1, suspect_queue: int = 64) -> None:
        self.capacity = max(1, capacity)
        self.suspect_max = max(1, min(suspect_max, self.capacity - 1 if self.capacity > 1 else 1))
        self.suspect_queue = suspect_queue
        self.busy = 0
        self.suspect_busy = 0
        self._clean: deque[asyncio.Future[None]] = deque()
        self._suspect: deque[asyncio.Future[None]] = deque()

    def _free(self, suspect: bool) -> bool:
        return self.busy < self.capacity and (not suspect or self.suspect_busy < self.suspect_max)

    def _take(self, suspect: bool) -> None:
        self.busy += 1
        self.suspect_busy += suspect

    async def acquire(self, suspect: bool) -> bool:
        """Wait for a slot; ``False`` (nothing held) when a suspect finds the queue full."""
        queue = self._suspect if suspect else self._clean
        if self._free(suspect) and not self._clean and not (suspect and self._suspect):
            self._take(suspect)
            return True
        if suspect and len(queue) >= self.suspect_queue:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot while being cancelled
                self.release(suspect)
            else:
                queue.remove(waiter)
            raise
        return True

    def release(self, suspect: bool) -> None:
        self.busy -= 1
        self.suspect_busy -= suspect
        for queue, is_suspect in ((self._clean, False), (self._suspect, True)):
            while queue and self._free(is_suspect):
                waiter = queue.popleft()
                if not waiter.done():
                    self._take(is_suspect)
                    waiter.set_result(None)


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
        max_key_failures: int = 10,
        rejected_cache_size: int = 16_384,
    ) -> None:
        self.repo = repo
        self.hasher = hasher
        self._pepper = secrets.token_bytes(32)
        self._mac = hashlib.blake2b(key=self._pepper, digest_size=32)  # copied per key: keyed once
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self._by_key_id: dict[str, set[bytes]] = {}
        self._cache_size = cache_size
        self._cache_ttl = cache_ttl
        self._slots = _VerifySlots(max_concurrent_verifications)
        self._by_address = _Failures(max_failures, failure_window)
        self._key_failures = _Failures(max_key_failures, failure_window)
        self._key_lanes: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # throttled ids: one at a time
        # digests of keys that failed (32 bytes each, at most ``rejected_cache_size``), and when
        # that is forgotten: the same wrong key again costs no lookup and no argon2
        self._rejected: OrderedDict[bytes, float] = OrderedDict()
        self._rejected_size = rejected_cache_size
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
    def _failed(self, client: str, error: AuthenticationError) -> AuthenticationError:
        """Count a failing attempt of ``client``; the error to raise: 429 once the address is past
        its limit (the attempt fails either way), else ``error``."""
        now = time.monotonic()
        retry_after = self._by_address.retry_after(client, now)
        self._by_address.add(client, now)
        return error if retry_after is None else TooManyFailures(retry_after=retry_after)

    def _reject(self, digest: bytes) -> None:
        self._rejected[digest] = time.monotonic() + self._failure_window
        self._rejected.move_to_end(digest)
        while len(self._rejected) > self._rejected_size:
            self._rejected.popitem(last=False)

    def _was_rejected(self, digest: bytes) -> bool:
        until = self._rejected.get(digest)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._rejected[digest]
        return False

    @contextlib.asynccontextmanager
    async def _lane(self, key_id: str) -> AsyncIterator[None]:
        """One cold verification per key id at a time: a burst of first requests of one key costs
        one argon2 (the others then find it warm), and a flood of forged keys for one key id
        holds at most one verification slot."""
        lane = self._key_lanes.get(key_id)
        if lane is None:
            lane = self._key_lanes[key_id] = (asyncio.Lock(), [0])
        lane[1][0] += 1
        try:
            async with lane[0]:
                yield
        finally:
            lane[1][0] -= 1
            if not lane[1][0]:
                self._key_lanes.pop(key_id, None)

    async def _verify(self, stored_hash: str, token: str, *, suspect: bool) -> bool:
        """argon2 in a worker thread, within the verification slots."""
        if not await self._slots.acquire(suspect):
            raise TooManyFailures(retry_after=1.0)
        try:
            return await asyncio.to_thread(self.hasher.verify, stored_hash, token)
        finally:
            self._slots.release(suspect)

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
        if (
            (entry.not_after is None or now < entry.not_after)
            and now - entry.cached_at < self._cache_ttl
            and (self.revalidate_after is None or now - entry.checked_at < self.revalidate_after)
        ):
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
        except AuthenticationError as exc:
            raise self._failed(client, exc) from None
        if self._was_rejected(digest):
            raise self._failed(client, InvalidKey("invalid API key"))
        generation = self._generation
        self.lookups += 1
        doc = await self.repo.get_key(parsed.key_id)
        utcnow = datetime.now(UTC)
        if doc is None or not key_is_usable(doc, utcnow):
            self._reject(digest)
            raise self._failed(client, InvalidKey("invalid API key"))
        async with self._lane(parsed.key_id):
            entry = self._cache.get(digest)
            if entry is not None and (entry.not_after is None or time.time() < entry.not_after):
                self._last_used[entry.principal.key_id] = time.time()
                return entry.principal  # verified by a request that was ahead in the lane
            if self._was_rejected(digest):
                raise self._failed(client, InvalidKey("invalid API key"))
            moment = time.monotonic()
            suspect = not self._by_address.clean(client, moment)
            key_retry = self._key_failures.retry_after(parsed.key_id, moment)
            if key_retry is not None and suspect:  # a forged-key flood on this id: no argon2 for it
                self._by_address.add(client, moment)
                raise TooManyFailures(retry_after=key_retry)
            if not await self._verify(doc["secret_hash"], token, suspect=suspect):
                self._reject(digest)
                self._key_failures.add(parsed.key_id, time.monotonic())
                raise self._failed(client, InvalidKey("invalid API key"))
            tenant = await self.repo.get_tenant(doc["tenant_id"])
            limits = limits_for(tenant)
            principal = Principal(
                tenant_id=doc["tenant_id"],
                key_id=doc["key_id"],
                scopes=frozenset(doc.get("scopes", ())),
                plan=(tenant or {}).get("plan", "free"),
                expires_at=doc.get("expires_at"),
                per_minute=limits.per_minute,
                per_month=limits.per_month,
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
