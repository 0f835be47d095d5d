"""Reads in a GET or HEAD request begin no turn: one load, no lease, never behind a turn in flight.

Under ``STICKYCTX_TURN_LOCK=auto`` a POST's first context call takes the session's turn lease
(its reads and writes are one turn). A GET only reads: it loads the session without the lease,
so a page reload during a slow turn is answered at once with what is stored, and costs one store
step instead of two (begin, then release). A write that a GET makes after all begins the turn
then, with the lease, on the session as the store holds it.
"""

from __future__ import annotations

from typing import Any

import pytest

from stickyctx import SyncConversation
from stickyctx.edges.request import identify
from stickyctx.sansio import run_sync
from stickyctx.session.logic import Session
from stickyctx.session.services import Services

from ..conftest import FakeClock, make_settings
from ..edges import EDGES, Browser, Req, make_edge, make_store


def _contents(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"]]


@pytest.mark.parametrize("kind", EDGES)
def test_a_get_is_answered_at_once_while_a_turn_is_in_flight(kind: str, clock: FakeClock) -> None:
    # turn_timeout=0: a request that tried to take the held turn would be a 409 at once.
    edge = make_edge(kind, make_settings(turn_timeout=0), clock=clock)
    browser = Browser(edge)
    assert browser.chat("u0").status == 200
    cookies = tuple(browser.cookie_header())
    edge.store.calls.clear()
    turn, read = edge.overlap(Req("POST", "/chat", cookies, {"message": "u1", "pause": True}),
                              Req("GET", "/history", cookies), open_after_second=True)
    assert read.status == 200  # not 409: the read did not ask for the turn
    assert _contents(read.json()) == ["u0", "echo: u0"]  # what was stored; u1 not yet
    assert turn.status == 200
    assert _contents(turn.json()) == ["u0", "echo: u0", "u1", "echo: u1"]
    assert edge.store.refused == 0  # nobody was refused the turn: the GET never asked
    assert _contents(browser.request("GET", "/history").json()) == [
        "u0", "echo: u0", "u1", "echo: u1"]


@pytest.mark.parametrize("kind", EDGES)
def test_a_get_read_is_one_load_and_a_post_read_a_begun_turn(kind: str, clock: FakeClock) -> None:
    edge = make_edge(kind, make_settings(), clock=clock)
    browser = Browser(edge)
    assert browser.chat("u0").status == 200
    edge.store.calls.clear()
    assert _contents(browser.request("GET", "/history").json()) == ["u0", "echo: u0"]
    assert [name for name, _ in edge.store.calls] == ["load"]
    edge.store.calls.clear()
    assert browser.chat("u1").status == 200  # a POST's turn: begin, then the commit
    assert [name for name, _ in edge.store.calls] == ["begin", "append"]


def test_a_write_after_a_lease_free_read_begins_the_turn_on_the_stored_session(
        clock: FakeClock) -> None:
    settings = make_settings()
    services = Services(settings, clock=clock)
    store = make_store(settings, clock)
    state = identify(services, [], None)

    def request(locks_reads: bool) -> tuple[Session, SyncConversation]:
        logic = Session(services, store, state, auto_lock=True, locks_reads=locks_reads)
        return logic, SyncConversation(logic)

    logic, conv = request(locks_reads=True)
    conv.append("user", "first")
    run_sync(logic.end(), store.sync_io)
    state.affinity = "hit"  # the next requests carry the session's cookie

    reading, read = request(locks_reads=False)
    assert [m["content"] for m in read.messages()] == ["first"]
    # Meanwhile another request of the session stores a turn.
    other, conv = request(locks_reads=True)
    conv.append("user", "second")
    run_sync(other.end(), store.sync_io)
    assert reading.turn.fence is None  # the read holds no lease

    store.calls.clear()
    seq = read.append("user", "third")  # the GET writes after all: it begins the turn now
    assert [name for name, _ in store.calls] == ["begin"]
    assert reading.turn.fence is not None
    assert seq == 3  # staged after what the store holds, not after the stale read
    assert [m["content"] for m in read.messages()] == ["first", "second", "third"]
    run_sync(reading.end(), store.sync_io)
    logic, conv = request(locks_reads=True)
    assert [m["content"] for m in conv.messages()] == ["first", "second", "third"]
    run_sync(logic.end(), store.sync_io)
