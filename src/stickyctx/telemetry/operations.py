"""Store operations seen by telemetry: a span and metrics around one ``Op`` of a store.

``observed(telemetry, op, ...)`` runs ``op`` (a store primitive's operation, named by its
method: ``load``, ``append``, ...) inside ``Telemetry.operation`` and adds what its result says
(counts, tiers, never content). With no SDK configured, callers pass ``None`` and pay one
generator frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..sansio import Op
from . import ATTR, Telemetry

__all__ = ["observed"]

T = TypeVar("T")


def _annotate(name: str, value: Any, extra: dict[str, Any]) -> None:
    if name == "acquire_lease":
        extra[ATTR.LEASE_ACQUIRED] = value is not None
    elif name == "begin":  # a turn's lease and load in one step (a ``Begun``)
        extra[ATTR.LEASE_ACQUIRED] = value.token is not None
        value = value.snapshot
    tier = getattr(value, "tier", None)
    if tier is not None:
        extra[ATTR.TIER] = tier
        extra[ATTR.STALE] = bool(getattr(value, "stale", False))
        messages = getattr(value, "messages", None)
        if messages is not None:
            extra[ATTR.MESSAGES_AFTER] = len(messages)
    duplicates = getattr(value, "duplicates", None)
    if duplicates:
        extra[ATTR.DUPLICATES] = duplicates


def observed(telemetry: Telemetry | None, op: Op[T], session_hash: Callable[[], str] | None,
             attributes: Mapping[str, Any] | None = None) -> Op[T]:
    if telemetry is None:
        return (yield from op)
    name: str = getattr(op, "__name__", "operation")
    with telemetry.operation(name, session_hash) as extra:
        if attributes:
            extra.update(attributes)
        value = yield from op
        _annotate(name, value, extra)
    return value
