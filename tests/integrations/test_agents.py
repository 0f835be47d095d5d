"""``StickySession``: the OpenAI Agents SDK's ``Session`` over the stickyctx store.

Every test runs on the embedded store and on a real Redis server. The SDK runs for real
(``Runner.run``) with a canned model in place of the network.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import json
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import (
    ModelResponse,
    TResponseInputItem,
    TResponseOutputItem,
    TResponseStreamEvent,
)
from agents.memory import Session, SessionSettings
from agents.model_settings import ModelSettings
from agents.models.interface import Model, ModelTracing
from agents.tool import Tool
from agents.usage import Usage
from fastapi import FastAPI
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from stickyctx import Conversation, SessionGoneError, Settings, StickyMiddleware
from stickyctx.core.flow import SESSION_HEADER
from stickyctx.core.ids import new_session_id
from stickyctx.core.messages import Snapshot
from stickyctx.edges.request import identify
from stickyctx.errors import InvalidMessageError
from stickyctx.fastapi import Conversation as ConversationDep
from stickyctx.integrations.agents import ITEM_FIELD, StickySession
from stickyctx.sansio import run_async
from stickyctx.session.logic import Session as RequestSession
from stickyctx.session.services import Services
from stickyctx.stores import Store, open_store
from tests.conftest import make_settings
from tests.redis_servers import RedisServer

Item = dict[str, Any]

USER: Item = {"role": "user", "content": "What is the weather in Paris? ☀"}
REASONING: Item = {"id": "rs_1", "type": "reasoning",
                   "summary": [{"type": "summary_text", "text": "Call the weather tool."}]}
CALL: Item = {"id": "fc_1", "type": "function_call", "call_id": "call_1",
              "name": "get_weather", "arguments": '{"city": "Paris"}', "status": "completed"}
OUTPUT: Item = {"type": "function_call_output", "call_id": "call_1", "output": "sunny, 24 C"}
ANSWER: Item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": "Sunny, 24 C.", "annotations": [],
                             "logprobs": []}]}
FOLLOW_UP: Item = {"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": "And tomorrow?"}]}
DEVELOPER: Item = {"role": "developer", "content": "Answer in one sentence."}
TURN = [USER, REASONING, CALL, OUTPUT, ANSWER]
# role, stored as a plain message (not as the item's JSON)
STORED_AS = [("user", True), ("assistant", False), ("assistant", False), ("tool", False),
             ("assistant", True)]


def items(values: list[Item]) -> list[TResponseInputItem]:
    return cast("list[TResponseInputItem]", copy.deepcopy(values))


# Backends ---------------------------------------------------------------------------------------

@dataclass
class Env:
    settings: Settings
    store: Store
    services: Services

    def session(self, session_id: str | None = None, **kwargs: Any) -> StickySession:
        return StickySession.for_session_id(session_id or new_session_id(), store=self.store,
                                            settings=self.settings, **kwargs)

    async def stored(self, session_id: str) -> Snapshot:
        return await run_async(self.store.load(self.services.keys.derive(session_id)),
                               self.store.async_io)

    def request(self, session_id: str | None = None,
                idempotency_key: str | None = None) -> tuple[Conversation, RequestSession]:
        """A request's handle, as the middleware builds it (turn lock taken on first use)."""
        token = "new"
        if session_id is not None:
            token = self.services.codec.sign(session_id, self.settings.node_id,
                                             int(self.services.clock()))
        logic = RequestSession(self.services, self.store, identify(self.services, [], token),
                        auto_lock=True, idempotency_key=idempotency_key)
        return Conversation(logic), logic


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_tracing() -> None:
    set_tracing_disabled(True)  # nothing may try the network


@pytest.fixture(params=["memory", "redis"])
async def env(request: pytest.FixtureRequest, anyio_backend: str) -> AsyncIterator[Env]:
    # A request waiting for a turn that a test forgot to end fails fast.
    changes: dict[str, Any] = {"namespace": f"agents-{uuid.uuid4().hex}", "turn_timeout": 2.0}
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server_session")
        changes.update(store_url=server.url, hash_key="h" * 40)
    settings = make_settings(**changes)
    store = open_store(settings)
    try:
        yield Env(settings, store, Services(settings))
    finally:
        await store.aclose()


