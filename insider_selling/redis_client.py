"""Redis clients from ``REDIS_URL``: one node (``redis://``, ``rediss://``, ``unix://``) or a Redis
Cluster (``redis+cluster://host:port``, ``rediss+cluster://``; any node of the cluster will do,
the client discovers the others)."""

from __future__ import annotations

from typing import Any

__all__ = ["CLUSTER_SCHEMES", "connect_redis", "is_cluster_url"]

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def connect_redis(url: str, **options: Any) -> Any:
    """A ``redis.asyncio`` client for ``url`` (nothing is connected until the first command);
    ``options`` are the connection options (timeouts)."""
    if is_cluster_url(url):
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(url.replace("+cluster://", "://", 1), **options)
    import redis.asyncio as aioredis

    return aioredis.from_url(url, **options)
