"""Keeping a request's snapshot of a history current without reloading it (pure).

After its own append, a request extends its snapshot with what it wrote when that provably
follows the snapshot (the store's version moved by exactly one, nothing dropped); else it drops
the snapshot and reloads when next needed. After a change of encoding, the messages counted
with another one are recounted once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .messages import AppendResult, NewMessage, Snapshot, StoredMessage
from .tokenizer import Tokenizer
from .views import Concat

__all__ = ["EMPTY", "absorb", "recount_args", "recounted"]

EMPTY = Snapshot("missing")


def absorb(snapshot: Snapshot, messages: Sequence[NewMessage],
           result: AppendResult) -> Snapshot | None:
    """``snapshot`` extended with what an append of ``messages`` stored, or ``None`` when
    someone else wrote in between (reload when next needed)."""
    if snapshot.version + 1 != result.version or result.dropped:
        return None
    stored = []
    fresh = iter(zip(result.seqs, result.groups, result.cums, strict=True))
    for message, written in zip(messages, result.written, strict=True):
        if written:
            seq, group, cum = next(fresh)
            stored.append(StoredMessage(seq, group, message.role, message.content,
                                        message.tokens, message.encoding, cum, message.size,
                                        message.fields))
    return replace(
        snapshot, status="live", version=result.version,
        messages=Concat(snapshot.messages, stored), total_tokens=result.total_tokens,
        encodings=tuple(sorted({*snapshot.encodings, *(m.encoding for m in stored)})),
    )


def recount_args(snapshot: Snapshot, tokenizer: Tokenizer) -> dict[int, int] | None:
    """New counts (by seq) of the messages counted with another encoding, or ``None``."""
    if not snapshot.messages or set(snapshot.encodings) <= {tokenizer.name}:
        return None
    return {m.seq: tokenizer.count_message(m.as_dict()) for m in snapshot.messages
            if m.encoding != tokenizer.name}


def recounted(snapshot: Snapshot, encoding: str, counts: dict[int, int],
              version: int | None) -> Snapshot:
    """``snapshot`` with the new counts (at ``version`` when the store took them)."""
    cum = snapshot.messages[0].cum - snapshot.messages[0].tokens
    rebuilt = []
    for m in snapshot.messages:
        tokens = counts.get(m.seq, m.tokens)
        cum += tokens
        rebuilt.append(replace(m, tokens=tokens, encoding=encoding, cum=cum))
    return replace(snapshot, version=version if version is not None else snapshot.version,
                   messages=tuple(rebuilt), total_tokens=sum(m.tokens for m in rebuilt),
                   encodings=(encoding,))