# The Session protocol ---------------------------------------------------------------------------

@pytest.mark.anyio
async def test_items_round_trip_exactly_and_keep_their_turn(env: Env) -> None:
    session = env.session()
    assert isinstance(session, Session)
    await session.add_items(items(TURN))
    assert await session.get_items() == TURN
    assert await env.session(session.session_id).get_items() == TURN  # read from the store

    snapshot = await env.stored(session.session_id)
    assert [(m.role, ITEM_FIELD not in m.fields) for m in snapshot.messages] == STORED_AS
    assert snapshot.messages[0].content == USER["content"]  # a chat message stays one
    assert json.loads(snapshot.messages[2].content) == CALL
    assert {m.group for m in snapshot.messages} == {snapshot.messages[0].seq}  # one turn
    assert all(m.tokens > 3 for m in snapshot.messages)  # counted, not just framed


@pytest.mark.anyio
async def test_add_items_is_one_atomic_write(env: Env) -> None:
    session = env.session()
    await session.add_items(items([DEVELOPER]))
    before = (await env.stored(session.session_id)).version
    await session.add_items(items(TURN))
    assert (await env.stored(session.session_id)).version == before + 1

    broken = {"type": "function_call", "call_id": "c", "arguments": {1, 2}}  # not JSON
    with pytest.raises(InvalidMessageError):
        await session.add_items([*items([FOLLOW_UP]), cast("TResponseInputItem", broken)])
    assert await session.get_items() == [DEVELOPER, *TURN]  # nothing of the batch stored


@pytest.mark.anyio
async def test_items_are_copies_of_what_is_stored(env: Env) -> None:
    session = env.session()
    added = items([ANSWER, FOLLOW_UP])
    await session.add_items(added)
    cast("Item", added[0])["content"][0]["text"] = "changed by the caller after adding"
    got = await session.get_items()
    cast("Item", got[1])["content"].append({"type": "input_text", "text": "changed by reader"})
    assert await session.get_items() == [ANSWER, FOLLOW_UP]


@pytest.mark.anyio
@pytest.mark.parametrize(("limit", "settings_limit", "expected"), [
    pytest.param(None, None, TURN, id="all"),
    pytest.param(2, None, TURN[-2:], id="latest-two"),
    pytest.param(99, None, TURN, id="more-than-stored"),
    pytest.param(0, None, [], id="zero"),
    pytest.param(-1, None, [], id="negative"),
    pytest.param(None, 3, TURN[-3:], id="settings-limit"),
    pytest.param(1, 3, TURN[-1:], id="explicit-beats-settings"),
])
async def test_get_items_limit(env: Env, limit: int | None, settings_limit: int | None,
                               expected: list[Item]) -> None:
    session = env.session(session_settings=SessionSettings(limit=settings_limit))
    await session.add_items(items(TURN))
    assert await session.get_items(limit) == expected


@pytest.mark.anyio
async def test_pop_item_returns_the_newest_and_removes_it(env: Env) -> None:
    session = env.session()
    assert await session.pop_item() is None  # no session yet
    await session.add_items(items(TURN))
    newest, then = await session.pop_item(), await session.pop_item()
    assert (newest, then) == (ANSWER, OUTPUT)
    assert await session.get_items() == TURN[:3]
    await session.add_items(items([OUTPUT]))
    assert await session.get_items() == [*TURN[:3], OUTPUT]


@pytest.mark.anyio
async def test_clear_session_forgets_every_item(env: Env) -> None:
    session = env.session()
    await session.add_items(items(TURN))
    await session.clear_session()
    assert await session.get_items() == []
    assert await session.pop_item() is None
    await session.add_items(items([FOLLOW_UP]))
    assert await env.session(session.session_id).get_items() == [FOLLOW_UP]


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["job", "request"])
async def test_concurrent_pops_never_return_the_same_item(env: Env, where: str) -> None:
    job = env.session()
    stored = [{"role": "user", "content": f"message {i}"} if i % 2 else
              {**CALL, "call_id": f"call_{i}"} for i in range(20)]
    await job.add_items(items(stored))
    conv, logic = env.request(job.session_id)
    session = job if where == "job" else StickySession(conv)  # the request's first touch
    popped = await asyncio.gather(*(session.pop_item() for _ in range(30)))
    got = [item for item in popped if item is not None]
    assert len(got) == 20
    assert sorted(json.dumps(i, sort_keys=True) for i in got) == sorted(
        json.dumps(i, sort_keys=True) for i in stored)
    assert await session.pop_item() is None
    await run_async(logic.end(), env.store.async_io)


