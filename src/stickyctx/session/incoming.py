"""Messages the app appends: validated, numbered within their turn (the idempotency key of
each), and counted, small ones at once, large ones off the event loop.

Counting is CPU work proportional to the text (a 1 MB message takes 0.1 to 0.3 s with tiktoken).
Done inside an ASGI request, it would stall every other request of the worker for that long. A
message over ``INLINE_BYTES`` is counted in one ``Offload`` step instead: the async driver runs it
in a worker thread (tiktoken releases the GIL while it encodes), the sync driver in place (a WSGI
request has its thread already).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core.messages import NewMessage, build_message, dedupe_key
from ..core.tokenizer import Tokenizer
from ..errors import InvalidMessageError
from ..sansio import Offload, Op
from .services import Services

__all__ = ["INLINE_BYTES", "Incoming", "counted"]

INLINE_BYTES = 16_384  # a message up to this size (its JSON form) is counted in place: < 5 ms


def _count(tokenizer: Tokenizer, messages: Sequence[NewMessage]) -> list[int]:
    return [tokenizer.count_message(m.payload()) for m in messages]


def counted(messages: list[NewMessage], tokenizer: Tokenizer) -> Op[list[NewMessage]]:
    """``messages`` (built with ``count_up_to=INLINE_BYTES``: the small ones counted already)
    with the large ones counted too, in one ``Offload`` step."""
    large = [m for m in messages if m.size > INLINE_BYTES]
    if not large:
        return messages
    found = iter((yield Offload(_count, (tokenizer, large), background=True)))
    return [m.with_tokens(next(found)) if m.size > INLINE_BYTES else m for m in messages]


class Incoming:
    """One request's new messages. The n-th message of a turn gets the same idempotency key
    when the turn is retried, so a retry's messages are recognised and stored once."""

    __slots__ = ("_numbers", "services")

    def __init__(self, services: Services) -> None:
        self.services = services
        self._numbers: dict[str, int] = {}

    def _build(self, role: Any, content: Any, fields: Mapping[str, Any],
               turn: str | None) -> NewMessage:
        dedupe = None
        if turn is not None:
            n = self._numbers[turn] = self._numbers.get(turn, -1) + 1
            dedupe = dedupe_key(turn, n)
        return build_message(role, content, fields, self.services.tokenizer,
                             self.services.settings.max_message_bytes, dedupe,
                             count_up_to=INLINE_BYTES)

    def built(self, parts: Iterable[tuple[Any, Any, Mapping[str, Any]]],
              turn: str | None) -> Op[list[NewMessage]]:
        """``(role, content, fields)`` of each message, as messages ready to store."""
        if turn is not None and not isinstance(turn, str):  # (from a request body, often)
            raise InvalidMessageError(f"turn_id must be a string, not {type(turn).__name__}")
        messages = [self._build(role, content, fields, turn) for role, content, fields in parts]
        return (yield from counted(messages, self.services.tokenizer))
