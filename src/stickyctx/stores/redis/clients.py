"""Building redis-py clients (sync and asyncio) for a parsed ``RedisTarget``.

Client-level retries are off: a write retried after a timeout could be applied twice. Loads are
safe to repeat and the adapters repeat them once on a broken connection; redis-py reconnects by
itself on the next command when Redis is back.
"""

from __future__ import annotations

from typing import Any

from redis.backoff import NoBackoff

from .url import RedisTarget

__all__ = ["async_client", "sync_client"]


def _no_retry() -> Any:
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


def _no_retry_async() -> Any:
    from redis.asyncio.retry import Retry

    return Retry(NoBackoff(), 0)


def sync_client(target: RedisTarget, timeout: float) -> Any:
    import redis
    from redis.cluster import ClusterNode, RedisCluster
    from redis.sentinel import Sentinel

    options = target.client_options(timeout)
    if target.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in target.hosts]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=nodes, retry=_no_retry(), **options)
    if target.kind == "sentinel":
        sentinel_kwargs = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        if "sentinel_password" in target.options:
            sentinel_kwargs["password"] = target.options["sentinel_password"]
        sentinel = Sentinel(list(target.hosts), sentinel_kwargs=sentinel_kwargs, **options)
        return sentinel.master_for(target.service or "", db=target.db, retry=_no_retry())
    host, port = target.hosts[0]
    return redis.Redis(host=host, port=port, db=target.db, retry=_no_retry(), **options)


def async_client(target: RedisTarget, timeout: float) -> Any:
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import ClusterNode, RedisCluster
    from redis.asyncio.sentinel import Sentinel

    options = target.client_options(timeout)
    if target.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in target.hosts]
        # A MOVED reply is always followed to the node named in it. Without
        # reinitialize_steps=0, every fifth MOVED (frequent while a fresh client's first
        # commands race its initialization) closes every connection of the client, failing
        # other tasks' commands in flight: without client retries, each one a 503.
        return RedisCluster(startup_nodes=nodes, retry=_no_retry_async(), reinitialize_steps=0,
                            **options)
    if target.kind == "sentinel":
        sentinel_kwargs = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        if "sentinel_password" in target.options:
            sentinel_kwargs["password"] = target.options["sentinel_password"]
        sentinel = Sentinel(list(target.hosts), sentinel_kwargs=sentinel_kwargs, **options)
        return sentinel.master_for(target.service or "", db=target.db, retry=_no_retry_async())
    host, port = target.hosts[0]
    return aioredis.Redis(host=host, port=port, db=target.db, retry=_no_retry_async(), **options)
