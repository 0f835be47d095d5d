"""Read-only sequence views, so that loading or extending a long history copies nothing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain
from typing import TypeVar, overload

__all__ = ["Concat", "Prefix", "Suffix", "View", "appended", "without"]

T = TypeVar("T")


class View(Sequence[T]):
    """A read-only sequence defined by its length and ``_at(index)`` (an index in range):
    negative indices and slices (which copy just the slice) are handled here, once."""

    __slots__ = ()

    def _at(self, index: int) -> T:
        raise NotImplementedError

    def _span(self, start: int, stop: int) -> Sequence[T]:
        """Items ``start`` to ``stop`` (in range, ``start <= stop``): by index here; the views
        over lists override it with the lists' own slicing (a window is one such span)."""
        return tuple(self._at(i) for i in range(start, stop))

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        size = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(size)
            if step == 1:
                return self._span(start, max(start, stop))
            return tuple(self._at(i) for i in range(start, stop, step))
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(index)
        return self._at(index)

    def __iter__(self) -> Iterator[T]:
        # One span, copied by the lists underneath, not a Python call per item per level of
        # views (iterating a loaded history through a cut of it cost 2 us a message).
        return iter(self._span(0, len(self)))


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

    def _span(self, start: int, stop: int) -> Sequence[T]:
        return self._items[start:stop]


class Concat(View[T]):
    """``base`` followed by ``extra``, without copying ``base``."""

    __slots__ = ("_base", "_extra", "_split")

    def __init__(self, base: Sequence[T], extra: Sequence[T]) -> None:
        self._base = base
        self._extra = extra
        self._split = len(base)  # neither part changes length under a view (see ``appended``)

    def __len__(self) -> int:
        return self._split + len(self._extra)

    def _at(self, index: int) -> T:
        split = self._split
        return self._base[index] if index < split else self._extra[index - split]

    def _span(self, start: int, stop: int) -> Sequence[T]:
        split = self._split
        if stop <= split:
            return self._base[start:stop]
        if start >= split:
            return self._extra[start - split:stop - split]
        return (*self._base[start:split], *self._extra[:stop - split])

    def __iter__(self) -> Iterator[T]:
        return chain(self._base, self._extra)  # not a generator: no Python frame per item


class Suffix(View[T]):
    """A sequence without its first ``start`` items (the oldest messages a ceiling dropped)."""

    __slots__ = ("_items", "_start")

    def __init__(self, items: Sequence[T], start: int) -> None:
        self._items = items
        self._start = start

    def __len__(self) -> int:
        return max(0, len(self._items) - self._start)

    def _at(self, index: int) -> T:
        return self._items[self._start + index]

    def _span(self, start: int, stop: int) -> Sequence[T]:
        return self._items[self._start + start:self._start + stop]


def appended(items: Sequence[T], added: Sequence[T]) -> Sequence[T]:
    """``items`` followed by ``added``, copying neither: a history appended to again and
    again (every staged message of a long turn) stays one ``Concat`` deep, because the new
    items go on the end of the list that the previous call made, when that list has not been
    extended past ``items`` since (older views keep their own length)."""
    start = 0
    if isinstance(items, Suffix):
        start, items = items._start, items._items
    tail = items._extra if isinstance(items, Concat) else None
    if (isinstance(tail, Prefix) and type(tail._items) is list
            and len(tail._items) == len(tail) and isinstance(items, Concat)):
        tail._items.extend(added)
        joined: Sequence[T] = Concat(items._base, Prefix(tail._items))
    else:
        joined = Concat(items, Prefix(list(added)))
    return without(joined, start)


def without(items: Sequence[T], start: int) -> Sequence[T]:
    """``items`` without its first ``start`` items, one ``Suffix`` deep however often cut."""
    if start <= 0:
        return items
    if isinstance(items, Suffix):
        return Suffix(items._items, items._start + start)
    return Suffix(items, start)
