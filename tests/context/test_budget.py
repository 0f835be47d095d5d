"""``window()`` always fits its budget; ``token_count()`` is always an exact recount."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from stickyctx import ContextOverflowError
from stickyctx.core.summarizer import HEADER
from stickyctx.core.tokenizer import REPLY_PRIMER_TOKENS

from .backends import MEMORY, REDIS, on
from .harness import Chat, Driver, Request, settings_for

# Text that costs tokens unevenly: words, digits, punctuation, non-Latin scripts, emoji.
PIECES = [*"abcdefgh ijk lmn opq  .,!?\n0123456789-:'\"", "é", "ß", "漢", "字", "🙂", "Alice",
          " my name is ", " I prefer "]
TEXT = st.lists(st.sampled_from(PIECES), max_size=160).map("".join)


@dataclass(frozen=True)
class Group:
    """One turn: the user's message, tool calls with their results, the assistant's reply."""

    user: str
    tools: tuple[tuple[str, str], ...]  # (arguments, result) of each tool call
    reply: str | None

    def messages(self, index: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"role": "user", "content": self.user}]
        if self.tools:
            calls = [{"id": f"call_{index}_{i}", "type": "function",
                      "function": {"name": "lookup", "arguments": args}}
                     for i, (args, _) in enumerate(self.tools)]
            out.append({"role": "assistant", "content": None, "tool_calls": calls})
            out += [{"role": "tool", "tool_call_id": f"call_{index}_{i}", "content": result}
                    for i, (_, result) in enumerate(self.tools)]
        if self.reply is not None:
            out.append({"role": "assistant", "content": self.reply})
        return out


GROUPS = st.lists(
    st.builds(Group, TEXT, st.lists(st.tuples(TEXT, TEXT), max_size=2).map(tuple),
              st.none() | TEXT),
    min_size=1, max_size=8,
)


def newest_group(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    starts = [i for i, m in enumerate(messages) if m["role"] == "user"]
    return messages[starts[-1]:]


def check_window(request: Request, chat: Chat, budget: int | None, system: str | None) -> None:
    """Either the window fits, is a summary plus whole newest groups, or the overflow is real."""
    settings = chat.settings
    limit = settings.token_budget if budget is None else budget
    reserve = settings.response_reserve
    summary_budget = settings.effective_summary_budget if settings.pruning == "summarize" else 0
    head = [{"role": "system", "content": system}] if system is not None else []
    try:
        window = request.window(budget, system=system)
    except ContextOverflowError as exc:
        overflow: ContextOverflowError | None = exc
    else:
        overflow = None
    if overflow is not None:
        messages = request.messages()
        smallest = head + (newest_group(messages) if messages else [])
        assert overflow.budget == limit
        needs = chat.count(smallest) if smallest else REPLY_PRIMER_TOKENS  # primer: always
        assert overflow.needed == reserve + needs + summary_budget
        assert overflow.needed > limit
        return
    assert chat.count(window) + reserve <= limit
    assert window[:len(head)] == head
    body = window[len(head):]
    if body and settings.pruning == "summarize" and body[0]["role"] == "system":
        assert body[0]["content"].startswith(HEADER)
        assert chat.count([body[0]]) - REPLY_PRIMER_TOKENS <= summary_budget
        body = body[1:]
    messages = request.messages()
    assert body == messages[len(messages) - len(body):]  # a suffix of the history
    assert not body or body[0]["role"] == "user"  # of whole groups


CASES = {
    "groups": GROUPS,
    "token_budget": st.integers(60, 2500),
    "reserve_share": st.floats(0, 0.5),
    "explicit_budget": st.none() | st.integers(20, 2500),
    "system": st.none() | TEXT,
    "pruning": st.sampled_from(["sliding", "summarize"]),
    "eviction": st.sampled_from(["block", "turn"]),
}


def fits_the_budget(
    kind: Driver | str, groups: list[Group], token_budget: int, reserve_share: float,
    explicit_budget: int | None, system: str | None, pruning: str, eviction: str,
) -> None:
    chat = Chat(kind, settings_for(
        token_budget=token_budget, response_reserve=int(token_budget * reserve_share),
        pruning=pruning, eviction=eviction))
    for index, group in enumerate(groups):
        with chat.turn() as request:  # one request a turn, ended (and folded) as in production
            for message in group.messages(index):
                request.append(message.pop("role"), message.pop("content"), **message)
            assert request.token_count() == chat.count(request.messages())
            check_window(request, chat, explicit_budget, system)
    with chat.turn() as request:  # a request that only reads, after the last fold
        check_window(request, chat, explicit_budget, system)


@hyp_settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(MEMORY), **CASES)
def test_window_always_fits_the_budget(
    kind: str, groups: list[Group], token_budget: int, reserve_share: float,
    explicit_budget: int | None, system: str | None, pruning: str, eviction: str,
) -> None:
    fits_the_budget(kind, groups, token_budget, reserve_share, explicit_budget, system,
                    pruning, eviction)


# A few examples on Redis: the store serves the history and applies the folds; the window's
# arithmetic is the same code whatever the store. ``kind`` only names the server and a namespace
# of this test: every example opens a session of its own, so sharing it between examples is safe.
@on(*REDIS)
@hyp_settings(max_examples=6, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(**CASES)
def test_window_always_fits_the_budget_on_redis(
    kind: Driver, groups: list[Group], token_budget: int, reserve_share: float,
    explicit_budget: int | None, system: str | None, pruning: str, eviction: str,
) -> None:
    fits_the_budget(kind, groups, token_budget, reserve_share, explicit_budget, system,
                    pruning, eviction)


@pytest.mark.parametrize("pruning", [pytest.param("sliding", id="sliding"),
                                     pytest.param("summarize", id="summarize")])
def test_the_budget_arithmetic_is_exact(kind: Driver, pruning: str) -> None:
    """available = budget - reserve - reply primer - system message [- summary budget]: a window
    of exactly the budget is accepted, one token more is not."""
    chat = Chat(kind, settings_for(response_reserve=50, eviction="turn", pruning=pruning,
                                   summary_budget=120))
    summary = 120 if pruning == "summarize" else 0
    system = "You are a concise assistant."
    with chat.turn() as request:
        request.append("user", "first question about the weather in Oslo")
        request.append("assistant", "It is cold and clear.")
        request.append("user", "second question about trains")
        whole = [{"role": "system", "content": system}, *request.messages()]
        exact = chat.count(whole) + 50 + summary
        assert request.window(exact, system=system) == whole
        shorter = request.window(exact - 1, system=system)
        assert shorter == [whole[0], whole[-1]]


@on(*MEMORY, *REDIS)
@pytest.mark.parametrize("storage", [
    pytest.param("archive", id="archive"),
    pytest.param("delete", id="delete"),
])
def test_token_count_is_a_recount_through_appends_clear_and_summary_deletion(
    kind: Driver, storage: str,
) -> None:
    chat = Chat(kind, settings_for(token_budget=400, pruning="summarize",
                                   summary_storage=storage))
    with chat.turn() as request:
        assert request.token_count() == 0
    for turn in range(12):
        with chat.turn() as request:
            request.append("user", f"Turn {turn}: my name is Alice and I prefer tea. " * 3)
            request.window()
            request.append("assistant", f"Noted for turn {turn}, Alice. " * 3,
                           name="helper")
            assert request.token_count() == chat.count(request.messages())
            # staged and stored alike: the user messages of the history, the helper's not
            assert request.turn_count() == sum(m["role"] == "user" for m in request.messages())
    stored = chat.stored()
    assert stored.summary is not None
    assert stored.summary.watermark > 0
    with chat.turn() as request:
        messages = request.messages()
        assert request.token_count() == chat.count(messages)
        assert (len(messages) == 24) == (storage == "archive")  # delete: folded ones are gone
        assert request.turn_count() == (12 if storage == "archive" else len(messages) // 2)
        request.clear()
        assert request.messages() == []
        assert request.token_count() == 0
        assert request.turn_count() == 0
        request.append("user", "after the clear")
        assert request.token_count() == chat.count([{"role": "user",
                                                     "content": "after the clear"}])
    with chat.turn() as request:
        assert request.token_count() == chat.count(request.messages())
