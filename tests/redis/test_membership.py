"""Dynamic membership through Redis heartbeats: nodes see each other and each other's loads, a
node that leaves is gone from the next view, one that stops beating after three intervals."""

from __future__ import annotations

import time

from stickyctx.cluster.members import MembershipManager
from stickyctx.core.flow import Membership
from stickyctx.sansio import run_sync
from tests.redis_servers import poll
from tests.support.stores import SyncCalls

from .conftest import OpenStore, Target, redis_settings

INTERVAL = 0.2


def test_nodes_see_each_other_and_their_loads_and_departures(
    target: Target, open_store: OpenStore, namespace: str
) -> None:
    managers: dict[str, MembershipManager] = {}
    stores: dict[str, SyncCalls] = {}
    for node, port in (("n1", 8001), ("n2", 8002)):
        settings = redis_settings(target.url, namespace, node_id=node,
                                  heartbeat_interval=INTERVAL, advertise=f"10.0.0.9:{port}")
        managers[node] = MembershipManager(settings)
        stores[node] = open_store(target.url, node_id=node)

    def beat(node: str, leaving: bool = False) -> Membership:
        store = stores[node].store
        return run_sync(managers[node].heartbeat(store, leaving), store.sync_io)

    assert beat("n1").ids() == {"n1"}
    for session in ("s1", "s2", "s3"):
        managers["n1"].active.touch(session)
    assert beat("n2").loads == {"n1": 0, "n2": 0}  # n1 has not shared its count yet
    beat("n1")
    view = beat("n2")
    assert view.ids() == {"n1", "n2"}
    assert view.loads == {"n1": 3, "n2": 0}  # n1 shared its active-session count
    assert view.address("n1") == "10.0.0.9:8001"
    managers["n2"].active.touch("s4")
    beat("n2")
    view = beat("n1")
    assert view.ids() == {"n1", "n2"}
    assert view.loads == {"n1": 3, "n2": 1}
    assert managers["n1"].view() == view  # requests read the last view, without I/O

    beat("n2", leaving=True)  # a clean shutdown: gone from the very next view
    assert beat("n1").ids() == {"n1"}

    stopped = time.monotonic()  # (before its last beat: that beat comes later)
    assert beat("n2").ids() == {"n1", "n2"}  # back; then it stops beating (a crash)
    assert beat("n1").ids() == {"n1", "n2"}
    gone = poll(lambda: "n2" not in beat("n1").ids() and time.monotonic(), timeout=5,
                what="a silent node gone from the view")
    assert gone - stopped >= 3 * INTERVAL - 0.002  # its heartbeat lasts three intervals...
    assert gone - stopped < 3 * INTERVAL + 2  # ...and no longer
    assert managers["n1"].view().ids() == {"n1"}
