"""One session's history in the embedded store: what each primitive does to it (no locking:
the store holds its lock around every call).

Message lists are replaced, never mutated in place, when messages leave (a ceiling, a pop, a
clear, a summary that deletes what it folded): loads hand out O(1) prefix views of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..core.messages import GROUP_OPENERS, AppendResult, NewMessage, StoredMessage, Summary
from ..errors import IdempotencyKeyReusedError

__all__ = ["History"]


@dataclass(slots=True)
class History:
    created: float
    touched: float
    version: int = 0
    next_seq: int = 1
    group: int = 0
    total: int = 0  # tokens of the stored messages
    size: int = 0  # bytes of the stored messages
    cum: int = 0  # cumulative tokens ever appended (positions for block eviction)
    messages: list[StoredMessage] = field(default_factory=list)
    dedupe: set[str] = field(default_factory=set)
    fingerprints: dict[str, str] = field(default_factory=dict)  # dedupe key -> its message's
    summary: Summary | None = None
    encodings: set[str] = field(default_factory=set)

    def append(self, messages: Sequence[NewMessage], max_tokens: int,
               max_bytes: int) -> AppendResult:
        seqs: list[int] = []
        groups: list[int] = []
        cums: list[int] = []
        written: list[bool] = []
        for message in messages:  # a reused key with another message: nothing is written
            known = self.fingerprints.get(message.dedupe) if message.dedupe else None
            if known is not None and message.fingerprint and known != message.fingerprint:
                raise IdempotencyKeyReusedError()
        for message in messages:
            if message.dedupe is not None and message.dedupe in self.dedupe:
                written.append(False)
                continue
            seq = self.next_seq
            self.next_seq += 1
            if message.role in GROUP_OPENERS or self.group == 0:
                self.group = seq
            self.cum += message.tokens
            self.messages.append(StoredMessage(
                seq, self.group, message.role, message.content, message.tokens,
                message.encoding, self.cum, message.size, message.fields,
            ))
            self.total += message.tokens
            self.size += message.size
            self.encodings.add(message.encoding)
            if message.dedupe is not None:
                self.dedupe.add(message.dedupe)
                if message.fingerprint:
                    self.fingerprints[message.dedupe] = message.fingerprint
            seqs.append(seq)
            groups.append(self.group)
            cums.append(self.cum)
            written.append(True)
        dropped = self._enforce_ceiling(max_tokens, max_bytes) if seqs else 0
        if seqs:
            self.version += 1
        return AppendResult(
            "live", self.version, tuple(seqs), tuple(groups), self.total,
            written.count(False), tuple(written), tuple(cums), dropped, total_bytes=self.size,
        )

    def _enforce_ceiling(self, max_tokens: int, max_bytes: int) -> int:
        """Drop the oldest whole groups (never the newest) until the session fits its ceiling."""
        if self.total <= max_tokens and self.size <= max_bytes:
            return 0
        messages = self.messages
        cut = 0
        newest_group = messages[-1].group
        while cut < len(messages) and messages[cut].group != newest_group and (
            self.total > max_tokens or self.size > max_bytes
        ):
            group = messages[cut].group
            while cut < len(messages) and messages[cut].group == group:
                self.total -= messages[cut].tokens
                self.size -= messages[cut].size
                cut += 1
        self.messages = messages[cut:]
        return cut

    def clear(self) -> int:
        self.messages = []  # dedupe keys stay: a late retry must not come back
        self.total = self.size = self.group = 0
        self.encodings = set()
        self.summary = None
        self.version += 1
        return self.version

    def pop(self) -> StoredMessage | None:
        if not self.messages:
            return None
        message = self.messages[-1]
        self.messages = self.messages[:-1]
        self.total -= message.tokens
        self.size -= message.size
        self.group = self.messages[-1].group if self.messages else 0
        self.version += 1
        return message

    def apply_summary(self, text: str, tokens: int, watermark: int, expected_watermark: int,
                      delete_folded: bool) -> Summary | None:
        current = self.summary.watermark if self.summary is not None else 0
        if current != expected_watermark or watermark <= current:
            return None
        version = self.summary.version + 1 if self.summary is not None else 1
        self.summary = Summary(text, watermark, version, tokens)
        if delete_folded:
            keep = [m for m in self.messages if m.seq > watermark]
            for m in self.messages[: len(self.messages) - len(keep)]:
                self.total -= m.tokens
                self.size -= m.size
            self.messages = keep
        self.version += 1
        return self.summary

    def recount(self, encoding: str, tokens: dict[int, int]) -> int:
        cum = self.messages[0].cum - self.messages[0].tokens if self.messages else 0
        rebuilt = []
        for m in self.messages:
            count = tokens.get(m.seq, m.tokens)
            cum += count
            rebuilt.append(replace(m, tokens=count, encoding=encoding, cum=cum))
        self.total = sum(m.tokens for m in rebuilt)
        self.cum = cum
        self.messages = rebuilt
        self.encodings = {encoding} if rebuilt else set()
        self.version += 1
        return self.version
