"""HTTP caching of the data responses, and the IETF draft rate-limit fields.

**Validators.** A data response (REST, or a GraphQL GET of public fields) depends only on the
scoring run and the request's parameters, so its ``ETag`` is made of exactly those:
``W/"<run id>-<limit>-<min_score>"`` for REST, ``W/"<run id>-<digest of document, operation and
variables>"`` for GraphQL. The tags are weak because ``meta`` (request id, time) differs between two
responses with the same data. ``Cache-Control: private, max-age=N`` lets a client keep the response
until the next run is due (``N`` seconds); ``private`` because the response answers a key.

**Conditional requests.** ``If-None-Match`` with the current tag is answered ``304 Not Modified``
after the key is authenticated and its scope checked (a 304 still needs a valid key with
``signals:read``), and before anything is charged: a 304 counts neither toward the monthly quota
nor toward the per-minute limits.

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

    def cache_control(self, run: dict[str, Any]) -> bytes:
        """``private, max-age=<seconds until the next run is due>`` (0 once it is overdue)."""
        if run["run_id"] != self._run_id:
            self._roll(run)
        now = self._clock()
        second = int(now)
        if second != self._second:
            self._second = second
            self._cache_control = b"private, max-age=%d" % max(0, int(self._next_run - now))
        return self._cache_control


def matches(if_none_match: bytes | str | None, etag: bytes) -> bool:
    """``If-None-Match`` against our tag, by weak comparison (RFC 9110 §13.1.2); ``*`` matches."""
    if not if_none_match:
        return False
    raw = if_none_match.encode("latin-1") if isinstance(if_none_match, str) else if_none_match
    opaque = etag[2:] if etag.startswith(b"W/") else etag
    for candidate in raw.split(b","):
        candidate = candidate.strip()
        if candidate == b"*":
            return True
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
    """The draft's ``RateLimit-Policy`` and ``RateLimit`` values for a principal (cached per set of
    limits; the ``month`` window is the current calendar month's length, rechecked every minute)."""

    def __init__(self) -> None:
        self._policies: dict[tuple[int, int, int], bytes] = {}
        self._month = ""
        self._month_seconds = 0
        self._recheck = 0.0

    def policy(self, principal: Principal) -> bytes:
        now = time.time()
        if now >= self._recheck:
            self._recheck = now + 60.0
            month = time.strftime("%Y-%m", time.gmtime(now))
            if month != self._month:
                self._policies.clear()
                self._month = month
                self._month_seconds = _month_seconds(datetime.now(UTC))
        key = (principal.key_per_minute, principal.per_minute, principal.per_month)
        value = self._policies.get(key)
        if value is None:
            if principal.key_per_minute == principal.per_minute:
                minute = b'"minute";q=%d;w=60' % principal.per_minute
            else:
                minute = b'"key";q=%d;w=60, "tenant";q=%d;w=60' % (principal.key_per_minute, principal.per_minute)
            value = minute + b', "month";q=%d;w=%d' % (principal.per_month, self._month_seconds)
            if len(self._policies) < 4096:
                self._policies[key] = value
        return value

    @staticmethod
    def current(principal: Principal, limits: Encoded) -> bytes:
        limit, remaining, reset = limits
        if limit == b"%d" % principal.per_month and principal.per_month not in (
            principal.per_minute,
            principal.key_per_minute,
        ):
            name = b"month"
        elif principal.key_per_minute == principal.per_minute:
            name = b"minute"
        elif limit == b"%d" % principal.key_per_minute:
            name = b"key"
        else:
            name = b"tenant"
        return b'"%s";r=%s;t=%s' % (name, remaining, reset)

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
