"""The hot tier is never stale, even when Redis loses writes and a session's version climbs
back to the number a node has cached (a restart without persistence, a failover that lost the
last write): the write id and the last item's header tell the difference."""

from __future__ import annotations

import time

from .conftest import NewKey, OpenStore, Target, msg


def test_a_rebuilt_session_with_the_same_version_is_reloaded(
        standalone: Target, open_store: OpenStore, new_key: NewKey) -> None:
    a, b = open_store(standalone.url), open_store(standalone.url)
    key = new_key()
    a.append(key, [msg("user", "first life, turn 1")], created=time.time())
    a.append(key, [msg("user", "first life, turn 2")], created=time.time())
    cached = a.load(key)  # node A now caches version 2
    assert cached.version == 2
    for name in standalone.scan(f"*{{{key.tag}}}*"):  # Redis loses the session
        standalone.raw.delete(name)
    b.append(key, [msg("user", "second life, turn 1")], created=time.time())
    b.append(key, [msg("user", "second life, turn 2")], created=time.time())
    again = a.load(key)
    assert again.version == 2  # the same number ...
    assert [m.content for m in again.messages] == [  # ... and yet never the old history
        "second life, turn 1", "second life, turn 2"]
    assert again.tier == "store"


def test_a_lost_last_write_replaced_by_another_is_not_taken_for_a_tail(
        standalone: Target, open_store: OpenStore, new_key: NewKey) -> None:
    a, b = open_store(standalone.url), open_store(standalone.url)
    key = new_key()
    a.append(key, [msg("user", "kept")], created=time.time())
    a.append(key, [msg("assistant", "lost in the failover")], created=time.time())
    assert len(a.load(key).messages) == 2  # node A caches both
    raw = standalone.raw
    # The failover lost the last write: the list and the meta go back to version 1.
    raw.rpop(key.key("m"))
    raw.hset(key.key("s"), mapping={"v": 1, "n": 2, "w": "0.1"})
    b.append(key, [msg("assistant", "written after the failover")], created=time.time())
    b.append(key, [msg("user", "and another")], created=time.time())
    assert [m.content for m in a.load(key).messages] == [
        "kept", "written after the failover", "and another"]
