"""Telling every worker that a key changed (revoked, rotated), so its cache entry goes at once.

With Redis, a change is published on one channel (on a Redis Cluster: a sharded channel, SPUBLISH
and SSUBSCRIBE) and every worker's listener calls
:meth:`Authenticator.forget`; a worker that (re)subscribes drops its whole cache, because it may
have missed messages while disconnected. While a worker cannot hear Redis, its authenticator
confirms each warm key against the store at most every ``revalidate_after`` seconds (one read, no
argon2), so a revocation still lands within about a second. Without Redis there is one process,
and the change is applied to its authenticator directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from tenants.auth import Authenticator

__all__ = ["CHANNEL", "KeyChangeBus"]

CHANNEL = "insider:keys:changed"
log = logging.getLogger("insider_selling.revocation")


class KeyChangeBus:
    def __init__(
        self,
        authenticator: Authenticator,
        redis: Any = None,
        *,
        subscriber: Any = None,
        channel: str = CHANNEL,
        reconnect_delay: float = 0.5,
        revalidate_after: float = 0.5,
    ) -> None:
        """``redis`` publishes; ``subscriber`` (default ``redis``) listens. A separate client lets the
        listener use patient timeouts while the request path keeps short ones."""
        self.authenticator = authenticator
        self.redis = redis
        self.subscriber = subscriber if subscriber is not None else redis
        self.channel = channel
        self.reconnect_delay = reconnect_delay
        self.subscribed = asyncio.Event()
        self.received = 0
        self.revalidate_after = revalidate_after
        self._listeners: list[Callable[[str | None], None]] = []
        if self.subscriber is not None:  # until the listener is subscribed, confirm warm keys
            authenticator.revalidate_after = revalidate_after

    def add_listener(self, listener: Callable[[str | None], None]) -> None:
        """Call ``listener(key_id)`` after each key change this worker learns of, its own or another
        worker's; ``listener(None)`` after a (re)subscription, when any key may have changed."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def _notify(self, key_id: str | None) -> None:
        for listener in list(self._listeners):
            try:
                listener(key_id)
            except Exception:
                log.exception("a key change listener failed")

    async def publish(self, key_id: str) -> None:
        """Forget ``key_id`` here and tell the other workers (a Redis outage is logged: their caches
        then expire the key within the authenticator's cache TTL, or when they resubscribe)."""
        self.authenticator.forget(key_id)
        self._notify(key_id)
        if self.redis is None:
            return
        try:
            if _sharded(self.redis):
                await self.redis.spublish(self.channel, key_id)
            else:
                await self.redis.publish(self.channel, key_id)
        except Exception as exc:
            log.warning("key change broadcast of %s failed: %s", key_id, type(exc).__name__)

    async def listen(self) -> None:
        """Run until cancelled: apply every published change to this worker's authenticator."""
        if self.subscriber is None:
            return
        delay = self.reconnect_delay
        sharded = _sharded(self.subscriber)
        while True:
            pubsub = self.subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                if sharded:  # Redis Cluster: the channel lives on the node that owns its slot
                    await self.subscriber.initialize()  # learn the slots first
                    await pubsub.ssubscribe(self.channel)
                else:
                    await pubsub.subscribe(self.channel)
                self.authenticator.forget_all()  # anything missed while not subscribed
                self.authenticator.revalidate_after = None
                self.subscribed.set()
                self._notify(None)
                delay = self.reconnect_delay
                while True:
                    if sharded:
                        message = await pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=1.0)
                    else:
                        message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") in ("message", "smessage"):
                        data = message["data"]
                        key_id = data.decode() if isinstance(data, bytes) else str(data)
                        self.authenticator.forget(key_id)
                        self.received += 1
                        self._notify(key_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                self.authenticator.revalidate_after = self.revalidate_after
                log.warning("key change listener reconnecting in %.1f s after %s: %s", delay, type(exc).__name__, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


def _sharded(client: Any) -> bool:
    """A Redis Cluster client: key changes go over sharded pub/sub (SPUBLISH/SSUBSCRIBE), which
    stays on the node owning the channel's slot instead of flooding every node."""
    from redis.asyncio.cluster import RedisCluster

    return isinstance(client, RedisCluster)
