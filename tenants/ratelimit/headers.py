"""The ``RateLimit-*`` response headers: as a dict (:func:`headers`), or their values encoded for
the wire (:data:`Encoded`) by the hot path, which reuses the bytes of small numbers."""

from __future__ import annotations

import math

__all__ = ["SMALL", "Encoded", "available", "decoded", "headers", "seconds"]


def headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(0, remaining)),
        "RateLimit-Reset": str(max(0, math.ceil(reset))),
    }


#: ``(RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset)`` values, encoded for the wire: the same
#: text as :func:`headers` gives.
Encoded = tuple[bytes, bytes, bytes]

SMALL = tuple(str(i).encode() for i in range(4096))


def seconds(reset: float) -> bytes:
    whole = math.ceil(reset) if reset > 0 else 0
    return SMALL[whole] if whole < 4096 else b"%d" % whole


def available(limit: int, remaining: int, held: int) -> int:
    """What the key may still spend: the backend's remaining after the last grant plus this
    worker's unused tokens, at most the limit. A batch fetched ahead while the bucket refilled
    reports a remaining that already counts the refill, and the tokens still held would count again."""
    return min(limit, remaining + held)


def decoded(values: Encoded) -> dict[str, str]:
    limit, remaining, reset = (v.decode() for v in values)
    return {"RateLimit-Limit": limit, "RateLimit-Remaining": remaining, "RateLimit-Reset": reset}
