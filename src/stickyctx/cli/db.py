"""``stickyctx db upgrade`` / ``stickyctx db status``: the PostgreSQL schema.

The database is ``--url``, else ``STICKYCTX_COLD_URL`` (the cold tier), else
``STICKYCTX_STORE_URL`` when it is a ``postgresql://`` URL. ``upgrade`` applies the missing
migrations (safe to run again, and from several nodes at once); ``status`` shows the schema's
version and the newest this version of stickyctx knows; ``sweep`` deletes the rows whose
lifetime is over. ``move-cold`` is one pass of the cold tier's mover (``stores.cold.mover``).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import ConfigError, StoreError
from ._types import Subparsers


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("db", help="the PostgreSQL schema (store and cold tier)",
                            description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, help_text in (("upgrade", "create or migrate the schema to the newest version"),
                            ("status", "show the schema's version"),
                            ("sweep", "delete the rows whose lifetime is over")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("--url", help="postgresql:// URL (default: from the environment)")
        action.set_defaults(run=run)
    move = actions.add_parser(
        "move-cold", help="move conversations idle past STICKYCTX_COLD_AFTER from Redis to "
                          "the cold tier (one pass; run it periodically)")
    move.add_argument("--limit", type=int, default=None, help="move at most N conversations")
    move.add_argument("--stop-after", choices=("copied", "verified", "deleted"),
                      help=argparse.SUPPRESS)  # waits on stdin there: for crash tests
    move.set_defaults(run=run_move)
    parser.set_defaults(run=run)


def database_url(explicit: str | None) -> str:
    """The database a ``db`` command works on (see the module's documentation)."""
    if explicit:
        return explicit
    cold = os.environ.get("STICKYCTX_COLD_URL", "").strip()
    if cold:
        return cold
    store = os.environ.get("STICKYCTX_STORE_URL", "").strip()
    if store.partition("://")[0].lower() in ("postgresql", "postgres"):
        return store
    raise ConfigError("STICKYCTX_COLD_URL", "no PostgreSQL database configured: set "
                      "STICKYCTX_COLD_URL or a postgresql:// STICKYCTX_STORE_URL, or pass --url")


def run_move(args: argparse.Namespace) -> int:
    """One pass of the mover over this namespace (the app's own settings)."""
    from ..core.storekeys import SessionKey
    from ..settings import Settings
    from ..stores import open_store
    from ..stores.cold.mover import Mover
    from ..stores.cold.tiered import TieredStore

    settings = Settings.from_env()
    store = open_store(settings)
    if not isinstance(store, TieredStore):
        raise ConfigError("STICKYCTX_COLD_URL", "move-cold needs a Redis store with a cold "
                          "tier (STICKYCTX_COLD_URL)")

    def stop(step: str, key: SessionKey) -> None:
        if step == args.stop_after:
            print(f"stopped after {step}", flush=True)
            sys.stdin.readline()

    try:
        report = Mover(store, namespace=settings.namespace, idle_ttl=settings.idle_ttl,
                       cold_after=settings.cold_after,
                       on_step=stop if args.stop_after else None).run(args.limit)
    except StoreError as exc:  # a tier unreachable: what was moved so far stays moved
        print(f"stickyctx: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"moved {report.moved}, kept {report.kept} (in use), cleaned {report.cleaned} "
          "restored copies")
    return 0


def run(args: argparse.Namespace) -> int:
    import psycopg

    from ..stores.postgres.migrations import LATEST, current_version, upgrade
    from ..stores.postgres.pools import connect

    url = database_url(args.url)
    try:
        with connect(url) as conn:
            if args.action == "sweep":
                from ..stores.postgres.sweep import sweep

                counts = sweep(conn)
                print(", ".join(f"{table}: {n}" for table, n in counts.items()))
            elif args.action == "upgrade":
                applied = upgrade(conn)
                done = ", ".join(map(str, applied)) if applied else "none (already current)"
                print(f"schema version {current_version(conn)}; applied now: {done}")
            else:
                version = current_version(conn)
                state = "current" if version == LATEST else (
                    "needs `stickyctx db upgrade`" if version < LATEST else "newer than this "
                    "stickyctx")
                print(f"schema version {version} of {LATEST}: {state}")
    except psycopg.Error as exc:  # one line, never a traceback
        print(f"stickyctx: database error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
