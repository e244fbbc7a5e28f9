"""Endpoint secrets (``whsec_…``), derived rather than stored.

Standard Webhooks signs with a symmetric secret, so the server must be able to recover it: a hash
alone cannot sign. Instead of storing the secret (even encrypted), each endpoint stores a random,
non-secret **salt** per secret generation, and the secret is ``HMAC-SHA256(server_key, "whsec:" +
endpoint_id + ":" + salt)``: 32 bytes, base64, prefixed ``whsec_``. A database dump alone yields no
secret; the server key (``INSIDER_WEBHOOK_KEY``, in the settings of every process that delivers)
is needed, exactly as with encryption at rest, and no ciphertext handling is involved. The full
secret is shown once, at creation or rotation; logs and listings show :func:`masked` only.

Rotation draws a new salt and keeps the previous one until ``previous_until``: meanwhile each
message carries both signatures (``webhook-signature: v1,<new> v1,<old>``), as the spec allows.
Changing the server key invalidates every endpoint secret (rotate each endpoint after).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _random
from datetime import datetime

from standardwebhooks import Webhook

__all__ = ["SecretKeeper", "masked"]


def masked(secret: str) -> str:
    """What a log or a listing may show of a secret."""
    return secret[:10] + "…" if len(secret) > 10 else "…"


class SecretKeeper:
    def __init__(self, server_key: bytes) -> None:
        if len(server_key) < 16:
            raise ValueError("the webhook server key must be at least 16 bytes")
        self._key = server_key

    @staticmethod
    def new_salt() -> str:
        return _random.token_urlsafe(18)

    def secret(self, endpoint_id: str, salt: str) -> str:
        digest = hmac.new(self._key, f"whsec:{endpoint_id}:{salt}".encode(), hashlib.sha256).digest()
        return "whsec_" + base64.b64encode(digest).decode()

    def signature(self, endpoint_id: str, salts: list[str], msg_id: str, at: datetime, body: str) -> str:
        """The ``webhook-signature`` header: one ``v1,…`` per live secret, space-separated."""
        return " ".join(Webhook(self.secret(endpoint_id, salt)).sign(msg_id, at, body) for salt in salts)
