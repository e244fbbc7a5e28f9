"""HTTP caching of the data responses, and the IETF draft rate-limit fields.

**Validators.** A data response (REST, or a GraphQL GET of public fields) depends only on the
scoring run and the request's parameters, so its ``ETag`` is made of exactly those:
``W/"<run id>-<limit>-<min_score>"`` for REST, ``W/"<run id>-<digest of document, operation and
variables>"`` for GraphQL. The tags are weak because ``meta`` (request id, time) differs between two
responses with the same data. ``Cache-Control: private, max-age=N`` lets a client keep the response
until the next run is due (``N`` seconds); ``private`` because the response answers a key.

**Conditional requests.** A revalidation is a request: ``If-None-Match`` with the current tag is
answered ``304 Not Modified`` only after the key is authenticated, its scope checked and the request
charged like any other (the per-minute limits and the monthly quota), so a key that is refused gets
the refusal (401, 403, 429), never a 304 nor the current run's tag. ``*`` is not a revalidation of a
response the client received: it is treated as a miss (RFC 9110 §13.1.2 allows it for GET).

**Rate-limit fields** (draft-ietf-httpapi-ratelimit-headers-10, next to the legacy
``RateLimit-Limit``/``-Remaining``/``-Reset``): ``RateLimit-Policy`` lists the caller's quota
policies (``"minute"``, or ``"key"`` and ``"tenant"`` when a key has its own lower limit, and
``"month"``) with ``q`` (quota) and ``w`` (window, seconds); ``RateLimit`` names the policy that is
currently tightest with ``r`` (remaining) and ``t`` (seconds until it is fully refilled).
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from tenants.principal import Principal
from tenants.ratelimit import Encoded

__all__ = ["RateLimitFields", "RunValidators", "matches"]


def _timestamp(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


class RunValidators:
    """``ETag`` and ``Cache-Control`` values for the current run, computed once per run, per
    parameter set and per second (the REST hot path asks on every request)."""

    def __init__(self, interval_seconds: int, clock: Any = time.time) -> None:
        self.interval_seconds = interval_seconds
        self._clock = clock
        self._run_id: str | None = None
        self._next_run = 0.0
        self._etags: dict[tuple[int, float], bytes] = {}
        self._second = -1
        self._cache_control = b""

    def _roll(self, run: dict[str, Any]) -> None:
        self._run_id = run["run_id"]
        # Runs are scheduled on the interval grid (UTC epoch multiples); the next one after this
        # run's time is when its data may change. Overdue: max-age 0.
        at = _timestamp(run["at"])
        self._next_run = at - at % self.interval_seconds + self.interval_seconds
        self._etags.clear()
        self._second = -1

    def rest_etag(self, run: dict[str, Any], limit: int, min_score: float) -> bytes:
        if run["run_id"] != self._run_id:
            self._roll(run)
        tag = self._etags.get((limit, min_score))
        if tag is None:
            tag = b'W/"%s-%d-%s"' % (run["run_id"].encode(), limit, repr(min_score).encode())
            if len(self._etags) < 4096:
                self._etags[(limit, min_score)] = tag
        return tag

    def graphql_etag(self, run: dict[str, Any], key: bytes) -> bytes:
        digest = hashlib.blake2b(key, digest_size=12).hexdigest()
        return b'W/"%s-%s"' % (run["run_id"].encode(), digest.encode())

    def cache_control(self, run: dict[str, Any], now: float | None = None) -> bytes:
        """``private, max-age=<seconds until the next run is due>`` (0 once it is overdue); ``now``
        saves a clock read when the caller has one."""
        if run["run_id"] != self._run_id:
            self._roll(run)
        now = self._clock() if now is None else now
        second = int(now)
        if second != self._second:
            self._second = second
            self._cache_control = b"private, max-age=%d" % max(0, int(self._next_run - now))
        return self._cache_control


def matches(if_none_match: bytes | str | None, etag: bytes) -> bool:
    """``If-None-Match`` against our tag, by weak comparison (RFC 9110 §13.1.2). ``*`` never matches:
    it revalidates no response in particular, so it gets the full answer."""
    if not if_none_match:
        return False
    raw = if_none_match.encode("latin-1") if isinstance(if_none_match, str) else if_none_match
    opaque = etag[2:] if etag.startswith(b"W/") else etag
    for candidate in raw.split(b","):
        candidate = candidate.strip()
        if candidate.startswith(b"W/"):
            candidate = candidate[2:]
        if candidate == opaque:
            return True
    return False


def _month_seconds(now: datetime) -> int:
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    following = (
        datetime(now.year + 1, 1, 1, tzinfo=UTC)
        if now.month == 12
        else datetime(now.year, now.month + 1, 1, tzinfo=UTC)
    )
    return int((following - start).total_seconds())


class RateLimitFields:
    """The draft's ``RateLimit-Policy`` and ``RateLimit`` values for a principal, computed once per
    set of limits (the ``month`` window is the current calendar month's length, rechecked every
    minute). The REST hot path passes the current second and usually asks for the same principal
    object as last time (the authenticator's warm cache), which is an identity check."""

    def __init__(self) -> None:
        # (key per minute, tenant per minute, per month) -> (policy, {RateLimit-Limit value: prefix})
        self._entries: dict[tuple[int, int, int], tuple[bytes, dict[bytes, bytes]]] = {}
        self._month = ""
        self._month_seconds = 0
        self._recheck = 0.0
        self._last: tuple[Principal | None, tuple[bytes, dict[bytes, bytes]]] = (None, (b"", {}))

    def _entry(self, principal: Principal, now: float | None = None) -> tuple[bytes, dict[bytes, bytes]]:
        now = time.time() if now is None else now
        last, entry = self._last
        if last is principal and now < self._recheck:
            return entry
        if now >= self._recheck:
            self._recheck = now + 60.0
            this_month = time.strftime("%Y-%m", time.gmtime(now))
            if this_month != self._month:
                self._entries.clear()
                self._month = this_month
                self._month_seconds = _month_seconds(datetime.now(UTC))
        limits = (principal.key_per_minute, principal.per_minute, principal.per_month)
        found = self._entries.get(limits)
        if found is None:
            key, tenant, month = limits
            if key == tenant:
                policy = b'"minute";q=%d;w=60' % tenant
                names = {b"%d" % tenant: b'"minute";r='}
            else:
                policy = b'"key";q=%d;w=60, "tenant";q=%d;w=60' % (key, tenant)
                names = {b"%d" % tenant: b'"tenant";r=', b"%d" % key: b'"key";r='}
            names.setdefault(b"%d" % month, b'"month";r=')  # a per-minute limit wins a tie
            found = (policy + b', "month";q=%d;w=%d' % (month, self._month_seconds), names)
            if len(self._entries) < 4096:
                self._entries[limits] = found
        self._last = (principal, found)
        return found

    def policy(self, principal: Principal) -> bytes:
        return self._entry(principal)[0]

    def current(self, principal: Principal, limits: Encoded) -> bytes:
        """``RateLimit`` for the legacy values ``limits``: the policy whose quota is the limit
        reported as the tightest, with its remaining requests and reset seconds."""
        return self.both(principal, limits)[1]

    def both(self, principal: Principal, limits: Encoded, now: float | None = None) -> tuple[bytes, bytes]:
        """``(RateLimit-Policy, RateLimit)`` at the cost of one lookup (the REST hot path)."""
        policy, names = self._entry(principal, now)
        return policy, b"".join((names.get(limits[0]) or b'"minute";r=', limits[1], b";t=", limits[2]))

    def headers(self, principal: Principal, legacy: dict[str, str]) -> dict[str, str]:
        """The draft fields for a request answered with the ``legacy`` RateLimit-* headers."""
        try:
            limits = (
                legacy["RateLimit-Limit"].encode(),
                legacy["RateLimit-Remaining"].encode(),
                legacy["RateLimit-Reset"].encode(),
            )
        except KeyError:
            return {}
        return {
            "RateLimit-Policy": self.policy(principal).decode(),
            "RateLimit": self.current(principal, limits).decode(),
        }
