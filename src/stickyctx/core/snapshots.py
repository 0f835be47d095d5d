"""Keeping a request's snapshot of a history current without reloading it (pure).

After its own append, a request extends its snapshot with what it wrote when that provably
follows the snapshot (the store's version moved by exactly one, nothing dropped); else it drops
the snapshot and reloads when next needed. After a change of encoding, the messages counted
with another one are recounted once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from .messages import GROUP_OPENERS, AppendResult, NewMessage, Snapshot, StoredMessage
from .tokenizer import Tokenizer
from .views import appended, without

__all__ = ["EMPTY", "absorb", "committed", "recount_args", "recounted", "staged"]

EMPTY = Snapshot("missing")


def _grown(snapshot: Snapshot, version: int, messages: Sequence[StoredMessage], total: int,
           size: int, next_seq: int, group: int, cum: int, encodings: tuple[str, ...]) -> Snapshot:
    """``snapshot`` live at ``version`` with a new history and its counters; the rest (summary,
    tier, staleness) kept. Built directly: ``dataclasses.replace`` costs three times as much,
    and a turn makes two or three of these."""
    return Snapshot("live", version, messages, total, snapshot.summary, encodings,
                    snapshot.stale, snapshot.tier, next_seq, group, cum, size, snapshot.follow)


def _encodings(known: tuple[str, ...], added: Iterable[StoredMessage]) -> tuple[str, ...]:
    """``known`` (sorted) with the encodings of ``added``; ``known`` itself when none is new."""
    new = {m.encoding for m in added}
    return known if new.issubset(known) else tuple(sorted({*known, *new}))


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
    newest = stored[-1] if stored else None
    return _grown(snapshot, result.version, appended(snapshot.messages, stored),
                  result.total_tokens, result.total_bytes,
                  newest.seq + 1 if newest else snapshot.next_seq,
                  newest.group if newest else snapshot.group,
                  newest.cum if newest else snapshot.cum,
                  _encodings(snapshot.encodings, stored))


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


def staged(snapshot: Snapshot, messages: Sequence[NewMessage], stored: frozenset[str],
           max_tokens: int, max_bytes: int) -> tuple[Snapshot, AppendResult]:
    """``snapshot`` with ``messages`` appended as the store will append them at the commit
    (the same sequence numbers, groups and cumulative counts, and the same oldest whole groups
    dropped to keep the session under its ceilings), and the append's result as it will be; a
    message whose idempotency key is in ``stored`` is a retry: not appended."""
    seq, group, cum = snapshot.next_seq, snapshot.group, snapshot.cum
    added: list[StoredMessage] = []
    written: list[bool] = []
    for message in messages:
        if message.dedupe is not None and message.dedupe in stored:
            written.append(False)
            continue
        if message.role in GROUP_OPENERS or group == 0:
            group = seq
        cum += message.tokens
        added.append(StoredMessage(seq, group, message.role, message.content, message.tokens,
                                   message.encoding, cum, message.size, message.fields))
        written.append(True)
        seq += 1
    total, size = snapshot.total_tokens, snapshot.size
    for m in added:
        total += m.tokens
        size += m.size
    history = appended(snapshot.messages, added)
    dropped = 0
    if added:  # the ceiling, as the store enforces it (never the newest group)
        while (total > max_tokens or size > max_bytes) and dropped < len(history) \
                and history[dropped].group != group:
            oldest = history[dropped].group
            while dropped < len(history) and history[dropped].group == oldest:
                total -= history[dropped].tokens
                size -= history[dropped].size
                dropped += 1
    result = AppendResult("live", snapshot.version, tuple([m.seq for m in added]),
                          tuple([m.group for m in added]), total, written.count(False),
                          tuple(written), tuple([m.cum for m in added]), dropped,
                          total_bytes=size)
    if not added:
        return snapshot, result
    return _grown(snapshot, snapshot.version, without(history, dropped), total, size, seq,
                  group, cum, _encodings(snapshot.encodings, added)), result


def committed(snapshot: Snapshot, predicted: Sequence[int],
              result: AppendResult) -> Snapshot | None:
    """The staged ``snapshot`` once its commit answered ``result``: current at the new version
    when the store wrote what was staged where it was staged (``predicted``: the staged
    sequence numbers) and kept what the staged snapshot kept, else ``None`` (reload when
    needed)."""
    if (result.status != "live" or list(result.seqs) != list(predicted)
            or result.version != snapshot.version + 1
            or (result.total_tokens, result.total_bytes) != (snapshot.total_tokens,
                                                             snapshot.size)):
        return None
    return _grown(snapshot, result.version, snapshot.messages, snapshot.total_tokens,
                  snapshot.size, snapshot.next_seq, snapshot.group, snapshot.cum,
                  snapshot.encodings)