@pytest.mark.anyio
async def test_a_session_outside_a_request_reads_afresh(env: Env) -> None:
    job = env.session()
    other = env.session(job.session_id)
    await job.add_items(items([USER]))
    assert await job.get_items() == [USER]
    await other.add_items(items(TURN[1:]))  # another writer, between two reads of the job
    assert await job.get_items() == TURN


@pytest.mark.anyio
async def test_a_request_handle_serves_the_sdk(env: Env) -> None:
    conv, logic = env.request()
    session = StickySession(conv)
    assert session.session_id == conv.session_id
    await session.add_items(items(TURN))
    assert await session.get_items(2) == TURN[-2:]
    assert conv.holds_turn  # the request's turn lock, as for any other use of the handle
    await conv.rotate()
    assert session.session_id == conv.session_id  # follows the handle
    await run_async(logic.end(), env.store.async_io)
    assert await env.session(conv.session_id).get_items() == TURN


@pytest.mark.anyio
async def test_a_retried_request_stores_its_items_once(env: Env) -> None:
    session_id = env.session().session_id
    for _attempt in range(2):  # the same request twice, as a client retries it
        conv, logic = env.request(session_id, idempotency_key="turn-1")
        session = StickySession(conv)
        await session.add_items(items(TURN[:1]))
        await session.add_items(items(TURN[1:]))
        await run_async(logic.end(), env.store.async_io)
    assert await env.session(session_id).get_items() == TURN


@pytest.mark.anyio
@pytest.mark.parametrize("bad", [
    pytest.param("", id="empty"),
    pytest.param("a:messages", id="key-injection"),
    pytest.param("A" * 23, id="too-short"),
    pytest.param("A" * 25, id="too-long"),
    pytest.param("A" * 23 + "/", id="bad-character"),
    pytest.param(None, id="not-a-string"),
])
async def test_for_session_id_refuses_ids_stickyctx_would_not_issue(env: Env, bad: Any) -> None:
    with pytest.raises(ValueError, match="not a stickyctx session id"):
        StickySession.for_session_id(bad, store=env.store, settings=env.settings)


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["rotate", "destroy"])
async def test_a_rotated_or_destroyed_session_is_gone_for_a_job(env: Env, how: str) -> None:
    conv, logic = env.request()
    await conv.extend([USER])
    old_id = conv.session_id
    await (conv.rotate() if how == "rotate" else conv.destroy())
    await run_async(logic.end(), env.store.async_io)
    job = env.session(old_id)
    with pytest.raises(SessionGoneError):
        await job.get_items()
    with pytest.raises(SessionGoneError):
        await job.add_items(items([FOLLOW_UP]))
    if how == "rotate":
        assert await env.session(conv.session_id).get_items() == [USER]


@pytest.mark.anyio
async def test_a_token_budget_keeps_the_newest_whole_turns(env: Env) -> None:
    turns = [[{**USER, "content": f"question {t}"}, {**CALL, "call_id": f"call_{t}"},
              {**OUTPUT, "call_id": f"call_{t}"}, ANSWER] for t in range(3)]
    history = [item for turn in turns for item in turn]
    session = env.session()
    for turn in turns:
        await session.add_items(items(turn))
    per_turn = (await env.stored(session.session_id)).total_tokens / 3  # equal-sized turns

    def windowed(budget: float) -> StickySession:
        return env.session(session.session_id, token_budget=int(budget))

    assert await windowed(10 * per_turn).get_items() == history
    assert await windowed(2.5 * per_turn).get_items() == history[4:]
    assert await windowed(1.5 * per_turn).get_items() == history[8:]
    assert await windowed(1.5 * per_turn).get_items(limit=2) == history[-2:]
    assert await session.get_items() == history  # the window trims nothing stored


