"""Rate limits: GCRA per key and per tenant, and a monthly quota per tenant.

**Semantics.** Each bucket allows ``limit`` requests at once (the burst) and then one every
``60 / limit`` seconds: a token bucket of capacity ``limit`` refilled at ``limit`` per minute, kept
as GCRA's single "theoretical arrival time" (TAT). A request needs a token from the key's bucket,
from the tenant's bucket and from the tenant's monthly quota (calendar month, UTC); all three are
checked and charged together, atomically, in one Lua script
(:data:`~tenants.ratelimit.script.ACQUIRE`), with Redis's own clock so that workers' clocks do not
matter. Without Redis, :class:`LocalBackend` applies the same
arithmetic inside one process.

**The hot path.** A Redis round trip per request would cost about half the throughput, so a worker
*leases* tokens: one script call charges ``n`` tokens and the worker spends them locally.

- ``n`` starts at 1 for a key and doubles (up to ``lease_max``, default 128) each time a lease is
  used up within its lifetime; an idle key therefore never holds more than one token.
- ``n`` is never more than an eighth of what is left in the tightest of the three buckets (and at
  least 1), so near a limit every request goes to Redis and the limit is exact there.
- While a key's batch was granted in full, the next one is fetched in the background as soon as
  the current one is being spent (double buffering), so requests do not wait for Redis: on a
  saturated machine a Redis answer takes long to come back through a busy event loop.
- A lease lives ``lease_ttl`` seconds (default 1); unused tokens are then given back (TAT moved
  back, quota decremented) by the next call for that key or by :meth:`RateLimiter.sweep`, and all
  of them at shutdown.

**Accuracy bound.** Tokens are charged in Redis before they are spent, so the cluster never admits
more than the limit allows over a window, plus the tokens workers held when the window began: at
most ``2 × lease_max`` per worker and key, each batch at most 1/8 of what the bucket had left, and
none once a bucket is within ``16`` tokens of empty (there leases are single tokens, charged per
request). The opposite error, a request
refused while another worker still holds unused tokens, is bounded by those same leases (each
at most 1/8 of what was left when it was taken) and lasts at most ``lease_ttl``. Headers are
computed locally from the last Redis answer: ``RateLimit-Remaining`` may lag other workers' use by
up to their leases.

**Redis unreachable.** ``failure_mode="open"`` (the default) falls back to the in-process limiter,
so each worker enforces the limits on its own traffic (a cluster of N workers admits at most N times
the limit) until Redis answers again; the fallback continues from the state Redis last reported
for each key and tenant (and a month it never saw starts from the stored usage), so an outage does
not hand each worker a fresh burst. ``"closed"`` refuses requests with 503 and ``Retry-After``.
Redis is retried at most once per ``retry_interval`` seconds, so an outage costs one timeout, not
one per request; a pooled connection that died with a restarted server is replaced within the call
(one retry on a connection error), so the first call after Redis is back succeeds.

**Durable quotas.** The monthly counter lives in Redis, but the ``usage`` collection is the record:
when Redis has no counter for a tenant's month (restarted without persistence, flushed), the
script answers "seed" and the limiter calls it again with the stored usage plus this worker's
unwritten count, so a restart does not reset anyone's quota.
"""

from tenants.ratelimit.backends import LocalBackend, RedisBackend
from tenants.ratelimit.grants import Grant, Request, month_window
from tenants.ratelimit.headers import Encoded
from tenants.ratelimit.limiter import RateLimiter
from tenants.ratelimit.script import ACQUIRE

__all__ = ["ACQUIRE", "Encoded", "Grant", "LocalBackend", "RateLimiter", "RedisBackend", "Request", "month_window"]
