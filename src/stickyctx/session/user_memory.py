"""A principal's memory (shared by all their conversations) and each conversation's state,
as sans-I/O operations: the part of ``UserSpace`` (``users``) that is key-value data."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ..core.principals import (
    ConversationRecord,
    MemoryItem,
    PrincipalRef,
    is_valid_memory_key,
    pinned_facts,
)
from ..core.storekeys import SessionKey
from ..errors import InvalidMessageError, MemoryFullError
from ..sansio import Op
from ..telemetry.operations import observed

if TYPE_CHECKING:
    from ..stores.base import Store
    from .services import Services

__all__ = ["ANY", "MemoryAndState"]

T = TypeVar("T")

_MAX_MEMORY_VALUE = 4096  # characters of one memory item


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Final = _Any()  # ``set_state(..., expected=ANY)``: write whatever the current value


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidMessageError(f"state values must be JSON: {exc}") from None


class MemoryAndState:
    __slots__ = ()
    services: Services
    store: Store
    ref: PrincipalRef

    @property
    def _ttl(self) -> float:
        return float(self.services.settings.user_ttl)

    def _find(self, conversation_id: str) -> Op[tuple[str, SessionKey, ConversationRecord]]:
        raise NotImplementedError

    def _call(self, op: Op[T]) -> Op[T]:
        """A store operation, seen by telemetry (``stickyctx.store <primitive>`` spans, the
        store error counter) when an SDK is configured; never names the principal."""
        return observed(self.services.telemetry.observer(), op, None)

    def memory(self, /) -> Op[dict[str, str]]:
        """The principal's memory items (key → value), shared by all their conversations."""
        items = yield from self._call(self.store.memory_get(self.ref.key))
        return {name: item.value for name, item in sorted(items.items())}

    def remember(self, /, key: str, value: str, *, pinned: bool = True) -> Op[int]:
        """Set a memory item; its size in tokens is returned. Pinned items enter every window
        of the principal's conversations. ``MemoryFullError`` when it does not fit
        ``STICKYCTX_MEMORY_TOKENS``."""
        if not is_valid_memory_key(key):
            raise InvalidMessageError("a memory key is 1 to 64 letters, digits or _.:-")
        if not isinstance(value, str) or len(value) > _MAX_MEMORY_VALUE:
            raise InvalidMessageError("a memory value is a string of at most 4096 characters")
        tokens = self.services.count_text(value)
        limit = self.services.settings.memory_tokens
        item = MemoryItem(value, tokens, pinned, self.services.clock())
        done = yield from self._call(self.store.memory_put(
            self.ref.key, key, item, max_tokens=limit, ttl=self._ttl))
        if not done:
            raise MemoryFullError(tokens, limit)
        return tokens

    def forget(self, /, key: str) -> Op[None]:
        """Delete a memory item (nothing happens when there is none)."""
        if is_valid_memory_key(key):
            yield from self._call(self.store.memory_put(
                self.ref.key, key, None, max_tokens=0, ttl=self._ttl))

    def facts(self) -> Op[str | None]:
        """The pinned memory as one system message's text (see ``core.principals``)."""
        items = yield from self._call(self.store.memory_get(self.ref.key))
        return pinned_facts(items)

    def state(self, /, conversation_id: str) -> Op[dict[str, Any]]:
        """The conversation's state (key → JSON value)."""
        _, key, _ = yield from self._find(conversation_id)
        raw = yield from self._call(self.store.state_get(key))
        return {name: json.loads(value) for name, value in sorted(raw.items())}

    def set_state(self, /, conversation_id: str, key: str, value: Any, *,
                  expected: Any = ANY) -> Op[bool]:
        """Compare-and-set one state field: written (True) only if its current value is
        ``expected`` (``None``: absent); ``expected=ANY`` writes unconditionally. A ``value`` of
        ``None`` deletes the field."""
        if not is_valid_memory_key(key):
            raise InvalidMessageError("a state key is 1 to 64 letters, digits or _.:-")
        _, skey, _ = yield from self._find(conversation_id)
        check = expected is not ANY
        return (yield from self._call(self.store.state_cas(
            skey, key, None if value is None else _dump(value),
            expected=None if not check or expected is None else _dump(expected),
            check=check, ttl=self._ttl)))

