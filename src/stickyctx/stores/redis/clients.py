"""Building redis-py clients (sync and asyncio) for a parsed ``RedisTarget``.

redis-py parses the URL (``parse_url`` of the client being built), so every option of its
``from_url`` works. An option that redis-py would reject only at the first connection (an
unknown name, a bad value), or would drop silently (the sync Cluster client), is a
``ConfigError`` naming ``STICKYCTX_STORE_URL`` here, when the store is opened: one connection
object is built from the pool's settings (which opens nothing) to let redis-py check them.

Pools wait: a command that finds every connection of the pool in use waits for one to come
back (redis-py's ``BlockingConnectionPool``, sync and asyncio; with Sentinel the same waiting
pool that also asks the Sentinels for the primary) for at most ``timeout`` seconds (URL option;
``POOL_WAIT`` by default), instead of failing at once as redis-py's default pool does. Its size
is ``max_connections`` (``POOL_SIZE`` by default). The sync Cluster client gets one such pool
per node; redis-py's asyncio Cluster client has no waiting pool: each node allows
``max_connections`` connections and a command beyond them fails at once.

Client-level retries are off: a write retried after a timeout could be applied twice. Loads are
safe to repeat and the adapters repeat them once on a broken connection; redis-py reconnects by
itself on the next command when Redis is back. The options that would turn retries on
(``retry_on_timeout``, ``retry_on_error``) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel
import redis.sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ...errors import ConfigError
from .url import VARIABLE, RedisTarget

__all__ = ["POOL_SIZE", "POOL_WAIT", "async_client", "sync_client"]

POOL_SIZE = 100  # connections of a pool (per node with Cluster): URL option max_connections
POOL_WAIT = 5.0  # seconds a command waits for a free connection: URL option timeout
_REFUSED = ("retry_on_timeout", "retry_on_error")
_PLACED_HERE = ("host", "port", "path", "connection_class")  # of the first host's URL


def _no_retry() -> Any:
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


def _no_retry_async() -> Any:
    from redis.asyncio.retry import Retry

    return Retry(NoBackoff(), 0)


def _options(target: RedisTarget, parse_url: Callable[[str], Mapping[str, Any]],
             timeout: float) -> dict[str, Any]:
    """redis-py's keyword arguments for the target, timeouts defaulting to ``timeout``."""
    try:
        options = dict(parse_url(target.redis_url))
    except ValueError as exc:
        # redis-py's messages name the option ("Invalid value for 'x' ..."); never the URL.
        found = re.search(r"Invalid value for '(\w+)'", str(exc))
        raise ConfigError(VARIABLE, f"option {found.group(1)} has an invalid value" if found
                          else "malformed URL (a port that is not a number?)") from None
    for name in _REFUSED:
        if name in options:
            raise ConfigError(VARIABLE, f"option {name} is not supported: client-level retries "
                              "are off (a retried write could be applied twice)")
    options.setdefault("socket_timeout", timeout)
    options.setdefault("socket_connect_timeout", timeout)
    options.setdefault("max_connections", POOL_SIZE)
    if target.kind != "standalone":
        for name in _PLACED_HERE:
            options.pop(name, None)
        if "db" in options and target.kind == "cluster":
            raise ConfigError(VARIABLE, "a cluster has only database 0")
    return options


def _rejected(exc: Exception, names: Iterable[str]) -> ConfigError:
    """The ``ConfigError`` for redis-py refusing an option (by its name, never its value)."""
    if isinstance(exc, TypeError):
        found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        name = found.group(1) if found else "an option"
        return ConfigError(VARIABLE, f"unknown option {name} (not a redis-py client option)")
    named = sorted(n for n in names if n in str(exc))
    if len(named) != 1:
        named = list(names)  # (the only suspect, when the caller knows it)
    return ConfigError(VARIABLE, f"option {named[0]} has an invalid value" if len(named) == 1
                       else "an option has an invalid value")


def _checked(build: Callable[[], Any], names: Iterable[str],
             errors: tuple[type[Exception], ...] = (TypeError, ValueError, RedisError)) -> Any:
    try:
        return build()
    except errors as exc:
        raise _rejected(exc, names) from None


def _check_pool(pool: Any, names: Iterable[str]) -> None:
    """Build one connection from the pool's settings (nothing is opened) to check them.

    redis-py's message may not name the option it refused: the one without which the
    connection can be built is named.
    """
    make, kwargs = pool.connection_class, pool.connection_kwargs
    try:
        make(**kwargs)
    except (TypeError, ValueError, RedisError) as exc:
        for name in names:
            try:
                make(**{k: v for k, v in kwargs.items() if k != name})
            except (TypeError, ValueError, RedisError):
                continue
            raise _rejected(exc, [name]) from None
        raise _rejected(exc, names) from None


