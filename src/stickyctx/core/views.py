"""Read-only sequence views, so that loading or extending a long history copies nothing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar, overload

__all__ = ["Concat", "Prefix", "View"]

T = TypeVar("T")


class View(Sequence[T]):
    """A read-only sequence defined by its length and ``_at(index)`` (an index in range):
    negative indices and slices (which copy just the slice) are handled here, once."""

    __slots__ = ()

    def _at(self, index: int) -> T:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        size = len(self)
        if isinstance(index, slice):
            return tuple(self._at(i) for i in range(*index.indices(size)))
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(index)
        return self._at(index)

    def __iter__(self) -> Iterator[T]:
        for i in range(len(self)):
            yield self._at(i)


class Prefix(View[T]):
    """The first ``length`` items of a sequence that is only ever appended to (never mutated)."""

    __slots__ = ("_items", "_length")

    def __init__(self, items: Sequence[T], length: int | None = None) -> None:
        self._items = items
        self._length = len(items) if length is None else length

    def __len__(self) -> int:
        return self._length

    def _at(self, index: int) -> T:
        return self._items[index]


class Concat(View[T]):
    """``base`` followed by ``extra``, without copying ``base``."""

    __slots__ = ("_base", "_extra")

    def __init__(self, base: Sequence[T], extra: Sequence[T]) -> None:
        self._base = base
        self._extra = extra

    def __len__(self) -> int:
        return len(self._base) + len(self._extra)

    def _at(self, index: int) -> T:
        base = len(self._base)
        return self._base[index] if index < base else self._extra[index - base]

    def __iter__(self) -> Iterator[T]:
        yield from self._base
        yield from self._extra
