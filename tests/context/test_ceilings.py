"""Storage ceilings: a session over ``max_session_tokens`` or ``max_session_bytes`` drops its
oldest whole groups (never the newest); a message over ``max_message_bytes`` is refused."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from stickyctx import InvalidMessageError, MessageTooLargeError

from .backends import MEMORY, REDIS, on
from .chatter import assistant_text, user_text
from .harness import Chat, Driver, settings_for
from .test_groups import conversation


def size(message: dict[str, Any]) -> int:
    return len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())


@on(*MEMORY, *REDIS)
@pytest.mark.parametrize("ceiling", [
    pytest.param({"max_session_tokens": 700}, id="tokens"),
    pytest.param({"max_session_bytes": 2500, "max_message_bytes": 2500}, id="bytes"),
])
def test_a_ceiling_drops_the_oldest_whole_groups(kind: Driver, ceiling: dict[str, int]) -> None:
    chat = Chat(kind, settings_for(**ceiling))
    groups = conversation(seed=3, turns=16)
    groups.insert(9, [{"role": "user", "content": "Tell me everything about Kyoto. " * 60},
                      {"role": "assistant", "content": "Kyoto is lovely in autumn. " * 40}])
    history: list[dict[str, Any]] = []
    group_starts: list[int] = []
    dropped = 0
    for group in groups:
        group_starts.append(len(history))
        with chat.turn() as request:
            request.messages()  # loaded before the appends: the handle must notice the drop
            for message in group:
                fields = {k: v for k, v in message.items() if k not in ("role", "content")}
                request.append(message["role"], message["content"], **fields)
            history += group
            stored = request.messages()
            first = len(history) - len(stored)
            assert stored == history[first:]
            assert first in group_starts  # whole groups only
            assert stored[len(stored) - len(group):] == group  # the newest group is never cut
            assert request.token_count() == chat.count(stored)
        tokens = chat.count(stored) - 3
        total = tokens if "max_session_tokens" in ceiling else sum(size(m) for m in stored)
        limit = next(iter(ceiling.values()))
        if stored != group:  # only the newest group may stay over the ceiling
            assert total <= limit
            # and no more than needed was dropped: the group before would not have fit
            previous = group_starts[group_starts.index(first) - 1] if first else None
            if previous is not None:
                extra = history[previous:first]
                added = (chat.count(extra) - 3 if "max_session_tokens" in ceiling
                         else sum(size(m) for m in extra))
                assert total + added > limit
        dropped = max(dropped, first)
    assert dropped > 0  # the ceiling was reached many times
    assert chat.count(groups[9]) - 3 > 700 or sum(size(m) for m in groups[9]) > 2500


@on(*MEMORY, *REDIS)
def test_a_message_over_max_message_bytes_is_refused(kind: Driver) -> None:
    chat = Chat(kind, settings_for(max_message_bytes=1000))
    overhead = size({"role": "user", "content": ""})
    exactly = "x" * (1000 - overhead)
    with chat.turn() as request:
        request.append("user", exactly)  # exactly the limit is accepted
        with pytest.raises(MessageTooLargeError) as caught:
            request.append("user", exactly + "é")  # two bytes more in UTF-8
        assert (caught.value.size, caught.value.limit) == (1002, 1000)
        assert isinstance(caught.value, InvalidMessageError)
        with pytest.raises(MessageTooLargeError):  # one large message refuses the whole batch
            request.extend([{"role": "user", "content": "fine"},
                            {"role": "assistant", "content": exactly + "!"}])
        assert request.messages() == [{"role": "user", "content": exactly}]
        assert request.token_count() == chat.count(request.messages())


@on("sync", "redis-sync")  # ten thousand round trips: one Redis kind is enough (about 3 s)
def test_the_default_ceilings_hold_ten_thousand_chat_messages(kind: Driver) -> None:
    chat = Chat(kind, settings_for())
    rng = random.Random(12)
    pool = [user_text(rng) if i % 2 == 0 else assistant_text(rng) for i in range(400)]
    texts = [f"({i}) {pool[i % 400]}" for i in range(10_000)]
    with chat.turn() as request:
        for index, text in enumerate(texts):
            assert request.append("user" if index % 2 == 0 else "assistant", text) == index + 1
        messages = request.messages()
        assert request.token_count() == chat.count(messages)
    assert [m["content"] for m in messages] == texts
    stored = chat.stored()
    assert len(stored.messages) == 10_000
    assert stored.total_tokens == sum(m.tokens for m in stored.messages)
