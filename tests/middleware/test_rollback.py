"""A turn that fails stores nothing: an error status (400 or more) or an exception after the
app's appends rolls the whole turn back, on a new session and on an existing one, with and
without an idempotency key; the retry that succeeds is then stored once."""

from __future__ import annotations

import pytest

from ..conftest import FakeClock, make_settings
from ..edges import EDGES, Browser, make_edge


def contents(messages: list[dict[str, object]]) -> list[object]:
    return [m["content"] for m in messages]


@pytest.mark.parametrize("kind", EDGES)
@pytest.mark.parametrize("fail", ["status", "raise"])
@pytest.mark.parametrize("existing", [False, True], ids=["new-session", "existing-session"])
@pytest.mark.parametrize("keyed", [False, True], ids=["no-key", "idempotency-key"])
def test_a_failed_turn_stores_nothing_and_its_retry_is_stored_once(
    kind: str, fail: str, existing: bool, keyed: bool, clock: FakeClock,
) -> None:
    edge = make_edge(kind, make_settings(), clock=clock)
    browser = Browser(edge)
    before: list[object] = []
    if existing:
        assert browser.chat("hello").status == 200
        before = ["hello", "echo: hello"]
    headers = [("Idempotency-Key", "turn-0001")] if keyed else []
    failed = browser.request("POST", "/chat", headers=headers,
                             json={"message": "doomed", "fail": fail})
    assert failed.status == (422 if fail == "status" else 500)
    if fail == "status":  # the app saw its appends staged in the failing request
        assert contents(failed.json()["messages"]) == [*before, "doomed", "echo: doomed"]
    history = browser.request("GET", "/history").json()["messages"]
    assert contents(history) == before  # nothing of the failed turn was stored
    retried = browser.request("POST", "/chat", headers=headers, json={"message": "doomed"})
    assert retried.status == 200
    expected = [*before, "doomed", "echo: doomed"]
    assert contents(retried.json()["messages"]) == expected
    assert contents(browser.request("GET", "/history").json()["messages"]) == expected


@pytest.mark.parametrize("kind", EDGES)
def test_idempotency_keys_are_compared_whole(kind: str, clock: FakeClock) -> None:
    # Two keys with the same first 300 characters are two turns (they were cut to 256 once,
    # and the second turn was dropped as a retry of the first); the same key again is one.
    edge = make_edge(kind, make_settings(), clock=clock)
    browser = Browser(edge)
    prefix = "k" * 300
    for key, message in ((prefix + "-one", "first"), (prefix + "-two", "second"),
                         (prefix + "-two", "second")):
        reply = browser.request("POST", "/chat", headers=[("Idempotency-Key", key)],
                                json={"message": message})
        assert reply.status == 200
    history = browser.request("GET", "/history").json()["messages"]
    assert contents(history) == ["first", "echo: first", "second", "echo: second"]


@pytest.mark.parametrize("kind", EDGES)
def test_a_key_reused_for_another_message_is_a_422_and_stores_nothing(
    kind: str, clock: FakeClock,
) -> None:
    edge = make_edge(kind, make_settings(), clock=clock)
    browser = Browser(edge)
    key = [("Idempotency-Key", "pay-0001")]
    assert browser.request("POST", "/chat", headers=key, json={"message": "first"}).status == 200
    reused = browser.request("POST", "/chat", headers=key, json={"message": "something else"})
    assert reused.status == 422
    assert reused.json()["error"] == "idempotency_key_reused"
    retried = browser.request("POST", "/chat", headers=key, json={"message": "first"})
    assert retried.status == 200  # the same message again: a retry, stored once
    history = browser.request("GET", "/history").json()["messages"]
    assert contents(history) == ["first", "echo: first"]
