"""The store protocol: the primitives every backend implements, once, as sans-I/O operations.

Each primitive is a method returning an operation (``Op[T]``, see ``stickyctx.sansio``) that the
session logic composes with ``yield from`` and a driver runs blocking (WSGI, the command line:
``run_sync(op, store.sync_io)``) or on an event loop (ASGI: ``run_async(op, store.async_io)``).
A store whose primitives perform no I/O (the embedded store) has no I/O adapters; a networked
store yields typed I/O steps that its two thin adapters perform. Adding a primitive is a method
here and in each backend, nothing else.

Concurrency contract (what every backend guarantees, and the contract suite checks):

* Requests of one session run concurrently, on one node and across nodes. Every primitive is
  atomic on its own: an ``append`` of several messages is stored whole or not at all, and two
  appends never interleave their messages.
* ``version`` grows by at least one with every change of a session's history or summary, so a
  cached snapshot with the same version is the same history.
* ``seq`` numbers are assigned by the store, from 1, without gaps inside one ``append``.
* A message whose ``dedupe`` key was stored before (for the same session) is dropped, not stored
  twice: retried turns are idempotent.
* A lease is held by at most one holder at a time; each grant carries a fencing token larger than
  every earlier one of that session. A write presenting a fencing token that is no longer the
  current lease's raises ``FencedError``. A caller that passes the live node ids takes over a
  lease whose holder's node is not among them (it died mid-turn) rather than wait for its TTL.
* Expiry belongs to the session as a whole: ``idle_ttl`` after its last use, never later than
  ``absolute_ttl`` after its creation. ``rotate`` and ``destroy`` leave a tombstone on the old
  key until the absolute lifetime is over, so the old id loads ``revoked``.
* Keys are ``SessionKey`` values: raw session ids never reach a store.
* A session never holds more than its ceiling of tokens or bytes: an append that goes over drops
  the oldest whole turn groups (never the newest) in the same atomic step, and says how many.
* ``apply_summary`` is a compare-and-set on the summary's watermark, so appends made while a
  summarizer ran survive and a summary is applied at most once per eviction.
* Leases have names: ``turn`` (the one-turn-at-a-time lock whose fencing token writes present)
  and ``summary`` (at most one summarizer per session at a time).
* Streamed replies: see ``StreamStore`` (``stores/streams.py``).
* ``heartbeat`` announces a node under a namespace for ``ttl`` seconds and returns every node
  announced there and still live (this one included unless it is leaving).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol, runtime_checkable

from ..core.messages import AppendResult, Begun, NewMessage, Snapshot, StoredMessage, Summary
from ..core.nodes import Announcement
from ..core.storekeys import SessionKey
from ..sansio import AsyncIO, Op, SyncIO
from .streams import StreamStore
from .userdata import UserDataStore

__all__ = ["Store"]


@runtime_checkable
class Store(UserDataStore, StreamStore, Protocol):
    @property
    def sync_io(self) -> SyncIO | None:
        """Performs this store's I/O steps, blocking; ``None`` when its operations need none."""
        ...

    @property
    def async_io(self) -> AsyncIO | None:
        """Performs them on the running event loop (any loop: a networked store keeps a client
        per loop); ``None`` when its operations need no I/O."""
        ...

    def load(self, key: SessionKey) -> Op[Snapshot]:
        """The session's stored context; ``status`` says live, missing or revoked."""
        ...

    def append(self, key: SessionKey, messages: Sequence[NewMessage], *, created: float,
               create: bool = True, fence: int | None = None,
               release: bool = False) -> Op[AppendResult]:
        """Append atomically. With ``create=False`` a missing session is not created. With
        ``release`` (and a ``fence``), the turn lease that fence holds is released in the same
        atomic step: a turn's commit."""
        ...

    def begin(self, key: SessionKey, *, holder: str, ttl: float, live: Collection[str] = (),
              probe: Collection[str] = (), writing: bool = False) -> Op[Begun]:
        """A turn's first step, atomically: take the ``turn`` lease (as ``acquire_lease``) and
        load the session under it; ``probe``: idempotency keys to look up (which of a retried
        turn's messages are stored). A revoked session takes no lease; nor does one that does
        not exist, unless ``writing`` (the caller is about to create it: ``missing`` with a
        token). Without a lease, nothing is written."""
        ...

    def clear(self, key: SessionKey, *, fence: int | None = None) -> Op[int]:
        """Forget the history and summary, keep the session; return the new version."""
        ...

    def pop(self, key: SessionKey, *, fence: int | None = None) -> Op[StoredMessage | None]:
        """Remove and return the newest message atomically (``None`` when there is none)."""
        ...

    def rotate(self, old: SessionKey, new: SessionKey, *, follow: str = "",
               grace: float = 0.0) -> Op[None]:
        """Move the session's data to ``new``; ``old`` becomes a tombstone.

        With a ``follow`` pointer (opaque to the store) and a ``grace`` in seconds, loads,
        begins and appends of ``old`` answer ``revoked`` with that pointer for ``grace``
        seconds, so requests still carrying the old token can follow to the new id."""
        ...

    def destroy(self, key: SessionKey) -> Op[None]:
        """Delete every piece of the session and leave a tombstone."""
        ...

    def acquire_lease(self, key: SessionKey, *, holder: str, ttl: float, name: str = "turn",
                      live: Collection[str] = ()) -> Op[int | None]:
        """Take the session's lease ``name``; the fencing token, or ``None`` when it is held.

        ``holder`` is ``node_id:nonce``. Given ``live`` (the live node ids), a lease held by a
        node outside them is taken over instead of waited for: that node died mid-turn.
        """
        ...

    def release_lease(self, key: SessionKey, token: int, name: str = "turn",
                      holder: str | None = None) -> Op[None]:
        """Release the lease if ``token`` still holds it (otherwise do nothing). With token 0 and
        a ``holder``: release it if that holder has it (an attempt whose answer was lost)."""
        ...

    def apply_summary(self, key: SessionKey, text: str, tokens: int, *, watermark: int,
                      expected_watermark: int, delete_folded: bool = False,
                      ) -> Op[Summary | None]:
        """Set the summary if the stored watermark is ``expected_watermark``; else ``None``."""
        ...

    def recount(self, key: SessionKey, encoding: str, tokens: dict[int, int], *,
                expected_version: int) -> Op[int | None]:
        """Store new token counts (by seq) after an encoding change; ``None`` on a conflict."""
        ...

    def heartbeat(self, namespace: str, node: Announcement, *, ttl: float,
                  leaving: bool = False) -> Op[tuple[Announcement, ...]]:
        """Announce ``node`` for ``ttl`` seconds (or withdraw it when ``leaving``); return the
        live announcements of the namespace, ordered by node id."""
        ...

    def close(self) -> None:
        """Release blocking resources (connections); the store is not used afterwards."""
        ...

    async def aclose(self) -> None:
        """Release the current event loop's resources."""
        ...
