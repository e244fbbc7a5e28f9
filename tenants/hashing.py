"""argon2id hashing of API keys, with documented parameter profiles (argon2-cffi).

``owasp`` (the default) is OWASP's recommended argon2id configuration: m=19 MiB, t=2, p=1.
``rfc9106_low_memory`` is RFC 9106's second recommendation: m=64 MiB, t=3, p=4.
``test`` is cheap and refused at start-up when MongoDB is configured (see ``Settings``).
"""

from __future__ import annotations

from typing import Literal

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["PROFILES", "KeyHasher"]

Profile = Literal["owasp", "rfc9106_low_memory", "test"]

PROFILES: dict[str, dict[str, int]] = {
    "owasp": {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1},
    "rfc9106_low_memory": {"time_cost": 3, "memory_cost": 64 * 1024, "parallelism": 4},
    "test": {"time_cost": 1, "memory_cost": 8, "parallelism": 1},
}


class KeyHasher:
    def __init__(self, profile: Profile = "owasp") -> None:
        self.profile = profile
        params = PROFILES[profile]
        self._ph = PasswordHasher(
            time_cost=params["time_cost"],
            memory_cost=params["memory_cost"],
            parallelism=params["parallelism"],
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )

    def hash(self, key: str) -> str:
        return self._ph.hash(key)

    def verify(self, stored_hash: str, key: str) -> bool:
        """Constant-time verification (argon2's own comparison)."""
        try:
            return self._ph.verify(stored_hash, key)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
