"""Requests racing a rotation follow to the new id, on Redis, across nodes.

A page fires requests in parallel while one of them rotates the session (the login of a fixation
defence). Those still carrying the old token must not each start an empty session whose token
would overwrite the rotated one (189 of 200 did before the grace): within
``STICKYCTX_ROTATION_GRACE`` they follow to the new id, on whichever node they land, and are
handed its token. Past the grace the old token is revoked as before.
"""

from __future__ import annotations

import asyncio
import time

from tests.support.waiting import poll

from .chat import Client, sticky
from .conftest import NewKey, OpenStore, Target, msg, redis_settings

RACERS = 200


def test_two_hundred_requests_racing_a_rotation_all_follow_to_the_new_id(
    standalone: Target, namespace: str
) -> None:
    node_a = redis_settings(standalone.url, namespace, node_id="a")
    node_b = redis_settings(standalone.url, namespace, node_id="b")

    async def scenario() -> tuple[str, list[tuple[int, str, int, str]]]:
        async with sticky(node_a) as a, sticky(node_b) as b:
            user = Client(a)
            assert (await user.chat("before login")).status == 200
            old_token = user.token

            async def racer(i: int) -> tuple[int, str, int, str]:
                client = Client((a, b)[i % 2], old_token)
                reply = await client.request("GET", "/history")
                body = reply.json()
                return reply.status, body["session_id"], len(body["messages"]), client.token

            rotation = asyncio.ensure_future(user.request("POST", "/rotate"))
            results = await asyncio.gather(*(racer(i) for i in range(RACERS)))
            rotated = await rotation
            assert rotated.status == 200
            new_id = rotated.json()["session_id"]
            # Each racer either ran before the rotation (the old id, its data) or followed.
            return new_id, results

    new_id, results = asyncio.run(scenario())
    statuses = {status for status, *_ in results}
    assert statuses == {200}
    empty = [r for r in results if r[2] == 0]
    assert empty == []  # no racer got an empty, new session
    followed = [r for r in results if r[1] == new_id]
    assert followed  # (the rotation ran amid the racers)
    assert {token for *_, token in followed} != {""}


def test_the_follow_pointer_lapses_after_the_grace(
        standalone: Target, open_store: OpenStore, new_key: NewKey) -> None:
    store = open_store(standalone.url)
    old, new = new_key(), new_key()
    store.append(old, [msg("user", "hello")], created=time.time())
    store.rotate(old, new, follow="pointer", grace=0.3)
    assert store.load(old).follow == "pointer"
    poll(lambda: store.load(old).follow == "", timeout=10, what="the grace to lapse")
    assert store.load(old).status == "revoked"  # revoked still, with nothing to follow
    assert [m.content for m in store.load(new).messages] == ["hello"]
