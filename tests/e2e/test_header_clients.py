"""Header-transport clients behind the generated load-balancer configurations (real HAProxy and
nginx in front of three real app nodes on a real Redis).

A client without cookies sends only its token (``X-Stickyctx-Session``), never an
``X-Stickyctx-Node`` header: every request after its first must reach the owner (a ``hit``), and
the history grows turn by turn.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .conftest import FIRST, MakeDeployment

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CONVERSATIONS = 12
TURNS = 5


def converse(base_url: str, name: str) -> list[tuple[str, str, int]]:
    """(owner, affinity, stored turns) of each turn, sending only the token header."""
    token = "new"
    seen = []
    with httpx.Client(base_url=base_url, timeout=20.0) as client:
        for turn in range(1, TURNS + 1):
            response = client.post("/chat", json={"message": f"{name} turn {turn}"},
                                   headers={"X-Stickyctx-Session": token})
            assert response.status_code == 200, response.text
            assert not client.cookies  # nothing came back as a cookie
            body = response.json()
            seen.append((body["owner"], body["affinity"], body["turns"]))
            token = response.headers.get("x-stickyctx-session", token)
    return seen


@pytest.mark.parametrize("kind", [pytest.param("haproxy", id="haproxy"),
                                  pytest.param("nginx", id="nginx")])
def test_a_client_sending_only_its_token_stays_on_the_owner(deployment: MakeDeployment,
                                                            kind: str) -> None:
    setup = deployment(kind)
    assert setup.lb is not None
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda i: converse(setup.lb.url, f"h{i:02d}"),
                             range(CONVERSATIONS)))
    owners: Counter[str] = Counter()
    for seen in runs:
        first_owner = seen[0][0]
        owners[first_owner] += 1
        assert [s[0] for s in seen] == [first_owner] * TURNS  # the owner never changes
        assert [s[1] for s in seen[1:]] == ["hit"] * (TURNS - 1), seen
        assert [s[2] for s in seen] == list(range(1, TURNS + 1))
    assert set(owners) <= set(FIRST)
    assert len(owners) >= 2  # placement spreads them: routing is not "everything on one node"