class _BlockingSentinelPool(redis.sentinel.SentinelConnectionPool,
                            redis.BlockingConnectionPool):
    """redis-py's Sentinel pool (asks the Sentinels for the primary) that waits when full."""


class _AsyncBlockingSentinelPool(redis.asyncio.sentinel.SentinelConnectionPool,
                                 redis.asyncio.BlockingConnectionPool):
    """The same for asyncio."""


class _SentinelMaster(redis.Redis):
    """The primary's client; closing it also closes the connections to the Sentinels."""

    sentinel: Any = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.sentinel is not None:
                self.sentinel.close()


class _AsyncSentinelMaster(aioredis.Redis):
    """The primary's client (asyncio); closing it also closes the Sentinels' connections."""

    sentinel: Any = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            if self.sentinel is not None:
                await self.sentinel.aclose()


def _sentinel_kwargs(target: RedisTarget, timeout: float) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if target.sentinel_password is not None:
        kwargs["password"] = target.sentinel_password
    return kwargs


def sync_client(target: RedisTarget, timeout: float) -> Any:
    import redis.cluster
    from redis.connection import parse_url
    from redis.sentinel import Sentinel

    options = _options(target, parse_url, timeout)
    if target.kind == "cluster":
        # The sync Cluster client drops the options it does not know without a word.
        allowed = set(redis.cluster.REDIS_ALLOWED_KEYS) - set(redis.cluster.KWARGS_DISABLED_KEYS)
        for name in options:
            if name not in allowed:
                raise ConfigError(VARIABLE, f"unknown option {name} (not a redis-py Cluster "
                                  "client option)")
        nodes = [redis.cluster.ClusterNode(host, port)  # type: ignore[no-untyped-call]
                 for host, port in target.hosts]
        # (This client connects when built: an unreachable Cluster is a RedisError, not ours.)
        options.setdefault("timeout", POOL_WAIT)
        return _checked(lambda: redis.cluster.RedisCluster(
            startup_nodes=nodes, retry=_no_retry(), ssl=target.ssl,
            connection_pool_class=redis.BlockingConnectionPool, **options), options,
            (TypeError, ValueError))
    if target.kind == "sentinel":
        return _through_sentinel(target, timeout, options, Sentinel, _SentinelMaster,
                                 _BlockingSentinelPool, _no_retry())
    return _pooled(redis.BlockingConnectionPool, redis.Redis, _no_retry(), options)


def async_client(target: RedisTarget, timeout: float) -> Any:
    from redis.asyncio.cluster import ClusterNode, RedisCluster
    from redis.asyncio.connection import parse_url
    from redis.asyncio.sentinel import Sentinel

    options = _options(target, parse_url, timeout)
    if target.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in target.hosts]
        # A MOVED reply is always followed to the node named in it. Without
        # reinitialize_steps=0, every fifth MOVED (frequent while a fresh client's first
        # commands race its initialization) closes every connection of the client, failing
        # other tasks' commands in flight: without client retries, each one a 503.
        return _checked(lambda: RedisCluster(
            startup_nodes=nodes, retry=_no_retry_async(), reinitialize_steps=0, ssl=target.ssl,
            **options), options)
    if target.kind == "sentinel":
        return _through_sentinel(target, timeout, options, Sentinel, _AsyncSentinelMaster,
                                 _AsyncBlockingSentinelPool, _no_retry_async())
    return _pooled(aioredis.BlockingConnectionPool, aioredis.Redis, _no_retry_async(), options)


# What the two clients build alike, from the classes of redis-py's blocking or asyncio API.

def _through_sentinel(target: RedisTarget, timeout: float, options: dict[str, Any],
                      sentinel_class: Any, master_class: Any, pool_class: Any,
                      retry: Any) -> Any:
    db = options.pop("db", 0)
    sentinel = sentinel_class(list(target.hosts),
                              sentinel_kwargs=_sentinel_kwargs(target, timeout))
    options.setdefault("timeout", POOL_WAIT)
    client = _checked(lambda: sentinel.master_for(
        target.service or "", redis_class=master_class, connection_pool_class=pool_class,
        db=db, retry=retry, ssl=target.ssl, **options), options)
    _check_pool(client.connection_pool, options)
    client.sentinel = sentinel
    return client


def _pooled(pool_class: Any, client_class: Any, retry: Any, options: dict[str, Any]) -> Any:
    options.setdefault("timeout", POOL_WAIT)
    pool = _checked(lambda: pool_class(retry=retry, **options), options)
    _check_pool(pool, options)
    return client_class.from_pool(pool)
