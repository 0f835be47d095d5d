"""A small real deployment: one private Redis, app nodes (uvicorn processes) and a load balancer.

Every node serves ``examples.fastapi.app:app`` with its own ``STICKYCTX_NODE_ID`` and the same
keys, store and ``STICKYCTX_NODES`` list (which names every node that may ever run, so that the
load balancer's configuration never has to change: a listed node that is not running is just a
backend whose health check fails). Membership is dynamic through Redis heartbeats.

Every wait polls with a deadline; nothing sleeps for a fixed time.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from typing import Any

import httpx

from stickyctx.core.storekeys import SessionKey
from tests.conftest import KEY_A, AppServer
from tests.redis_servers import RedisServer, poll

from .loadbalancers import LoadBalancer

APP = "examples.fastapi.app:app"
HASH_KEY = "h" * 40
# Seconds between heartbeats; a node leaves the view three intervals after its last beat. At
# 0.2 s, busy nodes on a loaded two-core machine beat up to 0.77 s apart, past their 0.6 s expiry,
# and dropped out of each other's views mid-test (spurious failovers). 1 s leaves ample margin.
HEARTBEAT = 1.0
NAMESPACE = "stickyctx"
SETTLE_TIMEOUT = 15.0
ROUTE_COOKIE = "stickyctx_node"


def node_env(node_id: str, nodes: str, redis_url: str) -> dict[str, str]:
    return {
        "STICKYCTX_NODE_ID": node_id,
        "STICKYCTX_NODES": nodes,
        "STICKYCTX_SECRET_KEYS": KEY_A,
        "STICKYCTX_HASH_KEY": HASH_KEY,
        "STICKYCTX_STORE_URL": redis_url,
        "STICKYCTX_COOKIE_SECURE": "0",
        "STICKYCTX_HEARTBEAT_INTERVAL": str(HEARTBEAT),
    }


class Deployment:
    def __init__(self, redis_server: RedisServer, ports: dict[str, int],
                 start_app: Callable[..., AppServer]) -> None:
        self.redis = redis_server
        self.ports = ports
        self.addresses = {node: f"127.0.0.1:{port}" for node, port in ports.items()}
        self.nodes_var = ",".join(f"{n}={a}" for n, a in self.addresses.items())
        self._start_app = start_app
        self.apps: dict[str, AppServer] = {}
        self.lb: LoadBalancer | None = None
        self._redis = redis_server.client(decode_responses=True)  # closed with the server
        self._members = SessionKey(NAMESPACE, "members").key("z")  # as membership.py names it

    def env(self, node_id: str) -> dict[str, str]:
        return node_env(node_id, self.nodes_var, self.redis.url)

    def start_node(self, node_id: str) -> AppServer:
        """Start a node; it has joined the membership once its port is open (lifespan beat)."""
        server = self._start_app(APP, self.env(node_id), port=self.ports[node_id])
        self.apps[node_id] = server
        return server

    def kill_node(self, node_id: str) -> None:
        """SIGKILL: no clean leave; the others drop it when its heartbeat expires."""
        self.apps[node_id].kill()

    # Waiting -----------------------------------------------------------------------------

    def now_ms(self) -> int:
        """Redis's clock, which heartbeat expiries follow."""
        seconds, micros = self._redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def expiry(self, node_id: str) -> int | None:
        """When the node's last heartbeat expires (Redis ms); ``None`` once it is removed."""
        score = self._redis.zscore(self._members, node_id)
        return None if score is None else int(score)

    def live_members(self) -> dict[str, int]:
        """Live node ids and the expiry (Redis ms) their last heartbeat set."""
        found: list[Any] = self._redis.zrangebyscore(self._members, self.now_ms(), "+inf",
                                                     withscores=True)
        return {str(member): int(score) for member, score in found}

    def wait_membership(self, expected: set[str]) -> None:
        """Until exactly ``expected`` are live and each has beaten since: every view agrees."""
        poll(lambda: set(self.live_members()) == expected, timeout=SETTLE_TIMEOUT,
             what=f"membership {sorted(expected)}")
        since = self.now_ms()
        ttl_ms = int(HEARTBEAT * 3 * 1000)

        def everyone_beat_since() -> bool:
            live = self.live_members()
            return set(live) == expected and min(live.values()) > since + ttl_ms

        poll(everyone_beat_since, timeout=SETTLE_TIMEOUT,
             what=f"a heartbeat of each of {sorted(expected)} after they all joined")

    def wait_routes(self, node_ids: set[str]) -> None:
        """Until the load balancer sends a request naming each node (routing cookie) to it."""
        assert self.lb is not None
        with closing(httpx.Client(base_url=self.lb.url, timeout=5.0)) as client:
            for node_id in sorted(node_ids):

                def routed(node_id: str = node_id) -> bool:
                    try:
                        response = client.get("/healthz", headers={
                            "cookie": f"{ROUTE_COOKIE}={node_id}"})
                    except httpx.TransportError:
                        return False
                    return (response.status_code == 200
                            and response.json().get("node") == node_id)

                poll(routed, timeout=SETTLE_TIMEOUT,
                     what=f"{self.lb.kind} routing to {node_id}")

    def close(self) -> None:
        """Stop the load balancer (the app servers and Redis belong to their fixtures)."""
        if self.lb is not None:
            self.lb.stop()
