"""One session's state as stored in its row: the embedded store's ``History``, as JSON, sealed
with the session's data key when encryption at rest is on (``stores.crypto``).

The PostgreSQL store keeps a session in one row and applies each primitive to its ``History``
exactly as the embedded store does, under the session's lock: one implementation of the
semantics (ceilings, groups, idempotency keys and their fingerprints, summaries, recounts).
"""

from __future__ import annotations

import json
from typing import Any

from ...core.messages import StoredMessage, Summary
from ...errors import StoreError, TamperedDataError
from ..crypto import KeyRing
from ..memory_history import History

__all__ = ["Sealer", "decode", "encode"]


def encode(history: History) -> str:
    summary = history.summary
    return json.dumps({
        "v": history.version, "n": history.next_seq, "g": history.group, "t": history.total,
        "b": history.size, "c": history.cum,
        "m": [[m.seq, m.group, m.role, m.content, m.tokens, m.encoding, m.cum, m.size,
               dict(m.fields)] for m in history.messages],
        "d": sorted(history.dedupe), "f": history.fingerprints,
        "s": None if summary is None else [summary.text, summary.watermark, summary.version,
                                            summary.tokens],
        "e": sorted(history.encodings),
    }, separators=(",", ":"), ensure_ascii=False)


def decode(text: str, created: float, touched: float) -> History:
    data: dict[str, Any] = json.loads(text)
    summary = data["s"]
    return History(
        created=created, touched=touched, version=data["v"], next_seq=data["n"],
        group=data["g"], total=data["t"], size=data["b"], cum=data["c"],
        messages=[StoredMessage(m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8])
                  for m in data["m"]],
        dedupe=set(data["d"]), fingerprints=dict(data["f"]),
        summary=None if summary is None else Summary(*summary),
        encodings=set(data["e"]),
    )


class Sealer:
    """Seals and opens state with the session's data key (a new one for a new session; one
    wrapped by an older ring key is re-wrapped under the newest when the row is written)."""

    def __init__(self, ring: KeyRing | None) -> None:
        self.ring = ring

    def seal(self, text: str, wrapped: str | None) -> tuple[bytes, str | None]:
        """The stored bytes and the wrapped data key to store beside them."""
        if self.ring is None:
            return text.encode(), None
        if wrapped is None:
            key = self.ring.new_data_key()
        else:
            key = self.ring.unwrap(wrapped)
            if self.ring.needs_rewrap(wrapped):
                key = self.ring.rewrap(key)
        return key.seal(text, "r", 0).encode(), key.wrapped  # one row: the whole session

    def open(self, stored: bytes, wrapped: str | None) -> str:
        text = bytes(stored).decode()
        if wrapped is None:
            if self.ring is not None and text.startswith("~"):
                raise TamperedDataError("the session's row is sealed, but it has no data key")
            return text
        if self.ring is None:
            raise StoreError("the session is encrypted and STICKYCTX_ENCRYPTION_KEY is not set")
        return self.ring.unwrap(wrapped).open(text, "r", 0)
