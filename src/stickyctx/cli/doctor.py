"""``stickyctx doctor``: check settings, tokenizer, store and membership, one line per check.

Exit status: 0 when every check passes, 1 when one fails, 2 when the configuration is invalid.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

from ..core.ids import new_session_id
from ..core.storekeys import KeyDeriver
from ..core.tokenizer import encoding_for, load_tokenizer
from ..errors import ConfigError
from ..sansio import run_sync
from ..settings import Settings
from ..stores import open_store
from ._types import Subparsers, plain


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("doctor", help="check settings, tokenizer, store and membership",
                            description=plain(__doc__))
    parser.set_defaults(run=run)


def _report(name: str, ok: bool, detail: str) -> None:
    print(f"{'ok' if ok else 'FAIL':<4}  {name:<10}  {detail}")


def _settings() -> tuple[Settings, str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = Settings.from_env()
    detail = f"node {settings.node_id}, {len(settings.keys)} signing key(s)"
    if settings.dev:
        detail += ", development mode"
    if any("random signing key" in str(w.message) for w in caught):
        detail += " (random key: sessions do not survive a restart)"
    return settings, detail


def _tokenizer(settings: Settings) -> str:
    with warnings.catch_warnings():
        # The fallback to the offline copy is reported in the line itself.
        warnings.simplefilter("ignore", RuntimeWarning)
        tokenizer = load_tokenizer(encoding_for(settings.encoding, settings.model))
    if tokenizer.count_text("hello world") <= 0:
        raise RuntimeError(f"encoding {tokenizer.encoding_name} counts no tokens")
    if tokenizer.encoding_name != tokenizer.name:
        return (f"{tokenizer.name} (from the identical offline copy {tokenizer.encoding_name}: "
                "it could not be downloaded)")
    return tokenizer.name


def _store(settings: Settings) -> str:
    scheme = settings.store_url.partition("://")[0].lower()
    store = open_store(settings)
    try:
        # A read of a key that cannot exist: proves the store answers, changes nothing.
        probe = KeyDeriver(b"stickyctx.doctor", settings.namespace).derive(new_session_id())
        started = time.perf_counter()
        run_sync(store.load(probe), store.sync_io)
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        store.close()
    if scheme == "memory":
        return (f"memory:// (embedded in each process; not shared between nodes), "
                f"read in {elapsed:.1f} ms")
    cold = " (and the cold tier: a miss looks there)" if settings.cold_url else ""
    return f"{scheme}:// reachable{cold}, read in {elapsed:.1f} ms"


def _membership(settings: Settings) -> str:
    if not settings.nodes and (settings.uses_redis or settings.uses_postgres):
        return (f"dynamic through the store: this node ({settings.node_id}) announces itself "
                f"every {settings.heartbeat_interval:g}s")
    if not settings.nodes:
        return f"no STICKYCTX_NODES: this node ({settings.node_id}) alone"
    listed = ", ".join(n.id + (f"={n.address}" if n.address else "") for n in settings.nodes)
    detail = f"static, {len(settings.nodes)} node(s): {listed}; this node {settings.node_id} listed"
    if len(settings.nodes) > 1 and settings.store_url.lower().startswith("memory"):
        detail += " (warning: memory:// is per process: a miss or failover finds no context)"
    return detail


_CHECKS: tuple[tuple[str, Callable[[Settings], str]], ...] = (
    ("tokenizer", _tokenizer),
    ("store", _store),
    ("membership", _membership),
)


def run(_args: argparse.Namespace) -> int:
    try:
        settings, detail = _settings()
    except ConfigError as exc:
        _report("settings", False, str(exc))
        return 2
    _report("settings", True, detail)
    status = 0
    for name, check in _CHECKS:
        try:
            detail = check(settings)
        except ConfigError as exc:
            _report(name, False, str(exc))
            status = 2
        except Exception as exc:  # noqa: BLE001 - any failure of a check is reported as FAIL
            _report(name, False, f"{type(exc).__name__}: {exc}")
            status = status or 1
        else:
            _report(name, True, detail)
    return status
