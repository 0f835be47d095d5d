"""Principals and their conversations, driven without an edge: a ``UserSpace`` per call over
a store of each backend (the embedded store, a real Redis server, a real Redis Cluster)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stickyctx import Settings
from stickyctx.sansio import run_sync
from stickyctx.session.conversation import ConversationSession
from stickyctx.session.services import Services
from stickyctx.session.users import UserSpace
from stickyctx.stores import Store, open_store
from tests.conftest import make_settings
from tests.redis.conftest import redis_settings


class Space:
    """One principal's ``UserSpace`` operations, called blocking (a fresh space per call, as
    each request builds its own)."""

    def __init__(self, services: Services, store: Store, principal: str,
                 tenant: str = "") -> None:
        self.services, self.store = services, store
        self.principal, self.tenant = principal, tenant

    def space(self) -> UserSpace:
        return UserSpace(self.services, self.store, self.principal, tenant=self.tenant)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            op = getattr(self.space(), name)(*args, **kwargs)
            return run_sync(op, self.store.sync_io)

        return call

    def run(self, op: Any) -> Any:
        return run_sync(op, self.store.sync_io)

    def open(self, conversation_id: str) -> ConversationSession:
        session: ConversationSession = self.run(self.space().open(conversation_id))
        return session

    def turn(self, conversation_id: str, *messages: tuple[str, str], status: int = 200,
             turn_id: str | None = None) -> ConversationSession:
        """One request's turn in the conversation: appends, then the response's status."""
        session = self.open(conversation_id)
        for role, text in messages:
            self.run(session.append(role, text, turn_id=turn_id))
        self.run(session.end(status))
        return session


class World:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services = Services(settings, clock=time.time)
        self.store = open_store(settings, time.time)

    def user(self, principal: str, tenant: str = "") -> Space:
        return Space(self.services, self.store, principal, tenant)


MakeWorld = Callable[..., World]


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def make_world(request: pytest.FixtureRequest) -> Iterator[MakeWorld]:
    """Nodes over one store of the backend under test (``make_world(**settings_changes)``)."""
    namespace = f"users-{uuid.uuid4().hex[:12]}"
    made: list[World] = []
    shared: list[Store] = []

    def make(**changes: Any) -> World:
        if request.param == "memory":
            world = World(make_settings(namespace=namespace, **changes))
            if shared:
                world.store.close()
                world.store = shared[0]  # nodes of one process share the embedded store
            else:
                shared.append(world.store)
        else:
            fixture = "redis_server_session" if request.param == "redis" else "redis_cluster"
            server = request.getfixturevalue(fixture)
            world = World(redis_settings(server.url, namespace, **changes))
        made.append(world)
        return world

    yield make
    for world in made:
        world.store.close()


@pytest.fixture
def world(make_world: MakeWorld) -> World:
    return make_world()
