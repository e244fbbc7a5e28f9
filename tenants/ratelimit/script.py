"""The Lua script that checks and charges the three buckets at once, with Redis's own clock, and
how it is loaded and called: redis-py's script helper, or an ``EVALSHA`` packed here for a lane
(see :class:`tenants.ratelimit.backends.RedisBackend`)."""

from __future__ import annotations

from typing import Any

__all__ = ["ACQUIRE", "evalsha_command", "load_script"]

# KEYS: key bucket, tenant bucket, month counter.
# ARGV: key interval µs, key limit, tenant interval µs, tenant limit, quota, seconds to month end,
#       tokens wanted, divisor, tokens to give back (a previous lease's unused ones), tokens needed
#       (the request's cost: fewer is a refusal), the month's usage to start from when Redis has no
#       counter (after a restart or a flush; -1: unknown, then the answer is "seed" and nothing changes).
# Returns "granted key_remaining key_reset_µs tenant_remaining tenant_reset_µs quota_remaining
#          retry_after_µs": one bulk string is much cheaper to read than an array of seven.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local kT, kL = tonumber(ARGV[1]), tonumber(ARGV[2])
local tT, tL = tonumber(ARGV[3]), tonumber(ARGV[4])
local quota, month_left = tonumber(ARGV[5]), tonumber(ARGV[6])
local want, div, back = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local need = tonumber(ARGV[10])
local seed = tonumber(ARGV[11])
local function tat_of(key)
  local v = tonumber(redis.call('GET', key) or '0')
  if v < now then return now end
  return v
end
local ktat, ttat = tat_of(KEYS[1]), tat_of(KEYS[2])
local stored = redis.call('GET', KEYS[3])
if not stored and seed < 0 then return 'seed' end
local used = tonumber(stored or seed)
if back > 0 then
  ktat = math.max(now, ktat - back * kT)
  ttat = math.max(now, ttat - back * tT)
  used = math.max(0, used - back)
end
local ka = math.floor((kT * kL - (ktat - now)) / kT)
local ta = math.floor((tT * tL - (ttat - now)) / tT)
local qa = quota - used
local avail = math.min(ka, ta, qa)
local n = 0
local retry = 0
if avail < need or avail < 1 then
  if ka < need then retry = math.max(retry, ktat + need * kT - kT * kL - now) end
  if ta < need then retry = math.max(retry, ttat + need * tT - tT * tL - now) end
  if qa < need then retry = math.max(retry, month_left * 1000000) end
elseif want > 0 then
  n = math.min(want, math.max(need, math.floor(avail / div)))
  ktat = ktat + n * kT
  ttat = ttat + n * tT
  used = used + n
end
if n > 0 or back > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', ktat), 'PX', math.floor((ktat - now) / 1000) + 1000)
  redis.call('SET', KEYS[2], string.format('%.0f', ttat), 'PX', math.floor((ttat - now) / 1000) + 1000)
end
if n > 0 or back > 0 or not stored then
  redis.call('SET', KEYS[3], used, 'EX', month_left + 86400)
end
return string.format('%.0f %.0f %.0f %.0f %.0f %.0f %.0f', n, ka - n, ktat - now, ta - n, ttat - now, qa - n,
                     retry)
"""


def load_script(redis: Any) -> Any:
    """:data:`ACQUIRE` registered with ``redis`` (redis-py's ``Script``: called with ``keys`` and
    ``args``, it runs ``EVALSHA`` and loads the script when Redis answers ``NOSCRIPT``)."""
    return redis.register_script(ACQUIRE)


def evalsha_command(sha: str, keys: tuple[str, ...], args: tuple[int, ...]) -> bytes:
    """``EVALSHA sha len(keys) keys... args...`` in RESP: what redis-py's ``pack_command`` would send."""
    parts = [key.encode() for key in keys]
    parts.extend(b"%d" % arg for arg in args)
    return b"*%d\r\n$7\r\nEVALSHA\r\n$%d\r\n%s\r\n$%d\r\n%d\r\n%s" % (
        len(parts) + 3,
        len(sha),
        sha.encode(),
        len(str(len(keys))),
        len(keys),
        b"".join([b"$%d\r\n%s\r\n" % (len(part), part) for part in parts]),
    )
