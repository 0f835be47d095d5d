"""``stickyctx inspect ID`` and ``stickyctx purge ID``: look at or erase one session.

``ID`` is a session id (as the app sees it in ``session_id``) or a session token. Both use the
configured store (``STICKYCTX_STORE_URL``) and key derivation (``STICKYCTX_HASH_KEY``).
The embedded store (``memory://``) lives inside each app process, out of this command's reach:
with it, both exit with status 2 and say so. With the audit trail on (``STICKYCTX_AUDIT``),
each records one event (``read`` or ``purge``, source ``cli``) naming the operator
(``--principal``, by default the login name), exported as the ``OTEL_*`` variables say
(``OTEL_LOGS_EXPORTER``, see ``telemetry.setup``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..core.ids import is_valid_session_id
from ..core.storekeys import SessionKey
from ..core.tokens import TokenCodec
from ..errors import StickyctxError
from ..sansio import run_sync
from ..session.services import Services
from ..settings import Settings
from ..stores import Store, open_store
from ..telemetry.audit import ACTION, OUTCOME
from ..telemetry.setup import configure_from_env
from ._types import Subparsers, plain


def register(sub: Subparsers) -> None:
    for name, help_text, runner in (
        ("inspect", "show a session's messages, token count and summary", run_inspect),
        ("purge", "erase every key of a session and refuse its token afterwards", run_purge),
    ):
        parser = sub.add_parser(name, help=help_text, description=plain(__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("session", metavar="ID", help="a session id or token")
        parser.add_argument("--principal", default=None,
                            help="who the audit trail names (default: the login name)")
        if name == "inspect":
            parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.set_defaults(run=runner)


def _resolve(settings: Settings, value: str) -> str | None:
    if is_valid_session_id(value):
        return value
    codec = TokenCodec([k.reveal() for k in settings.keys], max_age=settings.absolute_ttl)
    claims = codec.verify(value.strip(), time.time())
    return claims.session_id if claims else None


def _open(args: argparse.Namespace) -> tuple[Store, SessionKey, Services, str] | None:
    settings = Settings.from_env()
    if not settings.uses_redis:
        print(f"stickyctx {args.command}: the store is memory:// (STICKYCTX_STORE_URL), which "
              "lives inside each running app process: this command cannot reach it, and a "
              "store of its own would hold nothing. Point STICKYCTX_STORE_URL at the app's "
              "Redis store, or act on the session from inside the app "
              "(conv.messages(), conv.destroy()).", file=sys.stderr)
        return None
    session_id = _resolve(settings, args.session)
    if session_id is None:
        print("stickyctx: not a session id, nor a valid token for the configured keys",
              file=sys.stderr)
        return None
    services = Services(settings)
    return open_store(settings), services.keys.derive(session_id), services, session_id


def _operator(args: argparse.Namespace) -> str | None:
    if args.principal:
        return str(args.principal)
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return None


@contextmanager
def _audited(args: argparse.Namespace, services: Services, session_id: str,
             action: str) -> Iterator[None]:
    """One audit event for the command's store operation: success, or failure if it raised."""
    audit = services.audit
    if audit is None:
        yield
        return
    setup = configure_from_env("stickyctx")  # the OTEL_* variables say where events go
    fields = {"principal": _operator(args), "source": "cli"}
    try:
        yield
    except Exception as exc:
        audit.event(action, OUTCOME.FAILURE, services.session_hash(session_id),
                    error_type=type(exc).__name__, **fields)
        raise
    else:
        audit.event(action, OUTCOME.SUCCESS, services.session_hash(session_id), **fields)
    finally:
        if setup is not None and setup.logger_provider is not None:
            setup.logger_provider.force_flush()  # before the process ends


def run_inspect(args: argparse.Namespace) -> int:
    opened = _open(args)
    if opened is None:
        return 2
    store, key, services, session_id = opened
    try:
        with _audited(args, services, session_id, ACTION.READ):
            snapshot = run_sync(store.load(key), store.sync_io)
    except StickyctxError as exc:
        print(f"stickyctx: {exc}")
        return 2
    finally:
        store.close()
    summary = snapshot.summary
    report = {
        "status": snapshot.status,
        "version": snapshot.version,
        "messages": [m.as_dict() | {"seq": m.seq, "group": m.group, "tokens": m.tokens}
                     for m in snapshot.messages],
        "stored_tokens": snapshot.total_tokens,
        "encodings": list(snapshot.encodings),
        "summary": None if summary is None else {
            "text": summary.text, "watermark": summary.watermark, "version": summary.version,
            "tokens": summary.tokens},
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0 if snapshot.exists else 1
    print(f"status {snapshot.status}, version {snapshot.version}, "
          f"{len(snapshot.messages)} messages, {snapshot.total_tokens} tokens stored")
    if summary is not None:
        print(f"summary (covers up to #{summary.watermark}, version {summary.version}, "
              f"{summary.tokens} tokens):\n{summary.text}")
    for m in snapshot.messages:
        content = m.content if isinstance(m.content, str) else json.dumps(m.content)
        print(f"#{m.seq} [{m.role}] ({m.tokens} tokens) {content}")
    return 0 if snapshot.exists else 1


def run_purge(args: argparse.Namespace) -> int:
    opened = _open(args)
    if opened is None:
        return 2
    store, key, services, session_id = opened
    try:
        with _audited(args, services, session_id, ACTION.PURGE):
            run_sync(store.destroy(key), store.sync_io)
    finally:
        store.close()
    print("purged: every key of the session is gone; its token now starts a fresh session")
    return 0


__all__ = ["register", "run_inspect", "run_purge"]
