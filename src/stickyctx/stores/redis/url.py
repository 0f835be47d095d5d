"""``STICKYCTX_STORE_URL`` for Redis, parsed once for both adapters.

* ``redis://[user:password@]host:port[/db][?options]`` and ``rediss://`` (TLS)
* ``redis+cluster://[user:password@]host:port[,host:port...][?options]``
* ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db][?options]``

Options: ``socket_timeout``, ``socket_connect_timeout`` (seconds), ``ssl`` (true/false, for
cluster and sentinel), ``ssl_ca_certs``, ``ssl_cert_reqs``, ``health_check_interval``,
``sentinel_password``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from ...errors import ConfigError

__all__ = ["RedisTarget", "parse_redis_url"]

_VAR = "STICKYCTX_STORE_URL"
_FLOATS = ("socket_timeout", "socket_connect_timeout", "health_check_interval")
_STRINGS = ("ssl_ca_certs", "ssl_cert_reqs", "sentinel_password")

Kind = Literal["standalone", "cluster", "sentinel"]


@dataclass(frozen=True)
class RedisTarget:
    kind: Kind
    hosts: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False
    service: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def client_options(self, timeout: float) -> dict[str, Any]:
        opts: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        opts.update({k: v for k, v in self.options.items() if k != "sentinel_password"})
        if self.username:
            opts["username"] = self.username
        if self.password:
            opts["password"] = self.password
        if self.ssl:
            opts["ssl"] = True
        return opts


def _hosts(netloc: str) -> tuple[tuple[str, int], ...]:
    hosts = []
    for item in netloc.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(_VAR, "expected host:port[,host:port...]")
        hosts.append((host.strip("[]"), int(port)))
    return tuple(hosts)


def parse_redis_url(url: str) -> RedisTarget:
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme not in ("redis", "rediss", "redis+cluster", "redis+sentinel"):
        raise ConfigError(_VAR, "not a Redis URL")
    parts = urlsplit("x://" + rest)
    userinfo, _, netloc = parts.netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, sep, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if sep else None
    options: dict[str, Any] = {}
    ssl = scheme == "rediss"
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _FLOATS:
            try:
                options[name] = float(value)
            except ValueError:
                raise ConfigError(_VAR, f"option {name} must be a number") from None
        elif name in _STRINGS:
            options[name] = value
        elif name == "ssl":
            ssl = value.lower() in ("1", "true", "yes", "on")
        else:
            raise ConfigError(_VAR, f"unknown option {name!r}")
    path = [p for p in parts.path.split("/") if p]
    kind: Kind = "standalone"
    service = None
    if scheme == "redis+cluster":
        kind = "cluster"
        if path:
            raise ConfigError(_VAR, "a cluster URL has no database path")
    elif scheme == "redis+sentinel":
        kind = "sentinel"
        if not path:
            raise ConfigError(_VAR, "a sentinel URL needs the service name: .../service[/db]")
        service = unquote(path.pop(0))
    if not netloc:
        raise ConfigError(_VAR, "no host given")
    hosts = _hosts(netloc)
    if kind == "standalone" and len(hosts) != 1:
        raise ConfigError(_VAR, "a standalone URL names one host")
    db = 0
    if path:
        if len(path) != 1 or not path[0].isdigit():
            raise ConfigError(_VAR, "the database must be a number")
        db = int(path[0])
    return RedisTarget(kind, hosts, db, username, password, ssl, service, options)
