"""Fixtures for the end-to-end tests: a deployment of real processes behind a real load balancer."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import AppServer, require_binary
from tests.redis_servers import RedisServer, free_port

from .cluster import Deployment
from .loadbalancers import HAProxy, LoadBalancer, Nginx

NODES = ("n1", "n2", "n3", "n4")  # all listed from the start; n4 starts later
FIRST = ("n1", "n2", "n3")
_BALANCERS: dict[str, type[LoadBalancer]] = {"haproxy": HAProxy, "nginx": Nginx}

MakeDeployment = Callable[[str], Deployment]


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the developer's shell reaches the app processes."""
    for name in list(os.environ):
        if name.startswith(("STICKYCTX_", "OPENAI_")):
            monkeypatch.delenv(name)


@pytest.fixture
def deployment(
    clean_environ: None,
    redis_server: RedisServer,
    app_server: Callable[..., AppServer],
    tmp_path: Path,
) -> Iterator[MakeDeployment]:
    """``deployment("haproxy" | "nginx")``: n1..n3 running and settled, behind the balancer."""
    made: list[Deployment] = []

    def make(kind: str) -> Deployment:
        binary = require_binary(kind)
        ports = {node: free_port() for node in NODES}
        setup = Deployment(redis_server, ports, app_server)
        made.append(setup)
        with ThreadPoolExecutor(len(FIRST)) as pool:  # start them side by side
            list(pool.map(setup.start_node, FIRST))
        setup.lb = _BALANCERS[kind](binary, tmp_path / kind, free_port(),
                                    setup.env(FIRST[0])).start()
        setup.wait_membership(set(FIRST))
        setup.wait_routes(set(FIRST))
        return setup

    yield make
    for setup in made:
        setup.close()
