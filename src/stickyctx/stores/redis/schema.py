"""Everything the two Redis adapters share: key names, Lua scripts, arguments and replies.

Pure functions over plain data: the sync and the async adapter only send what these build and
hand back what Redis answers. Scripts are data (``lua/*.lua``), each prefixed with
``lua/_prelude.lua``, loaded once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

from ...core.messages import GROUP_OPENERS, AppendResult, NewMessage, Snapshot, StoredMessage
from ...core.messages import Summary as SummaryRecord
from ...core.nodes import Announcement
from ...core.storekeys import SessionKey
from ...errors import FencedError, IdempotencyKeyReusedError, TamperedDataError
from .failures import DataKeyMismatch, Reseal
from .items import LazyItems

__all__ = ["KEYS", "Limits", "append_args", "decode_item", "encode_item", "parse_append",
           "parse_load", "script"]

# One letter per part keeps keys short; the {tag} is the keyed hash of the session id.
META, MESSAGES, DEDUPE, TURN_LEASE, SUMMARY_LEASE, TOMBSTONE, FENCE = (
    "s", "m", "d", "lt", "ls", "x", "f")
KEYS = (META, MESSAGES, DEDUPE, TURN_LEASE, SUMMARY_LEASE, TOMBSTONE, FENCE)
LEASES = {"turn": TURN_LEASE, "summary": SUMMARY_LEASE}


@dataclass(frozen=True, slots=True)
class Limits:
    """Expiry and ceilings, in the units the scripts use (milliseconds, tokens, bytes)."""

    idle_ms: int
    absolute_ms: int
    max_tokens: int
    max_bytes: int
    refresh_ms: int  # reads refresh the expiry at most this often
    replicas: int = 0  # an append is acknowledged only once this many replicas have it
    replica_timeout_ms: int = 1000


@cache
def script(name: str) -> str:
    folder = resources.files("stickyctx.stores.redis") / "lua"
    prelude = (folder / "_prelude.lua").read_text()
    return prelude + "\n" + (folder / f"{name}.lua").read_text()


def keys(key: SessionKey, *parts: str) -> list[str]:
    return [key.key(part) for part in parts]


# Items ----------------------------------------------------------------------------------------

# Seals or opens a payload, given what it is (``m`` a message, ``s`` the summary) and its
# position (sequence number, watermark); the identity without encryption.
Codec = Callable[[str, str, int], str]


def _same(text: str, kind: str, position: int) -> str:
    return text


def payload(message: NewMessage, seq: int, seal: Codec = _same) -> str:
    body = message.json or json.dumps(message.payload(), separators=(",", ":"),
                                      ensure_ascii=False)
    return seal(body, "m", seq)


def encode_item(m: StoredMessage, seal: Codec = _same) -> str:
    body = seal(json.dumps(m.as_dict(), separators=(",", ":"), ensure_ascii=False), "m", m.seq)
    return f"{m.seq},{m.group},{m.cum},{m.tokens},{m.size},{m.encoding}\n{body}"


def decode_item(raw: bytes | str, open_: Codec = _same) -> StoredMessage:
    text = raw.decode() if isinstance(raw, bytes) else raw
    head, _, body = text.partition("\n")
    seq, group, cum, tokens, size, encoding = head.split(",", 5)
    data = json.loads(open_(body, "m", int(seq)))
    role = data.pop("role")
    content = data.pop("content", None)
    return StoredMessage(int(seq), int(group), role, content, int(tokens), encoding, int(cum),
                         int(size), data)


# Load -----------------------------------------------------------------------------------------

def load_args(limits: Limits, known: tuple[int, int, int, str, str] | None) -> list[Any]:
    """``known``: the cached version, rewrite counter, item count, write id and the header of
    the last cached item, so the script can answer ``same`` or ``tail`` only when provably so."""
    version, rewrite, count, write_id, last = known if known is not None else (
        -1, -1, -1, "", "")
    return [limits.idle_ms, limits.absolute_ms, version, rewrite, count, limits.refresh_ms,
            write_id, last]


def item_header(m: StoredMessage) -> str:
    """The start of a stored item that identifies it (``seq,group,cum,tokens,size,``)."""
    return f"{m.seq},{m.group},{m.cum},{m.tokens},{m.size},"


@dataclass(frozen=True, slots=True)
class Loaded:
    kind: str  # revoked | missing | same | tail | full
    meta: dict[str, str]
    items: LazyItems

    @property
    def version(self) -> int:
        return int(self.meta.get("v", 0))

    @property
    def rewrite(self) -> int:
        return int(self.meta.get("rv", 0))

    def snapshot(self, messages: Sequence[StoredMessage]) -> Snapshot:
        meta = self.meta
        summary = None
        if "sw" in meta:
            summary = SummaryRecord(meta.get("sum", ""), int(meta["sw"]), int(meta.get("sv", 0)),
                                    int(meta.get("st", 0)))
        encodings = tuple(sorted(e for e in meta.get("enc", "").split(",") if e))
        return Snapshot("live", self.version, messages, int(meta.get("t", 0)), summary, encodings,
                        next_seq=int(meta.get("n", 1)), group=int(meta.get("g", 0)),
                        cum=int(meta.get("c", 0)), size=int(meta.get("b", 0)))


def follow(reply: Sequence[Any]) -> str:
    """The follow pointer of a ``revoked`` reply (a rotation within its grace), or ''."""
    return text(reply[1]) if len(reply) > 1 and text(reply[0]) == "revoked" else ""


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_load(reply: Sequence[Any],
               opener: Callable[[dict[str, str]], Codec] | None = None) -> Loaded:
    """Parse a load reply; ``opener`` gives the payload decoder for the session's meta."""
    kind = text(reply[0])
    if kind in ("revoked", "missing", "same"):
        return Loaded(kind, {}, LazyItems((), decode_item))
    meta = {str(k): str(v) for k, v in json.loads(reply[1]).items()}
    open_ = opener(meta) if opener is not None else _same
    if "sum" in meta:
        meta["sum"] = open_(meta["sum"], "s", int(meta.get("sw", 0)))
    if open_ is not _same:
        contiguous(reply[2:])
    return Loaded(kind, meta, LazyItems(reply[2:], lambda raw: decode_item(raw, open_)))


