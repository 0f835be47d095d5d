"""The audit trail: one record per access to a session, handed to pluggable sinks.

Every read, write, rotation, erasure and cross-node failover of a session makes exactly one
``AuditRecord`` (who, what, when, which node, outcome), built once and handed to each
``AuditSink``. The built-in sink emits it as an OpenTelemetry log record (an event named
``stickyctx.audit``) through ``opentelemetry-api`` alone: what is exported, and where, is the
application's SDK's choice. A record never carries a raw session id, a token or message text:
the session is named by the same keyed hash as in spans (``session.id``).

The session logic reports its store operations through ``audited`` (which knows which store
primitive is which action), the failover and the command line through ``Auditor.event``. With
``STICKYCTX_AUDIT`` off there is no ``Auditor`` at all and callers pay one ``is None`` test; on,
with no sink that would keep the record (no logs SDK configured), no record is built.

A sink is anything with ``enabled()`` and ``emit(record)``: adding one (a database table, a
file) is a class and a name in ``session/services.py``'s table of sinks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

from opentelemetry._logs import Logger, LoggerProvider, LogRecord, SeverityNumber, get_logger

from .._version import __version__
from ..sansio import Op
from . import ATTR, SCOPE, _configured

__all__ = ["ACTION", "AUDIT", "EVENT", "OUTCOME", "AuditRecord", "AuditSink", "Auditor",
           "OtelAuditSink", "audited"]

T = TypeVar("T")
logger = logging.getLogger(__name__)

EVENT: Final = "stickyctx.audit"  # the OpenTelemetry event name of every audit record


class AUDIT:
    """Attribute names of an audit record (with ``ATTR.SESSION_ID``, ``ATTR.NODE_ID`` ...)."""

    ACTION = "stickyctx.audit.action"
    OUTCOME = "stickyctx.audit.outcome"
    SOURCE = "stickyctx.audit.source"  # request | cli
    MESSAGES = "stickyctx.audit.messages"  # how many messages a write stored
    PRINCIPAL = "user.id"  # the principal the app named (semantic conventions: user.id)


class ACTION:
    READ = "read"
    WRITE = "write"
    POP = "pop"
    FOLD = "fold"
    ROTATE = "rotate"
    CLEAR = "clear"
    DESTROY = "destroy"
    PURGE = "purge"
    FAILOVER = "failover"


class OUTCOME:
    SUCCESS = "success"
    REFUSED = "refused"  # the store answered and did nothing: the session was revoked, expired
    # or gone (a write), or another request's fold won (a fold)
    FAILURE = "failure"  # the operation raised (``error.type`` says what)


# Which store primitive is which action. The others (leases, recounts of token counts,
# heartbeats) change no message and no identity: they are not audited.
STORE_ACTIONS: Final[Mapping[str, str]] = {
    "load": ACTION.READ,
    "begin": ACTION.READ,
    "append": ACTION.WRITE,
    "pop": ACTION.POP,
    "apply_summary": ACTION.FOLD,
    "rotate": ACTION.ROTATE,
    "clear": ACTION.CLEAR,
    "destroy": ACTION.DESTROY,
}

_REFUSED = frozenset({"revoked", "expired"})


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited access. Plain data: a sink stores or sends it as it likes.

    ``session`` is the keyed hash of the session id acted on (after a rotation, the new id;
    ``previous_session`` the one it replaced); ``principal`` is what the app named, if anything.
    """

    action: str
    outcome: str
    session: str
    node: str
    time_ns: int
    principal: str | None = None
    previous_session: str | None = None
    owner: str | None = None  # a failover: the node the session moved to
    source: str = "request"
    messages: int | None = None
    error_type: str | None = None

    def attributes(self) -> dict[str, Any]:
        """The record as OpenTelemetry attributes (absent values left out)."""
        out: dict[str, Any] = {AUDIT.ACTION: self.action, AUDIT.OUTCOME: self.outcome,
                               ATTR.SESSION_ID: self.session, ATTR.NODE_ID: self.node,
                               AUDIT.SOURCE: self.source}
        for name, value in ((AUDIT.PRINCIPAL, self.principal),
                            (ATTR.SESSION_PREVIOUS_ID, self.previous_session),
                            (ATTR.OWNER_ID, self.owner), (AUDIT.MESSAGES, self.messages),
                            (ATTR.ERROR_TYPE, self.error_type)):
            if value is not None:
                out[name] = value
        return out


