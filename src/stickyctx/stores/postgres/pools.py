"""psycopg connection pools for the PostgreSQL store, from a ``postgresql://`` URL.

Connections are in autocommit mode, so a connection waiting in the pool holds no transaction:
each step opens and commits its own (``io``). A broken connection (a server restart) is
dropped by the pool when it comes back, and replaced; while the server is down, the pool's
reconnection attempts stop after a few seconds and start again with the next request, so the
store is back within a few seconds of the server.
"""

from __future__ import annotations

from typing import Any

from ...errors import ConfigError

__all__ = ["async_pool", "connect", "sync_pool"]

_MAX_CONNECTIONS = 10  # per pool: the blocking one, and one per event loop
# psycopg_pool retries a failed connection with a doubling delay until this many seconds have
# passed, then gives up until a request asks for a connection, which starts again at once. Its
# default (five minutes) lets the delay grow to minutes: the store would stay down that long
# after the server came back.
_RECONNECT_WITHIN = 5.0


def _conninfo(url: str) -> str:
    # psycopg takes postgresql:// and postgres:// URLs (libpq's URI syntax) as they are.
    return url


def _kwargs(timeout: float) -> dict[str, Any]:
    return {"autocommit": True, "connect_timeout": max(1, round(timeout))}


def _store_kwargs(url: str, timeout: float) -> dict[str, Any]:
    """The store's connections also bound, on the server, how long a statement may wait for a
    session's lock (``lock_timeout``) or run (``statement_timeout``), and how long a
    transaction may sit idle (``idle_in_transaction_session_timeout``: a node frozen in the
    middle of a transaction loses it, and the session's lock with it). Options of the URL's
    own ``options`` are kept."""
    from psycopg.conninfo import conninfo_to_dict

    ms = max(1, int(timeout * 1000))
    ours = (f"-c lock_timeout={ms} -c statement_timeout={2 * ms} "
            f"-c idle_in_transaction_session_timeout={4 * ms}")
    theirs = str(conninfo_to_dict(_conninfo(url)).get("options") or "")
    return {**_kwargs(timeout), "options": f"{theirs} {ours}".strip()}


def _imports() -> Any:
    try:
        import psycopg_pool
    except ImportError:
        raise ConfigError("STORE_URL", "a postgresql:// store needs the postgres extra: pip "
                          "install 'stickyctx[postgres]'") from None
    return psycopg_pool


def sync_pool(url: str, timeout: float) -> Any:
    return _imports().ConnectionPool(_conninfo(url), min_size=1, max_size=_MAX_CONNECTIONS,
                                     kwargs=_store_kwargs(url, timeout), timeout=timeout, open=True,
                                     reconnect_timeout=_RECONNECT_WITHIN, name="stickyctx")


def async_pool(url: str, timeout: float) -> Any:
    """An asyncio pool, not yet open (``io`` opens it in the loop that uses it)."""
    return _imports().AsyncConnectionPool(_conninfo(url), min_size=1,
                                          max_size=_MAX_CONNECTIONS,
                                          kwargs=_store_kwargs(url, timeout),
                                          timeout=timeout, open=False,
                                          reconnect_timeout=_RECONNECT_WITHIN, name="stickyctx")


def connect(url: str, timeout: float = 10.0) -> Any:
    """One blocking connection (the command line's ``db`` commands)."""
    _imports()
    import psycopg
    return psycopg.connect(_conninfo(url), **_kwargs(timeout))
