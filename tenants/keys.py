"""The ``sk_live_`` key format: a public key id, 131 bits of secret, and a checksum.

    sk_live_<key id: 12 base62><secret: 22 base62><checksum: 6 base62>

The checksum is CRC32 of everything before it, base62-encoded (as GitHub's tokens do), so a
mistyped, truncated or forged key is rejected by shape alone, before any store lookup. The key id
is public (listings and the audit log show it as ``key_<id>``); only an argon2id hash of the whole
key is stored.
"""

from __future__ import annotations

import hmac
import re
import secrets
import zlib
from dataclasses import dataclass

from tenants.errors import MalformedKey

__all__ = ["KEY_PREFIX", "ParsedKey", "generate_key", "parse_key", "redact"]

KEY_PREFIX = "sk_live_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LEN, SECRET_LEN, CHECK_LEN = 12, 22, 6
KEY_LEN = len(KEY_PREFIX) + ID_LEN + SECRET_LEN + CHECK_LEN
_SHAPE = re.compile(rf"^{KEY_PREFIX}[0-9A-Za-z]{{{ID_LEN + SECRET_LEN + CHECK_LEN}}}$")


def _base62(number: int, width: int) -> str:
    out = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        out.append(ALPHABET[digit])
    return "".join(reversed(out))


def _random(width: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(width))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECK_LEN)


@dataclass(frozen=True, slots=True)
class ParsedKey:
    key_id: str  # public, "key_" + 12 base62
    full: str

    def __repr__(self) -> str:  # never print a secret
        return f"ParsedKey(key_id={self.key_id!r})"


def generate_key(key_id: str | None = None) -> ParsedKey:
    """A new key; pass ``key_id`` to keep an id (never done: rotation issues a new id)."""
    raw_id = key_id.removeprefix("key_") if key_id else _random(ID_LEN)
    body = KEY_PREFIX + raw_id + _random(SECRET_LEN)
    return ParsedKey("key_" + raw_id, body + _checksum(body))


def parse_key(value: str) -> ParsedKey:
    """Check shape and checksum; raise :class:`MalformedKey` without touching any store."""
    if len(value) != KEY_LEN or not _SHAPE.match(value):
        raise MalformedKey("API key is malformed")
    body, check = value[:-CHECK_LEN], value[-CHECK_LEN:]
    if not hmac.compare_digest(_checksum(body), check):
        raise MalformedKey("API key checksum does not match")
    return ParsedKey("key_" + value[len(KEY_PREFIX) : len(KEY_PREFIX) + ID_LEN], value)


def redact(value: str) -> str:
    """What logs may show of a key: its prefix and public id, never the secret."""
    if value.startswith(KEY_PREFIX) and len(value) >= len(KEY_PREFIX) + ID_LEN:
        return f"{KEY_PREFIX}{value[len(KEY_PREFIX) : len(KEY_PREFIX) + ID_LEN]}…"
    return "<redacted>"
