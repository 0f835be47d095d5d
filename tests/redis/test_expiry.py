"""Expiry on Redis, by the server's own clock: every key has a TTL, a session's keys share one
deadline, loads refresh it (at most once per refresh interval), and it never passes the absolute
lifetime. The contract suite's clock-driven expiry tests, with real short lifetimes here."""

from __future__ import annotations

import time
from typing import Any

from stickyctx.core.storekeys import SessionKey
from stickyctx.stores.redis.schema import DEDUPE, MESSAGES, META
from tests.redis_servers import RedisServer, poll

from .conftest import NewKey, OpenStore, Target, msg

DATA = (META, MESSAGES, DEDUPE)  # the keys of a session's data (leases have their own TTLs)


def deadlines(raw: Any, key: SessionKey) -> set[int]:
    """The expiry times (server ms) of the session's data keys (no dedupe key: no set)."""
    found = {part: raw.pexpiretime(key.key(part)) for part in DATA}
    assert found[META] > 0
    assert found[MESSAGES] > 0
    return {when for when in found.values() if when != -2}


def server_ms(raw: Any) -> int:
    seconds, micros = raw.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_every_key_has_a_ttl_and_the_data_keys_share_one_deadline(
    target: Target, open_store: OpenStore, new_key: NewKey, namespace: str
) -> None:
    store = open_store(target.url, idle_ttl=600, absolute_ttl=3600)
    key = new_key()
    before = server_ms(target.raw)
    store.append(key, [msg("user", "hi", dedupe="t1")], created=time.time())
    after = server_ms(target.raw)
    assert store.acquire_lease(key, holder="a", ttl=60) is not None
    assert store.acquire_lease(key, holder="b", ttl=60, name="summary") is not None
    stored = target.scan(f"{namespace}:*")
    assert len(stored) == 6  # meta, messages, dedupe, two leases, the fence counter
    assert all(target.raw.pttl(name) > 0 for name in stored)  # no key lives forever
    assert target.raw.exists(key.key(DEDUPE))
    (deadline,) = deadlines(target.raw, key)
    assert before + 600_000 <= deadline <= after + 600_000


def test_a_load_refreshes_the_deadline_at_most_once_per_refresh_interval(
    redis_server: RedisServer, open_store: OpenStore, new_key: NewKey
) -> None:
    raw = redis_server.client()
    store = open_store(redis_server.url, idle_ttl=10, absolute_ttl=60)
    assert store.limits.refresh_ms == 1000  # a tenth of the idle TTL
    key = new_key()
    store.append(key, [msg("user", "hi")], created=time.time())

    def deadline() -> int:
        (value,) = deadlines(raw, key)
        return value

    def refreshed_at() -> int:
        value = raw.hget(key.key(META), "rf")
        assert value is not None
        return int(value)

    appended = deadline()
    assert store.load(key).status == "live"  # at once: within the interval, nothing written
    assert deadline() == appended
    written = refreshed_at()
    poll(lambda: server_ms(raw) >= written + 1000, timeout=5, what="the refresh interval over")

    def writes(action: Any) -> int:
        before = redis_server.info("commandstats").get("cmdstat_pexpireat", {}).get("calls", 0)
        action()
        after = redis_server.info("commandstats").get("cmdstat_pexpireat", {}).get("calls", 0)
        return int(after - before)

    assert writes(lambda: store.load(key)) == len(DATA)  # the first load after it: refreshed
    refreshed = deadline()
    assert refreshed == refreshed_at() + 10_000 > appended
    assert writes(lambda: store.load(key)) == 0  # the second one, right after: no write
    assert deadline() == refreshed


def test_a_busy_session_expires_at_its_absolute_lifetime_counted_from_its_creation(
    target: Target, open_store: OpenStore, new_key: NewKey, namespace: str
) -> None:
    store = open_store(target.url, idle_ttl=5, absolute_ttl=10)
    key, late = new_key(), new_key()
    created = time.time() - 8.8  # the session began long ago: 1.2 s of its life are left
    end = int(created * 1000) + 10_000
    store.append(key, [msg("user", "hello")], created=created)
    assert deadlines(target.raw, key) == {end}  # not now + idle

    statuses: list[tuple[int, str]] = []

    def busy() -> bool:  # uses the session all the time, loads and appends
        status = store.append(key, [msg("user", "busy")], created=created).status
        loaded = store.load(key).status
        statuses.append((server_ms(target.raw), status))  # (read after both)
        assert loaded == status or (status, loaded) == ("live", "missing")  # (it ended between)
        return status != "live"

    poll(busy, timeout=10, what="the session gone at its absolute lifetime")
    *alive, (gone_at, status) = statuses
    assert len(alive) > 5
    assert all(s == "live" for _, s in alive)  # however busy, it was live until...
    assert status == "missing"
    assert end <= gone_at < end + 2000  # ...its absolute lifetime was over, and not longer
    assert store.load(key).status == "missing"
    assert target.scan(f"{namespace}:{{{key.tag}}}:*") == []

    # Created longer ago than the absolute lifetime: never stored.
    result = store.append(late, [msg("user", "too late")], created=time.time() - 10.5)
    assert result.status == "missing"
    assert store.load(late).status == "missing"
    assert target.scan(f"{namespace}:{{{late.tag}}}:*") == []


def test_a_session_expires_after_its_idle_ttl_without_use(
    standalone: Target, open_store: OpenStore, new_key: NewKey
) -> None:
    store = open_store(standalone.url, idle_ttl=1, absolute_ttl=60)
    key = new_key()
    started = time.monotonic()
    store.append(key, [msg("user", "hello")], created=time.time())
    last_use = time.monotonic()

    def kept_alive_by_loads() -> bool:  # loads alone keep it alive past its idle TTL
        nonlocal last_use
        last_use = time.monotonic()
        assert store.load(key).status == "live"
        return last_use - started > 1.5

    poll(kept_alive_by_loads, timeout=10, what="loads for longer than the idle TTL")
    # (Watched without loading it: a load is a use.)
    gone = poll(lambda: not standalone.raw.exists(key.key(META)) and time.monotonic(),
                timeout=5, what="the session gone after its idle TTL")
    assert store.load(key).status == "missing"
    # Idle for its TTL (less the refresh interval a load may skip), and not much longer.
    assert 0.85 <= gone - last_use <= 2.5
    result = store.append(key, [msg("user", "x")], created=time.time(), create=False)
    assert result.status == "missing"
