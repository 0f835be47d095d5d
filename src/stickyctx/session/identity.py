"""Changes of a session's identity: a new id for the same data (``rotate``), a new id for a new
conversation (``restart``: the old one expired or was revoked), and erasure (``destroy``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.flow import new_session
from ..core.snapshots import EMPTY
from ..sansio import Op
from ..telemetry import ATTR

if TYPE_CHECKING:
    from .logic import Session

__all__ = ["destroy", "follow", "restart", "rotate"]


def restart(session: Session) -> Op[None]:
    """Start afresh with a new id (the old one expired or was revoked)."""
    had_turn = session.turn.fence is not None
    staging = session.turn.open
    if had_turn or staging:
        yield from session.turn.release()
    services, state = session.services, session.state
    fresh = new_session(services.flow, services.members.view(), services.clock(),
                        state.transport)
    state.previous_id, state.session_id = None, fresh.session_id
    state.lineage = None  # a new conversation
    state.owner, state.created, state.affinity = fresh.owner, fresh.created, "new"
    state.reissue, state.route_ok = True, False
    session._key, session._snapshot, session._known_live = None, EMPTY, False
    if had_turn and not staging:
        yield from session.turn.take()
    session.turn.open = staging  # a brand-new session: this request's, without a lease


def rotate(session: Session) -> Op[str]:
    """Give the session a new id (same data); the old id loads nothing afterwards."""
    # Under the turn lock (auto mode): a turn in progress elsewhere must finish first, or its
    # next write would land on the tombstone and the lease would move away from its holder.
    yield from session.turn.claim()
    yield from session.turn.flush()
    services, state = session.services, session.state
    fresh_id = new_session(services.flow, services.members.view(), services.clock(),
                           state.transport).session_id
    new_key = services.keys.derive(fresh_id)
    # For a short grace, requests still carrying the old token (sent before this response
    # reached the client) follow to the new id instead of starting an empty session whose
    # cookie would overwrite the rotated one.
    grace = services.settings.rotation_grace
    pointer = services.keys.follow_pointer(state.session_id, fresh_id) if grace > 0 else ""
    # The rotate span names the session by its new id, and the id it replaces.
    yield from session.call(session.store.rotate(session.key, new_key, follow=pointer,
                                                 grace=grace), {
        ATTR.SESSION_ID: services.session_hash(fresh_id),
        ATTR.SESSION_PREVIOUS_ID: session.session_hash()})
    # The conversation keeps its keyed lineage (core.inference): routing keys survive.
    state.lineage = session.anchor()
    state.previous_id, state.session_id, state.reissue = state.session_id, fresh_id, True
    session._key = new_key
    session._snapshot = None  # the version moved with the data; reload when next needed
    return fresh_id


def follow(session: Session, pointer: str) -> Op[bool]:
    """Follow a rotation made within its grace: this request's session becomes the new id
    (re-issued to the client). False when there is nothing authentic to follow."""
    state = session.state
    fresh_id = (session.services.keys.followed(state.session_id, pointer)
                if pointer and session.follows else None)
    if fresh_id is None:
        return False
    had_turn = session.turn.fence is not None
    if had_turn:
        yield from session.turn.release()
    state.lineage = session.anchor()  # the conversation's, as rotate() keeps it
    state.previous_id, state.session_id, state.reissue = state.session_id, fresh_id, True
    session._key, session._snapshot, session._known_live = None, None, False
    if had_turn:
        yield from session.turn.take()
    return True


def destroy(session: Session) -> Op[None]:
    """Delete the data, expire the cookie; a replay of the old token starts afresh."""
    if session.state.destroyed:
        return
    yield from session.call(session.store.destroy(session.key))
    session.state.destroyed = True
    turn = session.turn
    turn.fence, turn.staged, turn.open = None, [], False  # gone with the data
    session._snapshot = EMPTY
