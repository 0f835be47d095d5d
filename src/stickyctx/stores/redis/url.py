"""``STICKYCTX_STORE_URL`` for Redis: redis-py parses it, except what redis-py has no URL for.

* ``redis://``, ``rediss://`` (TLS) and ``unix://`` are redis-py's own URLs: the client is
  built by redis-py's ``parse_url``, so every option of redis-py's ``from_url`` works.
* ``redis+cluster://[user:password@]host:port[,host:port...][?options]`` and
  ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db][?options]`` list
  several hosts, which redis-py's URLs cannot. Only that is split here (the hosts, the service,
  and the options of our own: ``ssl``, ``sentinel_password``); the credentials, the database and
  every other option become a redis-py URL of the first host, parsed by redis-py like the others.

Parsing here is pure; redis-py parses ``RedisTarget.redis_url`` when the store is opened (see
``clients``), with the parser of the client being built (sync or asyncio).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from ...errors import ConfigError

__all__ = ["VARIABLE", "RedisTarget", "parse_redis_url"]

VARIABLE = "STICKYCTX_STORE_URL"
Kind = Literal["standalone", "cluster", "sentinel"]
_SCHEMES: dict[str, Kind] = {
    "redis": "standalone", "rediss": "standalone", "unix": "standalone",
    "redis+cluster": "cluster", "redis+sentinel": "sentinel",
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class RedisTarget:
    """A parsed store URL.

    ``redis_url`` is for redis-py's ``parse_url``: the URL itself for one server, else a URL of
    the first host carrying the credentials, database and options. ``hosts`` are the Cluster's
    seed nodes or the Sentinels; ``ssl`` is TLS to the servers of a Cluster or Sentinel setup.
    """

    kind: Kind
    redis_url: str = field(repr=False)  # may hold the password
    hosts: tuple[tuple[str, int], ...] = ()
    service: str | None = None
    ssl: bool = False
    sentinel_password: str | None = field(default=None, repr=False)


def _bad(reason: str) -> ConfigError:
    return ConfigError(VARIABLE, reason)  # never the URL itself: it may hold a password


def _host(item: str) -> tuple[str, int]:
    try:
        parts = urlsplit("//" + item.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        raise _bad("expected host:port[,host:port...]") from None
    if not host or port is None or parts.path or parts.username or parts.password:
        raise _bad("expected host:port[,host:port...] (every host with its port)")
    return host, port


def _standalone(url: str) -> RedisTarget:
    """Checks what redis-py's own parser lets pass silently: a database path not a number."""
    parts = urlsplit(url)
    if not url.lower().startswith("unix"):
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise _bad("the database (the URL's path) must be a number")
    return RedisTarget("standalone", url)


def parse_redis_url(url: str) -> RedisTarget:
    """Split ``url`` (a Redis URL of ``STICKYCTX_STORE_URL``); ``ConfigError`` if malformed."""
    scheme, sep, rest = url.strip().partition("://")
    kind = _SCHEMES.get(scheme.lower()) if sep else None
    if kind is None:
        raise _bad("not a Redis URL (redis://, rediss://, unix://, redis+cluster://, "
                   "redis+sentinel://)")
    if kind == "standalone":
        return _standalone(url.strip())
    netloc, _, after = rest.partition("/")
    path, _, query = after.partition("?")
    if "?" in netloc:
        netloc, _, query = netloc.partition("?")
    userinfo, _, hostlist = netloc.rpartition("@")
    if not hostlist:
        raise _bad("no host given")
    hosts = tuple(_host(item) for item in hostlist.split(","))
    options: list[tuple[str, str]] = []
    ssl = False
    sentinel_password = None
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "ssl":
            if value.lower() not in _TRUE + _FALSE:
                raise _bad("option ssl must be true or false")
            ssl = value.lower() in _TRUE
        elif name == "sentinel_password" and kind == "sentinel":
            sentinel_password = value
        else:
            options.append((name, value))
    segments = [unquote(p) for p in path.split("/") if p]
    service = None
    if kind == "sentinel":
        if not segments:
            raise _bad("a sentinel URL needs the service name: .../service[/db]")
        service = segments.pop(0)
    elif segments:
        raise _bad("a cluster URL has no database path")
    if len(segments) > 1 or (segments and not segments[0].isdigit()):
        raise _bad("the database must be a number")
    first_host, first_port = hosts[0]
    host = f"[{first_host}]" if ":" in first_host else first_host
    credentials = userinfo + "@" if userinfo else ""
    database = "/" + segments[0] if segments else ""
    tail = "?" + urlencode(options) if options else ""
    redis_url = f"redis://{credentials}{host}:{first_port}{database}{tail}"
    return RedisTarget(kind, redis_url, hosts, service, ssl, sentinel_password)
