"""The forms a handle hands a history out in, over a real store: ``window()`` is chat messages by
default, ``messages()`` the stored form; both take ``format=``; stored data never changes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stickyctx.core.formats import to_chat, to_responses
from tests.core.test_formats import CALL_A, SHAPES
from tests.formats.check import assert_chat, assert_responses

from .backends import MEMORY, on
from .harness import Chat, Driver, Request, settings_for

Message = dict[str, Any]
KINDS = (*MEMORY, "redis-sync", "redis-async")


def window(request: Request, budget: int | None = None, **kwargs: Any) -> list[Message]:
    return request._call(lambda h: h.window(budget, **kwargs),
                         lambda h: h.window(budget, **kwargs))


def messages(request: Request, **kwargs: Any) -> list[Message]:
    return request._call(lambda h: h.messages(**kwargs), lambda h: h.messages(**kwargs))


@on(*KINDS)
@pytest.mark.parametrize(("stored", "chat", "responses"), SHAPES)
def test_every_shape_comes_back_in_every_form(
    kind: Driver, stored: list[Message], chat: list[Message], responses: list[Message] | None,
) -> None:
    session = Chat(kind, settings_for())
    with session.turn() as request:
        request.extend(copy.deepcopy(stored))
    with session.other_node().turn() as request:  # on Redis: another node, from the store
        assert request.messages() == stored  # as stored: fields and all
        assert messages(request, format="stored") == stored
        assert request.window() == chat == messages(request, format="chat")
        assert window(request, format="stored") == stored
        expected = responses if responses is not None else to_responses(stored)
        assert window(request, format="responses") == expected
        assert messages(request, format="responses") == expected
        before = request.token_count()
        assert messages(request) == stored
        assert request.token_count() == before  # counted on the stored form, whatever the form


def _turn(n: int) -> list[Message]:
    call = {**CALL_A, "id": f"call_{n}"}
    return [{"role": "user", "content": f"Weather in city number {n}?", "turn": n},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"call_{n}", "content": f"{n} degrees"},
            {"role": "assistant", "content": f"It is {n} degrees there."}]


@on(*KINDS)
def test_windows_of_any_budget_keep_tool_turns_whole(kind: Driver) -> None:
    session = Chat(kind, settings_for(response_reserve=0))
    with session.turn() as request:
        for n in range(6):
            request.extend(_turn(n))
    with session.turn() as request:
        total = request.token_count()
        seen = set()
        for budget in range(total // 6 + 20, total + 20, max(1, total // 40)):  # a turn and more
            stored = window(request, budget, format="stored", system="Be brief.")
            chat = window(request, budget, system="Be brief.")
            assert chat == to_chat(copy.deepcopy(stored))
            assert_chat(chat)
            assert chat[0] == {"role": "system", "content": "Be brief."}
            assert chat[1]["role"] == "user"  # whole turns
            turns = [m["turn"] for m in stored if m["role"] == "user"]
            assert turns == list(range(6 - len(turns), 6))  # the newest ones
            assert len(chat) == 1 + 4 * len(turns)  # every call with its result
            assert_responses(window(request, budget, format="responses", system="Be brief."))
            seen.add(len(turns))
        assert len(seen) > 3  # the budgets above cut the history in many places


@on(*MEMORY)
def test_an_unknown_format_is_refused_before_anything_is_read(kind: Driver) -> None:
    session = Chat(kind, settings_for())
    with session.turn() as request:
        request.append("user", "hi")
        for read in (window, messages):
            with pytest.raises(ValueError, match="unknown format"):
                read(request, format="langchain")
        assert request.window() == [{"role": "user", "content": "hi"}]
