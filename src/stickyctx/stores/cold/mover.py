"""The mover: conversations idle past ``STICKYCTX_COLD_AFTER`` leave Redis for PostgreSQL.

A move is copy, verify, then delete, so a conversation is never in neither tier, whatever step
a crash interrupts:

1. **copy**: the session's keys, as Redis serializes them (``export``), become its row in
   ``stickyctx_cold`` (replacing an older copy);
2. **verify**: the row is read back; the version and the payload's digest must be what was
   written, or nothing is deleted;
3. **delete**: the session leaves Redis (``freeze``) only if its version is still the one
   copied and no turn or summary holds it; otherwise the copy, now stale, is deleted instead.

A crash after 1 or 2 leaves the session in both tiers (the next run copies it again); a copy a
crash left stale is never restored while Redis holds the session, and expires no later than it.
Each run also deletes the copies of sessions restored since the last run (their restored
marker), and the copies whose lifetime is over. Idleness is read from Redis itself: a session's
keys expire ``STICKYCTX_IDLE_TTL`` after its last use, so one whose remaining lifetime is at
most ``IDLE_TTL - COLD_AFTER`` has been idle at least ``COLD_AFTER`` (to within the store's
expiry refresh, a minute at most).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ...core.storekeys import SessionKey
from ...sansio import Op, run_sync
from ..postgres.store import transact
from ..redis.schema import META, keys
from ..redis.store import run_script
from . import table
from .table import Frozen
from .tiered import RESTORED, SESSION_KEYS, TieredStore

__all__ = ["MoveReport", "Mover"]

_BATCH = 500


@dataclass
class MoveReport:
    moved: int = 0  # left Redis for the cold tier
    kept: int = 0  # still in use, held by a turn, or changed during the move: stay in Redis
    cleaned: int = 0  # copies of restored sessions deleted


class Mover:
    """Moves one namespace's idle sessions (``run``), with the store's blocking adapters.

    ``on_step(step, key)`` is called after each step of a move (``"copied"``, ``"verified"``,
    ``"deleted"``): progress reporting, and the crash tests' way to stop the mover there.
    """

    def __init__(self, store: TieredStore, *, namespace: str, idle_ttl: float,
                 cold_after: float,
                 on_step: Callable[[str, SessionKey], None] | None = None) -> None:
        self.store = store
        self.client = store.redis.sync_io.client
        self.namespace = namespace
        self.threshold_ms = int((idle_ttl - cold_after) * 1000)
        self.on_step = on_step or (lambda step, key: None)

    def _scan(self, part: str) -> Iterator[SessionKey]:
        prefix = f"{self.namespace}:{{"
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.namespace)  # glob characters, literal
        for name in self.client.scan_iter(match=f"{pattern}:{{*}}:{part}", count=_BATCH):
            text = name.decode() if isinstance(name, bytes) else name
            if text.startswith(prefix) and text.endswith(f"}}:{part}"):
                yield SessionKey(self.namespace, text[len(prefix):text.rindex("}")])

    def candidates(self) -> Iterator[SessionKey]:
        """Sessions idle at least ``COLD_AFTER`` (by their remaining lifetime in Redis)."""
        batch: list[SessionKey] = []
        for key in self._scan(META):
            batch.append(key)
            if len(batch) == _BATCH:
                yield from self._idle(batch)
                batch = []
        yield from self._idle(batch)

    def _idle(self, batch: list[SessionKey]) -> Iterator[SessionKey]:
        if not batch:
            return
        pipe = self.client.pipeline(transaction=False)
        for key in batch:
            pipe.pttl(key.key(META))
        for key, ttl in zip(batch, pipe.execute(), strict=True):
            if 0 < int(ttl) <= self.threshold_ms:
                yield key

    def move(self, key: SessionKey) -> Op[bool]:
        """Move one session: copy, verify, delete. Whether it left Redis."""
        names = keys(key, *SESSION_KEYS)
        exported = yield from run_script("export", names, [])
        if not exported or not 0 < int(exported[1]) <= self.threshold_ms:
            return False  # gone, or used since it was found idle
        dumps = tuple((bytes(exported[2 + 2 * i] or b""), int(exported[3 + 2 * i]))
                      for i in range(len(SESSION_KEYS)))
        if dumps[3][0] or dumps[4][0]:
            return False  # a turn or a summary holds it
        version = int(exported[0])
        written = yield from transact("move", table.put(key, Frozen(version, dumps)))
        self.on_step("copied", key)
        found = yield from transact("move", table.verify(key))
        if found != (version, written):
            return False  # not what was written: keep the session in Redis
        self.on_step("verified", key)
        deleted = yield from run_script("freeze", [*names, key.key(RESTORED)], [version])
        if int(deleted) != 1:  # it changed (or a turn began) meanwhile: the copy is stale
            yield from transact("move", table.delete(key, version))
            return False
        self.on_step("deleted", key)
        return True

    def clean(self, key: SessionKey) -> Op[None]:
        """Delete the copy a restore left behind (older than the session now in Redis)."""
        version = self.client.hget(key.key(META), "v")
        if version is not None:
            yield from transact("clean", table.delete(key, int(version) - 1))
        self.client.delete(key.key(RESTORED))

    def run(self, limit: int | None = None) -> MoveReport:
        """One pass: sweep expired copies, clean restored ones, move up to ``limit`` sessions."""
        report = MoveReport()
        io = self.store.sync_io
        run_sync(transact("sweep", table.sweep(self.namespace)), io)
        for key in list(self._scan(RESTORED)):
            run_sync(self.clean(key), io)
            report.cleaned += 1
        for key in self.candidates():
            if limit is not None and report.moved >= limit:
                break
            if run_sync(self.move(key), io):
                report.moved += 1
            else:
                report.kept += 1
        return report
