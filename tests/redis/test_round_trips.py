"""One round trip per operation, whatever the history's length: counted by the server
(``INFO commandstats``) and by the client (every command it sends), on a server of its own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.redis_servers import RedisServer
from tests.support.stores import SyncCalls

from .conftest import NewKey, OpenStore, msg

# Commands the test's own probes send (not the store's).
_PROBES = frozenset({"cmdstat_info", "cmdstat_hello", "cmdstat_ping", "cmdstat_client|setinfo"})


def _calls(server: RedisServer) -> dict[str, int]:
    return {name: stats["calls"] for name, stats in server.info("commandstats").items()}


class Counted:
    """The top-level commands one store sends, as the server counts them and as it sent them."""

    def __init__(self, server: RedisServer, store: SyncCalls,
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self.server = server
        self.sent: list[str] = []
        client = store.sync_io.client
        inner: Callable[..., Any] = client.execute_command

        def execute_command(*args: Any, **options: Any) -> Any:
            self.sent.append(str(args[0]).upper())
            return inner(*args, **options)

        monkeypatch.setattr(client, "execute_command", execute_command)

    @contextmanager
    def around(self) -> Iterator[dict[str, int]]:
        """Yields a dict filled, at exit, with the server's command counts of the block."""
        self.sent.clear()
        before = _calls(self.server)
        delta: dict[str, int] = {}
        yield delta
        after = _calls(self.server)
        delta.update({name: n - before.get(name, 0) for name, n in after.items()
                      if n != before.get(name, 0) and name not in _PROBES})


@pytest.mark.parametrize("history", [pytest.param(10, id="10-messages"),
                                     pytest.param(1000, id="1000-messages")])
def test_one_script_call_per_append_and_per_load(
    redis_server: RedisServer, open_store: OpenStore, new_key: NewKey,
    monkeypatch: pytest.MonkeyPatch, history: int,
) -> None:
    writer = open_store(redis_server.url)
    key, created = new_key(), time.time()
    turns = [msg("user" if i % 2 == 0 else "assistant", f"message {i} " * 8)
             for i in range(history)]
    writer.append(key, turns, created=created)  # (the scripts are now loaded on the server)
    writer.load(key)

    for node in ("writer", "fresh node"):  # with and without a hot tier entry
        store = writer if node == "writer" else open_store(redis_server.url)
        if node == "fresh node":
            store.append(new_key(), [msg("user", "load the scripts")], created=created)
        counted = Counted(redis_server, store, monkeypatch)
        with counted.around() as load:
            snapshot = store.load(key)
        assert len(snapshot.messages) >= history
        assert counted.sent == ["EVALSHA"], node
        assert load.get("cmdstat_evalsha") == 1, (node, load)
        assert {"cmdstat_eval", "cmdstat_script|load"}.isdisjoint(load)

        with counted.around() as append:
            result = store.append(key, [msg("user", "one more"), msg("assistant", "ok")],
                                  created=created)
        assert len(result.seqs) == 2
        assert counted.sent == ["EVALSHA"], node
        assert append.get("cmdstat_evalsha") == 1, (node, append)
        # The work is inside the script: two pushes, whatever the history's length.
        assert append.get("cmdstat_rpush") == 2
        assert "cmdstat_lrange" not in append
