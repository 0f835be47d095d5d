"""A burst of concurrent chats on a healthy Redis: every one answered, none a spurious 503.

The FastAPI example runs in a real uvicorn process on a private redis-server with the default
pool (100 connections); 500 new sessions each post one message at the same moment. Requests
beyond the pool's size wait for a connection instead of failing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import KEY_A, AppServer
from tests.redis_servers import RedisServer

CONCURRENT = 500
HASH_KEY = "load-test-hash-key-0123456789abcdef0123"


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_500_concurrent_chats_on_a_healthy_redis_are_all_answered(
    clean_environ: None, redis_server: RedisServer, app_server: Callable[..., AppServer]
) -> None:
    server = app_server("examples.fastapi.app:app", {
        "STICKYCTX_SECRET_KEYS": KEY_A,
        "STICKYCTX_HASH_KEY": HASH_KEY,
        "STICKYCTX_NODE_ID": "n1",
        "STICKYCTX_COOKIE_SECURE": "0",
        "STICKYCTX_STORE_URL": redis_server.url,
    })

    async def burst() -> tuple[Counter[int], list[dict[str, object]]]:
        limits = httpx.Limits(max_connections=CONCURRENT, max_keepalive_connections=0)
        bodies: list[dict[str, object]] = []
        statuses: Counter[int] = Counter()

        async def chat(i: int) -> None:
            # A client of its own: its own cookie jar, so its own session.
            async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as c:
                response = await c.post("/chat", json={"message": f"hello from {i}"})
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    bodies.append(response.json())

        await asyncio.gather(*(chat(i) for i in range(CONCURRENT)))
        return statuses, bodies

    statuses, bodies = asyncio.run(burst())
    assert statuses == Counter({200: CONCURRENT})
    assert all(body["affinity"] == "new" and body["turns"] == 1 for body in bodies)
    # Separate sessions, each durably stored in this Redis.
    assert len({str(body["reply"]) for body in bodies}) > 1
    assert redis_server.client().dbsize() >= CONCURRENT
