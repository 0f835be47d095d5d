"""A history as Redis returns it, decoded lazily: only the messages something reads.

A cold load brings the whole list across the network, but a window reads only its newest few
messages; decoding (JSON, and decryption) is most of a load's cost, so each item is decoded the
first time it is read and kept. The list only ever grows at its end (``extend``), so prefix
views of it stay valid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ...core.messages import StoredMessage
from ...core.views import View

__all__ = ["LazyItems", "header_seq"]

Decoder = Callable[[bytes | str], StoredMessage]


def header_seq(raw: bytes | str | StoredMessage) -> int:
    """The sequence number of an item without decoding it."""
    if isinstance(raw, StoredMessage):
        return raw.seq
    if isinstance(raw, bytes):
        return int(raw[: raw.index(b",")])
    return int(raw[: raw.index(",")])


class LazyItems(View[StoredMessage]):
    __slots__ = ("_decode", "_decoded", "_items")

    def __init__(self, raw: Iterable[bytes | str | StoredMessage], decode: Decoder) -> None:
        self._items: list[bytes | str | StoredMessage] = list(raw)
        self._decode = decode
        # Every item below this index is decoded: a span within it is a slice, checked once.
        # Items are only ever decoded (never the reverse) and the list only grows at its end,
        # so any value a thread stores here stays true, whichever thread stores last.
        self._decoded = 0

    def __len__(self) -> int:
        return len(self._items)

    def _at(self, index: int) -> StoredMessage:
        item = self._items[index]
        if not isinstance(item, StoredMessage):
            item = self._decode(item)
            self._items[index] = item  # decoded once; the same value whatever thread wins
        return item

    def _span(self, start: int, stop: int) -> list[StoredMessage]:
        items = self._items
        decoded = self._decoded
        for i in range(max(start, decoded), stop):
            if not isinstance(items[i], StoredMessage):
                self._at(i)
        if start <= decoded < stop:
            self._decoded = stop
        return items[start:stop]  # type: ignore[return-value]  # (every one decoded above)

    def last_seq(self) -> int:
        return header_seq(self._items[-1]) if self._items else 0

    def extend(self, items: Iterable[bytes | str | StoredMessage]) -> None:
        self._items.extend(items)

    def raw_after(self, seq: int) -> list[bytes | str | StoredMessage]:
        """The undecoded items whose sequence number is above ``seq``."""
        return [item for item in self._items if header_seq(item) > seq]

    def first_seq(self) -> int | None:
        return header_seq(self._items[0]) if self._items else None
