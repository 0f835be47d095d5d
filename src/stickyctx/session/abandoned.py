"""Replies nobody generates any more, and storing a reply once.

A running reply is *abandoned* when its node left the membership, or when the turn lease that
its generation holds from its first chunk to its stored end is free (the process died and its
node id lives on: a restart, another worker process). Whoever finds it so (the next reply of the
session, or a reader) stores its chunks, every chunk a client may have seen, as ``interrupted``,
once: the message's idempotency key is the reply's own, so two finders, or a finder and the
generator itself, store one message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.streams import StreamInfo
from ..errors import FencedError, IdempotencyKeyReusedError, StoreUnavailableError
from ..sansio import Op
from .orphans import Orphan

if TYPE_CHECKING:
    from .logic import Session

__all__ = ["abandoned", "interrupt", "recovered", "store_reply"]


def _owner_gone(session: Session, info: StreamInfo) -> bool:
    """A running stream whose node is known to have left the membership (never presumed: an
    empty ``confirmed_live`` presumes everyone live, and this node's own id is live: several
    worker processes may share it)."""
    if info.node == session.services.node_id:
        return False
    members = session.services.members.confirmed_live()
    return bool(members) and info.node not in members

def abandoned(session: Session, info: StreamInfo) -> Op[bool]:
    """Whether nobody generates the running stream ``info`` any more: its node left, or the
    turn lease that a generation holds is free (its process died and its node id came back).
    In the second case this request now holds the lease."""
    if _owner_gone(session, info):
        return True
    live = session.services.streams.get(session.key.tag)
    if live is not None and live.stream_id == info.stream_id:
        return False
    token = yield from session.call(session.store.acquire_lease(
        session.key, holder=session.holder, ttl=session.services.settings.turn_lease_ttl,
        live=session.services.members.confirmed_live()))
    if token is None:
        return False
    session.turn.fence = int(token)
    return True

def recovered(session: Session, info: StreamInfo) -> Op[bool]:
    """A reader's check of a running stream: if nobody generates it any more (``abandoned``),
    store it as interrupted now; whether it did."""
    turn = session.turn
    held = turn.fence
    if not (yield from abandoned(session, info)):
        return False
    try:
        yield from interrupt(session, info)
    finally:
        if turn.fence != held and turn.fence is not None:  # taken by the check: give it back
            token, turn.fence = turn.fence, held
            yield from session.call(session.store.release_lease(session.key, token))
    return True

def interrupt(session: Session, info: StreamInfo) -> Op[None]:
    """A running stream whose node is gone: store its partial reply (every chunk in the store,
    so every chunk a client saw) as ``interrupted``, once, and end the stream."""
    whole = yield from session.call(session.store.stream_read(session.key, 0))
    if whole is None or whole.stream_id != info.stream_id or not whole.running:
        return
    if not (yield from store_reply(session, info.stream_id, "".join(whole.chunks),
                                    "interrupted", None)):
        return  # its generator stored it: the end follows
    ended = yield from session.call(session.store.stream_end(
        session.key, info.stream_id, "interrupted", ttl=session.services.settings.stream_ttl))
    if ended:
        session.services.stream_telemetry.event("interrupted")

def store_reply(session: Session, stream_id: str, text: str, status: str,
                 fence: int | None) -> Op[bool]:
    """The assistant message, once (keyed by the stream), releasing the lease ``fence``;
    False when another version of it was stored already (its generator ended it meanwhile,
    or another node stored it as interrupted)."""
    built = yield from session.incoming.built(
        [("assistant", text, {"status": status})], f"stream:{stream_id}")
    try:
        yield from session._append(built, fence, release=fence is not None)
        return True
    except FencedError:  # the lease was taken over (this node was presumed dead)
        pass
    except IdempotencyKeyReusedError:
        return False
    stored = True
    try:
        yield from session._append(built, None)
    except IdempotencyKeyReusedError:
        stored = False
    if fence is not None:
        try:
            yield from session.call(session.store.release_lease(session.key, fence))
        except StoreUnavailableError:
            session.services.orphans.add(Orphan(session.key, fence, session.holder))
    return stored
