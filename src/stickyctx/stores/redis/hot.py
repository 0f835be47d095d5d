"""The hot tier: a node's bounded in-process cache of decoded histories, validated by version.

A hit costs one short script call that answers ``same`` when the stored version equals the
cached one (no history crosses the network, nothing is decoded). When only appends happened since
(the rewrite counter is unchanged), only the new tail crosses. Entries are replaced, never
mutated except by appending to their list, so snapshots handed out stay valid.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ...core.messages import AppendResult, Snapshot, StoredMessage
from ...core.views import Prefix
from .items import LazyItems
from .schema import Loaded, decode_item, item_header

__all__ = ["HotTier"]


@dataclass(slots=True)
class _Entry:
    meta: dict[str, str]
    items: LazyItems = field(default_factory=lambda: LazyItems((), decode_item))
    _snapshot: Snapshot | None = None

    @property
    def version(self) -> int:
        return int(self.meta.get("v", 0))

    @property
    def rewrite(self) -> int:
        return int(self.meta.get("rv", 0))

    def snapshot(self) -> Snapshot:
        # Built once per entry: an entry is replaced, never changed, when its session changes
        # (its list only grows, and the prefix view keeps the length it had).
        if self._snapshot is None:
            self._snapshot = Loaded("full", self.meta, self.items).snapshot(Prefix(self.items))
        return self._snapshot


class HotTier:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def known(self, tag: str) -> tuple[_Entry, tuple[int, int, int, str, str]] | None:
        """The cached entry and what the load script needs to answer ``same`` or ``tail``."""
        if self.capacity <= 0:
            return None
        with self._lock:
            entry = self._entries.get(tag)
            if entry is None:
                return None
            self._entries.move_to_end(tag)
            last = item_header(entry.items[-1]) if entry.items else ""
            return entry, (entry.version, entry.rewrite, len(entry.items),
                           entry.meta.get("w", ""), last)

    def cached(self, tag: str) -> Snapshot | None:
        with self._lock:
            entry = self._entries.get(tag)
            return entry.snapshot() if entry is not None else None

    def next_seq(self, tag: str) -> int:
        """The sequence number the session's next message gets, as far as this node knows
        (1, a new session's, when it knows nothing)."""
        with self._lock:
            entry = self._entries.get(tag)
            return int(entry.meta.get("n", 1)) if entry is not None else 1

    def apply(self, tag: str, seen: _Entry | None, loaded: Loaded) -> Snapshot | None:
        """Merge a load reply; ``None`` when a ``tail`` no longer lines up (reload in full)."""
        with self._lock:
            if loaded.kind == "same":
                assert seen is not None
                return seen.snapshot()
            if loaded.kind == "full":
                entry = _Entry(dict(loaded.meta), loaded.items)
            else:  # tail: only appends happened since the version we presented
                current = self._entries.get(tag)
                if current is None or current.rewrite != loaded.rewrite:
                    return None
                last = current.items.last_seq()
                first = loaded.items.first_seq()
                if first is not None and first > last + 1:
                    return None  # a gap: the list changed in a way we did not see
                current.items.extend(loaded.items.raw_after(last))
                entry = _Entry(dict(loaded.meta), current.items)
            self._store(tag, entry)
            return entry.snapshot()

    def after_append(self, tag: str, stored: Sequence[StoredMessage], result: AppendResult,
                     encodings: Sequence[str]) -> None:
        """Extend the cached history with our own append when it provably follows it."""
        with self._lock:
            entry = self._entries.get(tag)
            if not stored:
                return
            if entry is None:
                if (result.version == 1 and stored[0].seq == 1 and not result.dropped
                        and not result.previous_write_id):
                    # The session's first write: this node knows its whole history.
                    meta = {"v": "1", "rv": "0", "t": str(result.total_tokens),
                            "enc": ",".join(sorted(set(encodings))), "w": result.write_id,
                            "n": str(stored[-1].seq + 1), "g": str(stored[-1].group),
                            "c": str(stored[-1].cum), "b": str(result.total_bytes)}
                    self._store(tag, _Entry(meta, LazyItems(stored, decode_item)))
                return
            if (entry.version + 1 != result.version or result.dropped
                    or entry.meta.get("w", "") != result.previous_write_id):
                del self._entries[tag]
                return
            meta = dict(entry.meta)
            meta["v"] = str(result.version)
            meta["w"] = result.write_id
            meta["t"] = str(result.total_tokens)
            meta["n"], meta["g"] = str(stored[-1].seq + 1), str(stored[-1].group)
            meta["c"], meta["b"] = str(stored[-1].cum), str(result.total_bytes)
            meta["enc"] = ",".join(sorted({*meta.get("enc", "").split(","), *encodings} - {""}))
            entry.items.extend(stored)
            self._entries[tag] = _Entry(meta, entry.items)

    def invalidate(self, tag: str) -> None:
        with self._lock:
            self._entries.pop(tag, None)

    def _store(self, tag: str, entry: _Entry) -> None:
        if self.capacity <= 0:
            return
        self._entries[tag] = entry
        self._entries.move_to_end(tag)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


def stale(snapshot: Snapshot) -> Snapshot:
    return replace(snapshot, stale=True, tier="local")
