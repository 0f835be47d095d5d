"""Affinity by conversation behind a real HAProxy (and nginx) configured by ``stickyctx lb-config``.

Three nodes of the FastAPI example on one private Redis. Signed-in users each create several
conversations (ids minted by stickyctx) and chat in them in turn, in an order that jumps between
conversations: the client echoes, per conversation, the node the last response named
(``X-Stickyctx-Node``), as the chat page does. Nearly every request must be served by the node
that holds the conversation (the body's ``node`` is its ``owner``), and the owners must be
spread over the nodes (bounded load, not one node for everything). Then a node is killed
(SIGKILL): its conversations fail over to the others with their whole history, and are served
by their new owners from then on.
"""

from __future__ import annotations

from collections import Counter
from contextlib import closing

import httpx
import pytest

from .conftest import MakeDeployment

USERS = 6
CONVERSATIONS = 4  # per user
ROUNDS = 5  # messages per conversation
VICTIM = "n3"


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", [
    pytest.param("haproxy", marks=pytest.mark.needs_binary("haproxy")),
    pytest.param("nginx", marks=pytest.mark.needs_binary("nginx"))])
def test_requests_about_a_conversation_reach_the_node_that_holds_it(
    deployment: MakeDeployment, kind: str,
) -> None:
    setup = deployment(kind)
    assert setup.lb is not None
    served: Counter[bool] = Counter()
    after: Counter[bool] = Counter()  # once the dead node's conversations have moved
    owners: Counter[str] = Counter()
    clients = [httpx.Client(base_url=setup.lb.url, timeout=30.0) for _ in range(USERS)]
    try:
        hint: dict[tuple[int, str], str] = {}
        conversations: list[tuple[int, str]] = []
        for u, client in enumerate(clients):
            assert client.post("/login", json={"user": f"user{u}"}).status_code == 200
            for _ in range(CONVERSATIONS):
                made = client.post("/conversations")
                assert made.status_code == 200
                cid = made.json()["id"]
                hint[(u, cid)] = made.headers["x-stickyctx-node"]
                conversations.append((u, cid))
        for round_ in range(ROUNDS):
            # Interleave: every request is about another conversation than the one before.
            for u, cid in conversations:
                response = clients[u].post(
                    f"/conversations/{cid}/chat", json={"message": f"round {round_}"},
                    headers={"x-stickyctx-node": hint[(u, cid)]})
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["turns"] == round_ + 1  # the whole history, whichever node
                served[body["node"] == body["owner"]] += 1
                owners[body["owner"]] += 1
                hint[(u, cid)] = response.headers["x-stickyctx-node"]
        # The history survives in full, read through any node.
        u, cid = conversations[0]
        history = clients[u].get(f"/conversations/{cid}/history").json()["messages"]
        assert len(history) == 2 * ROUNDS

        # A node dies: its conversations fail over, whole, and stay with their new owners.
        setup.kill_node(VICTIM)
        setup.wait_membership({"n1", "n2"})
        moved = {(u, cid) for u, cid in conversations if hint[(u, cid)] == VICTIM}
        assert moved
        for round_ in (ROUNDS, ROUNDS + 1):
            for u, cid in conversations:
                response = clients[u].post(
                    f"/conversations/{cid}/chat", json={"message": f"round {round_}"},
                    headers={"x-stickyctx-node": hint[(u, cid)]})
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["turns"] == round_ + 1  # nothing acknowledged was lost
                assert body["owner"] != VICTIM
                if round_ == ROUNDS and (u, cid) in moved:
                    assert body["affinity"] == "failover"
                if round_ == ROUNDS + 1:
                    after[body["node"] == body["owner"]] += 1
                hint[(u, cid)] = response.headers["x-stickyctx-node"]
    finally:
        for client in clients:
            client.close()
    total = sum(served.values())
    print(f"served by the owner: {served[True]}/{total}; owners: {dict(owners)}; "
          f"after the failover: {after[True]}/{sum(after.values())}")
    assert total == USERS * CONVERSATIONS * ROUNDS
    assert served[True] / total >= 0.99, served
    assert len(owners) == 3, owners  # spread over the three nodes
    assert after[True] / sum(after.values()) >= 0.99, after

    # Another user asking for these conversations through the balancer: 404, never data.
    with closing(httpx.Client(base_url=setup.lb.url, timeout=30.0)) as intruder:
        intruder.post("/login", json={"user": "intruder"})
        for _u, cid in conversations[:4]:
            assert intruder.get(f"/conversations/{cid}/history").status_code == 404