@pytest.mark.anyio
async def test_a_cancelled_write_still_completes(env: Env) -> None:
    conv, logic = env.request()  # its first write takes the turn lock: two store calls
    session = StickySession(conv)
    task = asyncio.ensure_future(session.add_items(items(TURN)))
    await asyncio.sleep(0)  # the write has started
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await run_async(logic.end(), env.store.async_io)
    assert await env.session(conv.session_id).get_items() == TURN


def test_without_the_sdk_the_import_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in sys.modules if n == "agents" or n.startswith("agents.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "stickyctx.integrations.agents")
    with pytest.raises(ImportError, match=r"pip install 'stickyctx\[agents\]'"):
        importlib.import_module("stickyctx.integrations.agents")


# The SDK's own runner ---------------------------------------------------------------------------

class CannedModel(Model):
    """Answers with canned outputs, in order, and records the input of every call."""

    def __init__(self, outputs: list[list[TResponseOutputItem]]) -> None:
        self.outputs = outputs
        self.inputs: list[list[Item]] = []

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any,
    ) -> ModelResponse:
        given = [{"role": "user", "content": input}] if isinstance(input, str) else input
        self.inputs.append(copy.deepcopy(cast("list[Item]", given)))
        return ModelResponse(output=self.outputs.pop(0), usage=Usage(), response_id=None)

    def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any,
    ) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("these tests do not stream")


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def said(text: str, item_id: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id=item_id, type="message", role="assistant", status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])])


def chat_app(env: Env, model: CannedModel) -> FastAPI:
    agent = Agent(name="weather", instructions="Answer briefly.", model=model,
                  tools=[get_weather])
    app = FastAPI()

    @app.post("/chat")
    async def chat(conv: ConversationDep, body: dict[str, str]) -> dict[str, str]:
        result = await Runner.run(agent, body["message"], session=StickySession(conv))
        return {"reply": str(result.final_output), "session": conv.session_id}

    app.add_middleware(StickyMiddleware, settings=env.settings, store=env.store)
    return app


def brief(item: Item) -> tuple[Any, ...]:
    """What identifies an item, whatever the SDK normalizes on the way to the model."""
    content = item.get("content")
    text = content if isinstance(content, str) else content[0]["text"] if content else None
    return (item.get("type", "message"), item.get("role"), item.get("call_id"), text,
            item.get("output"))


@pytest.mark.anyio
async def test_the_runner_gets_the_history_from_the_store(env: Env) -> None:
    model = CannedModel([
        [ResponseFunctionToolCall(id="fc_1", type="function_call", call_id="call_1",
                                  name="get_weather", arguments='{"city": "Paris"}',
                                  status="completed")],
        [said("Sunny in Paris.", "msg_1")],
        [said("You asked about Paris.", "msg_2")],
    ])
    transport = httpx.ASGITransport(app=chat_app(env, model))
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        first = await client.post("/chat", json={"message": "Weather in Paris?"},
                                  headers={SESSION_HEADER: "new"})
        assert first.status_code == 200, first.text
        assert first.json()["reply"] == "Sunny in Paris."
        token = first.headers[SESSION_HEADER]
        second = await client.post("/chat", json={"message": "What did I ask?"},
                                   headers={SESSION_HEADER: token})
        assert second.status_code == 200, second.text
        assert second.json()["reply"] == "You asked about Paris."
    session_id = first.json()["session"]
    assert second.json()["session"] == session_id

    first_run = [
        ("message", "user", None, "Weather in Paris?", None),
        ("function_call", None, "call_1", None, None),
        ("function_call_output", None, "call_1", None, "sunny in Paris"),
        ("message", "assistant", None, "Sunny in Paris.", None),
    ]
    second_input = [*first_run, ("message", "user", None, "What did I ask?", None)]
    assert [brief(i) for i in model.inputs[0]] == first_run[:1]
    assert [brief(i) for i in model.inputs[2]] == second_input  # the session gave the history
    assert model.inputs[2][:3] == model.inputs[1]  # exactly as the first run saw them

    stored = await env.session(session_id).get_items()
    assert [brief(cast("Item", i)) for i in stored] == [
        *second_input, ("message", "assistant", None, "You asked about Paris.", None)]
    assert stored[:5] == model.inputs[2]
    snapshot = await env.stored(session_id)
    assert [m.group for m in snapshot.messages] == [1, 1, 1, 1, 5, 5]  # calls stay in turn 1
