"""Turn groups: a user message, the assistant's tool calls, their results and the reply are one
unit; a window holds whole groups only, and a group too large for the budget is an error."""

from __future__ import annotations

import random
from typing import Any

import pytest

from stickyctx import ContextOverflowError

from .backends import MEMORY, REDIS, on
from .chatter import assistant_text, user_text
from .harness import Chat, Driver, settings_for

SYSTEM = "You are a travel assistant. Use the lookup tool for prices."


def tool_turn(rng: random.Random, index: int, calls: int) -> list[dict[str, Any]]:
    ids = [f"call_{index}_{i}" for i in range(calls)]
    return [
        {"role": "user", "content": user_text(rng, 40, 160)},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": i, "type": "function",
             "function": {"name": "lookup", "arguments": f'{{"city": "Oslo", "n": {n}}}'}}
            for n, i in enumerate(ids)]},
        *({"role": "tool", "tool_call_id": i, "content": f"price {n * 37 + index} EUR"}
          for n, i in enumerate(ids)),
        {"role": "assistant", "content": assistant_text(rng, 40, 200)},
    ]


def conversation(seed: int = 7, turns: int = 14) -> list[list[dict[str, Any]]]:
    """Groups of a realistic conversation: plain turns, tool turns, an unanswered question."""
    rng = random.Random(seed)
    groups: list[list[dict[str, Any]]] = []
    for index in range(turns):
        if index % 3 == 1:
            groups.append(tool_turn(rng, index, 1 + index % 2))
        elif index % 5 == 4:
            groups.append([{"role": "user", "content": user_text(rng, 20, 80)}])
        else:
            groups.append([{"role": "user", "content": user_text(rng)},
                           {"role": "assistant", "content": assistant_text(rng)}])
    return groups


def store_conversation(chat: Chat, groups: list[list[dict[str, Any]]]) -> None:
    for group in groups:
        with chat.turn() as request:
            for message in group:
                fields = {k: v for k, v in message.items() if k not in ("role", "content")}
                request.append(message["role"], message["content"], **fields)


def starts(groups: list[list[dict[str, Any]]]) -> list[int]:
    """Index in the flat history where each group starts."""
    out, position = [], 0
    for group in groups:
        out.append(position)
        position += len(group)
    return out


@on(*MEMORY, *REDIS)
@pytest.mark.parametrize("eviction", [pytest.param("turn", id="turn"),
                                      pytest.param("block", id="block")])
def test_a_window_holds_whole_groups_at_every_budget(kind: Driver, eviction: str) -> None:
    chat = Chat(kind, settings_for(eviction=eviction, response_reserve=64))
    groups = conversation()
    store_conversation(chat, groups)
    history = [m for g in groups for m in g]
    head = [{"role": "system", "content": SYSTEM}]
    newest = chat.count(head + groups[-1]) + 64
    whole = chat.count(head + history) + 64
    group_starts = starts(groups)
    seen_sizes = set()
    with chat.turn() as request:
        assert request.messages() == history
        for budget in range(newest, whole + 20, 9):
            window = request.window(budget, system=SYSTEM)
            assert window[0] == head[0]
            body = window[1:]
            first = len(history) - len(body)
            assert body == history[first:]
            assert first in group_starts  # never a tool result or a reply cut from its question
            assert body[0]["role"] == "user"
            assert chat.count(window) + 64 <= budget
            if eviction == "turn":  # the newest groups that fit: one more group would not
                previous = group_starts[group_starts.index(first) - 1] if first else None
                if previous is not None:
                    assert chat.count(head + history[previous:]) + 64 > budget
            seen_sizes.add(len(body))
    assert len(seen_sizes) > len(groups) // 2  # the sweep really moved the window's start


def test_block_windows_are_never_longer_than_sliding_ones(kind: Driver) -> None:
    groups = conversation(seed=11, turns=20)
    chats = {e: Chat(kind, settings_for(eviction=e)) for e in ("turn", "block")}
    for chat in chats.values():
        store_conversation(chat, groups)
    for budget in range(400, 3000, 97):
        with chats["turn"].turn() as sliding, chats["block"].turn() as block:
            turn_window = sliding.window(budget)
            block_window = block.window(budget)
        assert turn_window[len(turn_window) - len(block_window):] == block_window


def test_the_newest_group_larger_than_the_budget_is_an_overflow(kind: Driver) -> None:
    chat = Chat(kind, settings_for(token_budget=1000, response_reserve=100))
    store_conversation(chat, conversation(turns=3))
    big = tool_turn(random.Random(3), 99, 2)
    big[-1]["content"] = "A very long answer. " * 1200
    store_conversation(chat, [big])
    head = [{"role": "system", "content": SYSTEM}]
    with chat.turn() as request:
        with pytest.raises(ContextOverflowError) as caught:
            request.window(system=SYSTEM)
        assert caught.value.budget == 1000
        assert caught.value.needed == chat.count(head + big) + 100
        with pytest.raises(ContextOverflowError) as caught:
            request.window(5000)  # still too small, for a budget given per call
        assert caught.value.budget == 5000
        assert caught.value.needed == chat.count(big) + 100 > 5000
        fits = chat.count(head + big) + 100
        assert request.window(fits, system=SYSTEM) == head + big  # exactly its size fits
        # A new short turn: the oversized one leaves the window, nothing raises.
        request.append("user", "Thanks! And the weather?")
        assert request.window(system=SYSTEM) == [*head, {
            "role": "user", "content": "Thanks! And the weather?"}]


@pytest.mark.parametrize("history", [pytest.param(False, id="empty"),
                                     pytest.param(True, id="with-history")])
def test_a_system_prompt_larger_than_the_budget_is_an_overflow(kind: Driver, history: bool) -> None:
    chat = Chat(kind, settings_for(token_budget=300, response_reserve=20))
    if history:
        store_conversation(chat, conversation(turns=2))
    system = "Follow the house style guide in every answer. " * 40
    head = [{"role": "system", "content": system}]
    with chat.turn() as request:
        with pytest.raises(ContextOverflowError) as caught:
            request.window(system=system)
        newest = conversation(turns=2)[-1] if history else []
        assert caught.value.budget == 300
        assert caught.value.needed == chat.count(head + newest) + 20 > 300


def test_an_assistant_message_without_a_question_is_its_own_group(kind: Driver) -> None:
    """A conversation may start with the assistant's greeting: it is a group of its own."""
    chat = Chat(kind, settings_for(eviction="turn"))
    greeting = {"role": "assistant", "content": "Hello! How can I help with your trip?"}
    question = {"role": "user", "content": "Find me a hotel in Porto."}
    answer = {"role": "assistant", "content": "Here are three hotels in Porto."}
    with chat.turn() as request:
        request.append("assistant", greeting["content"])
        request.append("user", question["content"])
        request.append("assistant", answer["content"])
        assert request.window() == [greeting, question, answer]
        budget = chat.count([question, answer])
        assert request.window(budget) == [question, answer]