def contiguous(items: Sequence[Any]) -> None:
    """An encrypted session's items follow each other by sequence number: each is bound to
    its own, so a gap or a repeat means an item was removed or replayed in the store."""
    expected = None
    for raw in items:
        head = raw[:24] if isinstance(raw, bytes) else raw[:24].encode()
        seq = int(head.split(b",", 1)[0])
        if expected is not None and seq != expected:
            raise TamperedDataError(f"stored message {expected} is missing or out of order")
        expected = seq + 1


# Append ---------------------------------------------------------------------------------------

def append_args(messages: Sequence[NewMessage], limits: Limits, *, created: float, create: bool,
                fence: int | None, data_key: str = "", seal: Codec = _same,
                release: bool = False, first_seq: int | None = None) -> list[Any]:
    """``first_seq``: the sequence number the first message will get, which the payloads are
    sealed for (encryption binds each to its position): the script refuses to write when the
    session's next number differs, or when a message is already stored (``Reseal``)."""
    args: list[Any] = [int(created * 1000), 1 if create else 0,
                       "" if fence is None else fence, limits.idle_ms, limits.absolute_ms,
                       limits.max_tokens, limits.max_bytes, len(messages), data_key,
                       1 if release and fence is not None else 0,
                       "" if first_seq is None else first_seq]
    for i, m in enumerate(messages):
        dedupe = f"{m.dedupe}|{m.fingerprint}" if m.dedupe and m.fingerprint else m.dedupe or ""
        args += [dedupe, 1 if m.role in GROUP_OPENERS else 0, m.tokens, m.size,
                 m.encoding, payload(m, (first_seq or 0) + i, seal)]
    return args


