"""Anonymous traffic on Redis: requests that store nothing write nothing and are not load.

Each request without a token gets a brand-new session. If it never stores a message (a health
check, a read of an empty history), it must leave no key in Redis (or ``noeviction`` Redis could
be filled by anyone) and must not count toward the node's load (or anyone could steer placement
away from a node by sending it cookie-less requests).
"""

from __future__ import annotations

import asyncio

from .chat import Client, sticky
from .conftest import Target, redis_settings


def test_anonymous_reads_write_nothing_and_load_is_sessions_not_hits(
    standalone: Target, namespace: str
) -> None:
    # (Beats only when the test says so: the loop beats once, at the first request.)
    settings = redis_settings(standalone.url, namespace, node_id="n1", heartbeat_interval=60)

    def session_keys() -> list[str]:  # (the node registry, {members}, is the heartbeat's)
        return [k for k in standalone.scan(f"{namespace}:*") if ":{members}" not in k]

    async def scenario() -> dict[str, object]:
        async with sticky(settings) as app:
            members = app.services.members
            assert app.heartbeat is not None
            await app.heartbeat.beat()  # a view with loads: placements count in it from now
            for _ in range(60):
                assert (await Client(app).request("GET", "/ping")).status == 200
                history = await Client(app).request("GET", "/history")
                assert history.status == 200
                assert history.json()["messages"] == []
            keys_after_reads = session_keys()
            active_after_reads = members.active.count()
            placed_after_reads = dict(members.view().loads or {})  # (no beat since: placements)
            await app.heartbeat.beat()
            loads_after_reads = dict(members.view().loads or {})

            talker = Client(app)
            for i in range(4):  # one session, many hits: one unit of load
                assert (await talker.chat(f"hello {i}")).status == 200
            await Client(app).chat("someone else")
            placed_after_chats = dict(members.view().loads or {})
            await app.heartbeat.beat()
            return {"keys": keys_after_reads, "active": active_after_reads,
                    "placed": placed_after_reads, "placed_after": placed_after_chats,
                    "loads": loads_after_reads, "active_after": members.active.count(),
                    "loads_after": dict(members.view().loads or {}),
                    "keys_after": session_keys()}

    out = asyncio.run(scenario())
    assert out["keys"] == []  # 120 anonymous requests: not one key
    assert out["active"] == 0
    assert out["placed"] == {"n1": 0}  # each counted while it ran, then taken back
    assert out["placed_after"] == {"n1": 2}  # two new sessions placed since the last beat
    assert out["loads"] == {"n1": 0}
    assert out["active_after"] == 2  # two sessions stored something
    assert out["loads_after"] == {"n1": 2}
    assert out["keys_after"]  # (the scan sees what the chats stored)
