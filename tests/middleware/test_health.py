"""``check_store`` / ``acheck_store``: the store's state for a health endpoint, never raising.

Against the embedded store and a real private Redis server that is then killed (SIGKILL).
"""

from __future__ import annotations

import asyncio

from stickyctx import Settings
from stickyctx.edges.health import StoreHealth, acheck_store, check_store
from stickyctx.stores import open_store
from tests.conftest import KEY_A
from tests.redis_fixtures import MakeRedisServer


def both(settings: Settings) -> tuple[StoreHealth, StoreHealth]:
    store = open_store(settings)

    async def probe() -> StoreHealth:
        return await acheck_store(store, settings)

    try:
        return check_store(store, settings), asyncio.run(probe())
    finally:
        store.close()


def test_the_embedded_store_answers() -> None:
    settings = Settings(secret_keys=(KEY_A,), node_id="n1")
    for health in both(settings):
        assert (health.kind, health.ok) == ("memory", True)
        assert health.detail.startswith("read in ")


def test_redis_up_then_killed(redis_server_factory: MakeRedisServer) -> None:
    server = redis_server_factory()
    settings = Settings(secret_keys=(KEY_A,), node_id="n1", store_url=server.url,
                        hash_key="h" * 40, store_timeout=0.5)
    for health in both(settings):
        assert (health.kind, health.ok) == ("redis", True)
    assert server.client().dbsize() == 0  # the probe read, and wrote nothing
    server.kill()
    for health in both(settings):
        assert (health.kind, health.ok) == ("redis", False)
        assert health.detail.startswith("StoreUnavailableError")
        assert server.url not in health.detail
        assert health.as_dict() == {"kind": "redis", "ok": False, "detail": health.detail}