@runtime_checkable
class AuditSink(Protocol):
    """Where audit records go. ``enabled()`` is asked before each record is built (it must be
    cheap); ``emit`` must not block on I/O (queue the record and write it from elsewhere) and
    should not raise: an exception is logged and the request goes on."""

    def enabled(self) -> bool: ...

    def emit(self, record: AuditRecord) -> None: ...


class OtelAuditSink:
    """Audit records as OpenTelemetry log records: event ``stickyctx.audit``, no body, the
    fields as attributes, the current span's trace context. Enabled once a logger provider is
    injected or an SDK one is set globally (looked up at most once a second until then)."""

    def __init__(self, logger_provider: LoggerProvider | None = None) -> None:
        self._logger: Logger = get_logger(SCOPE, __version__, logger_provider=logger_provider)
        self._active = logger_provider is not None
        self._recheck = 0.0

    def enabled(self) -> bool:
        if self._active:
            return True
        now = time.monotonic()
        if now < self._recheck:
            return False
        from opentelemetry._logs import get_logger_provider

        if _configured(get_logger_provider()):
            self._active = True
            return True
        self._recheck = now + 1.0
        return False

    def emit(self, record: AuditRecord) -> None:
        failed = record.outcome == OUTCOME.FAILURE
        self._logger.emit(LogRecord(
            timestamp=record.time_ns, event_name=EVENT, attributes=record.attributes(),
            severity_number=SeverityNumber.WARN if failed else SeverityNumber.INFO,
            severity_text="WARN" if failed else "INFO"))


class Auditor:
    """This node's audit trail: its sinks, its node id and the clock of its records."""

    __slots__ = ("node", "sinks")

    def __init__(self, node: str, sinks: Sequence[AuditSink]) -> None:
        self.node = node
        self.sinks = tuple(sinks)

    def enabled(self) -> bool:
        return any(sink.enabled() for sink in self.sinks)

    def event(self, action: str, outcome: str, session: str, **fields: Any) -> None:
        """Record one access (``fields``: the optional fields of ``AuditRecord``)."""
        sinks = [sink for sink in self.sinks if sink.enabled()]
        if not sinks:
            return
        record = AuditRecord(action, outcome, session, self.node, time.time_ns(), **fields)
        for sink in sinks:
            try:
                sink.emit(record)
            except Exception:  # an audit sink never fails the request it records
                logger.exception("stickyctx: audit sink %s failed", type(sink).__name__)


def _outcome(method: str, value: Any) -> str | None:
    """The outcome a store primitive's result says; ``None`` for a ``begin`` that found the
    turn busy (nothing was read; the next attempt, or the busy error, is what counts)."""
    if method == "begin" and value.token is None and value.status == "live":
        return None
    if method == "apply_summary" and value is None:  # another request folded first
        return OUTCOME.REFUSED
    status = getattr(value, "status", None)
    if status in _REFUSED or (method == "append" and status not in (None, "live")):
        return OUTCOME.REFUSED  # an append that wrote nothing (the session was gone)
    return OUTCOME.SUCCESS


def audited(auditor: Auditor, op: Op[T], method: str, session: Callable[[], str],
            principal: str | None, attributes: Mapping[str, Any] | None = None) -> Op[T]:
    """Run ``op``, the store primitive ``method`` (``load``, ``append`` ...), and record it
    when it is an audited action.

    ``session`` names the session (its keyed hash, asked only when a record is made);
    ``attributes`` may override it (``ATTR.SESSION_ID``, ``ATTR.SESSION_PREVIOUS_ID``: a
    rotation names the new id and the one it replaces).
    """
    action = STORE_ACTIONS.get(method)
    if action is None or not auditor.enabled():
        return (yield from op)
    extra = attributes or {}
    try:
        value = yield from op
    except GeneratorExit:  # abandoned, never resumed: nothing to say, and no time to say it
        raise
    except BaseException as exc:  # a cancelled request too: the store may have applied it
        auditor.event(action, OUTCOME.FAILURE, extra.get(ATTR.SESSION_ID) or session(),
                      principal=principal, previous_session=extra.get(ATTR.SESSION_PREVIOUS_ID),
                      error_type=type(exc).__name__)
        raise
    outcome = _outcome(method, value)
    if outcome is not None:
        seqs = getattr(value, "seqs", None) if action == ACTION.WRITE else None
        auditor.event(action, outcome, extra.get(ATTR.SESSION_ID) or session(),
                      principal=principal, previous_session=extra.get(ATTR.SESSION_PREVIOUS_ID),
                      messages=None if seqs is None else len(seqs))
    return value
