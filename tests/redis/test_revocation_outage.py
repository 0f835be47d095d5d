"""A revoked session is never served again, outage or not.

Two nodes share a Redis (``redis-server`` of this test's own, killed with ``kill -9``). Both hold
the session in their hot tier; node A destroys it (or rotates it away from its id) while Redis is
up; then Redis dies. Node B could not have learned of the revocation: by default it serves
nothing from memory while the store is down (a clear ``StoreUnavailableError``, 503), so the old
token gets nothing. With ``STICKYCTX_STALE_READS=1`` (opted in) B would serve its old copy: the
trade that setting makes, shown here so that this test fails if the default ever flips.
"""

from __future__ import annotations

import time

import pytest

from stickyctx.errors import StoreUnavailableError
from tests.redis_fixtures import MakeRedisServer

from .conftest import NewKey, OpenStore, msg

TIMEOUT = 0.5


@pytest.mark.parametrize("revocation", ["destroy", "rotate"])
def test_a_revoked_session_is_not_served_from_memory_during_an_outage(
    redis_server_factory: MakeRedisServer, open_store: OpenStore, new_key: NewKey,
    revocation: str,
) -> None:
    server = redis_server_factory()
    node_a = open_store(server.url, store_timeout=TIMEOUT, node_id="a")
    node_b = open_store(server.url, store_timeout=TIMEOUT, node_id="b")
    opted_in = open_store(server.url, store_timeout=TIMEOUT, node_id="c", stale_reads=True)
    key = new_key()
    node_a.append(key, [msg("user", "my card number is 4111")], created=time.time())
    for node in (node_a, node_b, opted_in):  # every node holds it in memory
        assert [m.content for m in node.load(key).messages] == ["my card number is 4111"]

    if revocation == "destroy":
        node_a.destroy(key)
    else:
        node_a.rotate(key, new_key())
    assert node_a.load(key).status == "revoked"  # (Redis is up: every node would see it)

    server.kill()  # kill -9: B had no chance to hear of the revocation
    with pytest.raises(StoreUnavailableError):
        node_b.load(key)
    with pytest.raises(StoreUnavailableError):
        node_a.load(key)  # the revoking node dropped its own copy too
    # Opted in, a node serves what it last saw: the revocation is crossed (documented trade).
    served = opted_in.load(key)
    assert served.stale
    assert [m.content for m in served.messages] == ["my card number is 4111"]