def parse_append(reply: Sequence[Any], fence: int | None) -> AppendResult:
    """The result; raises ``DataKeyMismatch`` when the session has another data key."""
    status = text(reply[0])
    if status == "dek":
        raise DataKeyMismatch(text(reply[1]))
    if status == "reseal":
        raise Reseal(int(reply[1]), tuple(f == "1" for f in text(reply[2])))
    if status == "reused":
        raise IdempotencyKeyReusedError()
    if status == "fenced":
        current = text(reply[1])
        raise FencedError(fence or 0, int(current) if current else None)
    if status != "live":
        return AppendResult(status, follow=follow(reply))  # type: ignore[arg-type]
    version, total, dropped = int(reply[1]), int(reply[2]), int(reply[3])
    flags = text(reply[4])
    write_id, previous = text(reply[5]), text(reply[6])
    rest = [int(x) for x in reply[8:]]
    seqs, groups, cums = tuple(rest[0::3]), tuple(rest[1::3]), tuple(rest[2::3])
    written = tuple(f == "1" for f in flags)
    return AppendResult("live", version, seqs, groups, total, written.count(False), written,
                        cums, dropped, write_id, previous, int(reply[7]))


def spread(result: AppendResult, sent: Sequence[int], count: int) -> AppendResult:
    """An append's result over all ``count`` messages, when only those at ``sent`` were sent
    (the others were found stored already)."""
    written = [False] * count
    for i, flag in zip(sent, result.written, strict=True):
        written[i] = flag
    return replace(result, written=tuple(written), duplicates=written.count(False))


def stored_from(messages: Sequence[NewMessage], result: AppendResult) -> list[StoredMessage]:
    """The stored form of what an append wrote, to extend a cached history without a reload."""
    out = []
    fresh = iter(zip(result.seqs, result.groups, result.cums, strict=True))
    for message, written in zip(messages, result.written, strict=True):
        if written:
            seq, group, cum = next(fresh)
            out.append(StoredMessage(seq, group, message.role, message.content, message.tokens,
                                     message.encoding, cum, message.size, dict(message.fields)))
    return out


def parse_clear(reply: Sequence[Any], fence: int | None) -> int:
    if text(reply[0]) == "fenced":
        current = text(reply[1])
        raise FencedError(fence or 0, int(current) if current else None)
    return int(reply[1])


def parse_pop(reply: Sequence[Any], fence: int | None,
              open_: Codec = _same) -> StoredMessage | None:
    status = text(reply[0])
    if status == "fenced":
        current = text(reply[1])
        raise FencedError(fence or 0, int(current) if current else None)
    return decode_item(reply[2], open_) if status == "ok" else None


def recount_args(messages: Sequence[StoredMessage], encoding: str, tokens: dict[int, int],
                 expected_version: int, seal: Codec = _same) -> list[Any]:
    items = []
    cum = messages[0].cum - messages[0].tokens if messages else 0
    total = 0
    for m in messages:
        count = tokens.get(m.seq, m.tokens)
        cum += count
        total += count
        items.append(encode_item(StoredMessage(m.seq, m.group, m.role, m.content, count,
                                               encoding, cum, m.size, m.fields), seal))
    return [encoding, expected_version, total, cum, *items]


def parse_members(reply: Sequence[Any]) -> tuple[Announcement, ...]:
    """The heartbeat script's ``{id, "address|load", ...}``, ordered by node id."""
    members = []
    for i in range(0, len(reply), 2):
        address, _, load = text(reply[i + 1]).partition("|")
        members.append(Announcement(text(reply[i]), address or None, int(load or 0)))
    return tuple(sorted(members, key=lambda m: m.node_id))
