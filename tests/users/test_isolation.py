"""Isolation as a property: random principals (in two tenants), conversation ids (shared on
purpose, so that principals collide on them) and operations; after every step, what each
principal reads is exactly what a model of ownership says, so no read ever crosses principals.
Run on the embedded store, a real Redis server and a real Redis Cluster."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from stickyctx.errors import ConversationNotFoundError

from .conftest import MakeWorld, Space

PRINCIPALS = [("", "ann"), ("", "bob"), ("", "cy"), ("other", "ann")]  # ann twice: two tenants
IDS = ["c1", "c2", "c3"]

who = st.integers(0, len(PRINCIPALS) - 1)
cid = st.sampled_from(IDS)
text = st.text(alphabet="abcxyz ", min_size=1, max_size=12)
steps = st.one_of(
    st.tuples(st.just("create"), who, cid),
    st.tuples(st.just("turn"), who, cid, text),
    st.tuples(st.just("remember"), who, st.sampled_from(["k1", "k2"]), text),
    st.tuples(st.just("state"), who, cid, text),
    st.tuples(st.just("delete"), who, cid),
    st.tuples(st.just("share"), who, cid, who),
    st.tuples(st.just("erase"), who),
)


@dataclass
class Conv:
    owner: int
    members: set[int] = field(default_factory=set)
    history: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Model:
    convs: dict[tuple[str, str], Conv] = field(default_factory=dict)  # (tenant, id)
    dead: set[tuple[str, str]] = field(default_factory=set)
    memory: dict[int, dict[str, str]] = field(default_factory=dict)

    def visible(self, p: int, c: str) -> Conv | None:
        conv = self.convs.get((PRINCIPALS[p][0], c))
        return conv if conv is not None and (conv.owner == p or p in conv.members) else None


def apply(step: tuple[Any, ...], model: Model, users: list[Space]) -> None:
    kind, p = step[0], step[1]
    me, tenant = users[p], PRINCIPALS[p][0]
    if kind == "create":
        key = (tenant, step[2])
        existing = model.convs.get(key)
        if key in model.dead or (existing is not None and existing.owner != p):
            with pytest.raises(ConversationNotFoundError):
                me.create(step[2])
        else:
            me.create(step[2])
            model.convs.setdefault(key, Conv(p))
        return
    if kind == "remember":
        me.remember(step[2], step[3])
        model.memory.setdefault(p, {})[step[2]] = step[3]
        return
    if kind == "erase":
        me.erase()
        model.memory.pop(p, None)
        for key, conv in list(model.convs.items()):
            if conv.owner == p:
                del model.convs[key]
                model.dead.add(key)
            conv.members.discard(p)
        return
    conv = model.visible(p, step[2])
    if conv is None:
        attempts = {
            "turn": lambda: me.turn(step[2], ("user", step[3])),
            "state": lambda: me.set_state(step[2], "s", step[3]),
            "delete": lambda: me.delete(step[2]),
            "share": lambda: me.add_member(step[2], PRINCIPALS[step[3]][1]),
        }
        with pytest.raises(ConversationNotFoundError):
            attempts[kind]()
        return
    if kind == "turn":
        me.turn(step[2], ("user", step[3]))
        conv.history.append(step[3])
    elif kind == "state":
        me.set_state(step[2], "s", step[3])
        conv.state["s"] = step[3]
    elif kind == "delete":
        me.delete(step[2])
        if conv.owner == p:
            del model.convs[(tenant, step[2])]
            model.dead.add((tenant, step[2]))
        else:
            conv.members.discard(p)
    elif kind == "share":
        other = step[3]
        if conv.owner != p:
            with pytest.raises(ConversationNotFoundError):
                me.add_member(step[2], PRINCIPALS[other][1])
            return
        me.add_member(step[2], PRINCIPALS[other][1])
        # A member is named within the owner's tenant: "ann" of another tenant is not the
        # one added; the "ann" of this tenant is.
        member = PRINCIPALS.index((tenant, PRINCIPALS[other][1])) if (
            tenant, PRINCIPALS[other][1]) in PRINCIPALS else None
        if member is not None and member != p:
            conv.members.add(member)


def check(model: Model, users: list[Space]) -> None:
    """Every principal reads exactly its own view of every id."""
    for p, me in enumerate(users):
        listed = {c["id"] for c in me.list(limit=100)["conversations"]}
        assert listed == {c for c in IDS if model.visible(p, c) is not None}
        assert me.memory() == model.memory.get(p, {})
        for c in IDS:
            conv = model.visible(p, c)
            if conv is None:
                with pytest.raises(ConversationNotFoundError):
                    me.state(c)
                continue
            session = me.open(c)
            stored = [m["content"] for m in me.run(session.messages())]
            me.run(session.end(200))
            assert stored == conv.history
            assert me.state(c) == conv.state


def run(make_world: MakeWorld, program: list[tuple[Any, ...]]) -> None:
    world = make_world()
    run_id = uuid.uuid4().hex[:8]  # examples never see each other's data
    users = [world.user(name, tenant=f"{tenant}-{run_id}") for tenant, name in PRINCIPALS]
    model = Model()
    for step in program:
        apply(step, model, users)
        check(model, users)


@pytest.mark.parametrize("make_world", ["memory", "redis", "redis-cluster"], indirect=True)
@hsettings(max_examples=40, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(program=st.lists(steps, min_size=1, max_size=12))
def test_no_read_ever_crosses_principals(make_world: MakeWorld,
                                         program: list[tuple[Any, ...]]) -> None:
    run(make_world, program)
