"""Each session's data key (encryption at rest, see ``stores.crypto``), cached per node.

A session's payloads are sealed with its own data key (DEK), stored wrapped in its meta. This
node keeps the unwrapped DEKs of the sessions it has seen (bounded), opens what it loads with
them, and re-wraps a DEK under the newest ring key when it was wrapped by an older one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from ...errors import StoreError, TamperedDataError
from ..crypto import DataKey, KeyRing
from .schema import Codec, _same

__all__ = ["DataKeys"]


def _plain(text: str, kind: str, position: int) -> str:
    """A session without a data key holds plaintext only: a sealed item in it was moved there
    (or its key removed from the session)."""
    if text.startswith("~"):
        raise TamperedDataError(f"stored {'summary' if kind == 's' else 'message'} {position} "
                                "is sealed, but its session has no data key")
    return text


class DataKeys:
    def __init__(self, ring: KeyRing | None, capacity: int) -> None:
        self.ring = ring
        self.capacity = max(1024, capacity)
        self._keys: OrderedDict[str, DataKey] = OrderedDict()  # session tag -> its DEK

    def get(self, tag: str) -> DataKey | None:
        return self._keys.get(tag)

    def remember(self, tag: str, data_key: DataKey) -> DataKey:
        self._keys[tag] = data_key
        self._keys.move_to_end(tag)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)
        return data_key

    def opener(self, tag: str) -> Callable[[dict[str, str]], Codec]:
        """How to open the payloads of a session, given its loaded meta."""
        def opener(meta: dict[str, str]) -> Codec:
            wrapped = meta.get("dek")
            if not wrapped:
                return _same if self.ring is None else _plain
            if self.ring is None:
                raise StoreError("the session is encrypted and STICKYCTX_ENCRYPTION_KEY is not "
                                 "set")
            cached = self._keys.get(tag)
            if cached is None or cached.wrapped != wrapped:
                cached = self.remember(tag, self.ring.unwrap(wrapped))
            return cached.open
        return opener

    def for_append(self, tag: str, first: int) -> DataKey | None:
        """The DEK to seal an append with: the session's, or a new one whose first sealed
        position is ``first`` (kept only if the session turns out to have none yet)."""
        if self.ring is None:
            return None
        return self._keys.get(tag) or self.ring.new_data_key(first)

    def new(self, first: int) -> DataKey:
        assert self.ring is not None
        return self.ring.new_data_key(first)

    def known(self, data_key: DataKey, tag: str) -> bool:
        """Whether ``data_key`` is the session's as this node knows it (not a new one)."""
        return self._keys.get(tag) is data_key

    def adopt(self, tag: str, wrapped: str) -> DataKey:
        """The session's own DEK, when an append was sealed with another one."""
        assert self.ring is not None
        return self.remember(tag, self.ring.unwrap(wrapped))

    def stale_wrap(self, tag: str) -> DataKey | None:
        """The session's DEK when it is wrapped by an older ring key (to re-wrap)."""
        cached = self._keys.get(tag)
        if self.ring is None or cached is None or not self.ring.needs_rewrap(cached.wrapped):
            return None
        return cached

    def rewrapped(self, data_key: DataKey) -> DataKey:
        assert self.ring is not None
        return self.ring.rewrap(data_key)
