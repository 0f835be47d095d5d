"""``StickyChatMessageHistory``: LangChain's chat message history over a stickyctx conversation.

Every test runs on a ``SyncConversation`` and on a ``Conversation`` (through the async methods,
on one event loop), each on the embedded store and on a real Redis server, one request per
``with`` block as a web app would use it. The behaviours are those langchain-core's own tests
check of ``BaseChatMessageHistory`` and ``InMemoryChatMessageHistory``
(``tests/unit_tests/chat_history``, and ``RunnableWithMessageHistory`` in
``tests/unit_tests/runnables/test_history.py``), plus what stickyctx adds: durability across
requests and nodes, one atomic write per ``add_messages``, and the token window.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from langchain_core._api import LangChainDeprecationWarning
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_openai_messages,
    trim_messages,
)
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory
from pydantic import BaseModel

from stickyctx import StickyMiddleware, SyncConversation
from stickyctx.core.formats import ITEM_FIELD
from stickyctx.core.tokenizer import REPLY_PRIMER_TOKENS, load_tokenizer
from stickyctx.fastapi import Conversation
from stickyctx.integrations.langchain import StickyChatMessageHistory
from tests.context.backends import KINDS, Driver, EventLoop
from tests.context.harness import Chat, settings_for

History = StickyChatMessageHistory


@pytest.fixture(params=["sync", "async", "redis-sync", "redis-async"])
def kind(request: pytest.FixtureRequest) -> Iterator[Driver]:
    server = KINDS[request.param].server
    if server is None:
        yield Driver.memory(request.param)
        return
    driver = Driver.on_server(request.param, request.getfixturevalue(server).url)
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture(scope="module", autouse=True)
def _event_loop() -> Iterator[None]:
    yield
    EventLoop.close()


class Session:
    """One conversation, request by request, seen through LangChain histories."""

    def __init__(self, kind: Driver, **settings: Any) -> None:
        self.chat = Chat(kind, settings_for(**settings))
        self.is_sync = kind.path == "sync"

    @contextmanager
    def request(self, *, elsewhere: bool = False, **options: Any) -> Iterator[History]:
        """One request's history (``elsewhere``: served by another node, on Redis)."""
        chat = self.chat.other_node() if elsewhere else self.chat
        with chat.turn() as request:
            yield StickyChatMessageHistory(request.handle, **options)

    def stored(self) -> list[dict[str, Any]]:
        with self.chat.turn() as request:
            return request.messages()


def get(history: History) -> list[BaseMessage]:
    if isinstance(history.conversation, SyncConversation):
        return history.messages
    return EventLoop.run(history.aget_messages())


def add(history: History, messages: Sequence[BaseMessage]) -> None:
    if isinstance(history.conversation, SyncConversation):
        history.add_messages(messages)
    else:
        EventLoop.run(history.aadd_messages(messages))


def clear(history: History) -> None:
    if isinstance(history.conversation, SyncConversation):
        history.clear()
    else:
        EventLoop.run(history.aclear())


def window(history: History, budget: int | None = None) -> list[BaseMessage]:
    if isinstance(history.conversation, SyncConversation):
        return history.window(budget)
    return EventLoop.run(history.awindow(budget))


# BaseChatMessageHistory ------------------------------------------------------------------------

def test_add_message_and_add_messages_keep_order(kind: Driver) -> None:
    session = Session(kind)
    with session.request() as history:
        if session.is_sync:
            history.add_message(HumanMessage(content="Hello"))
        else:
            EventLoop.run(history.aadd_messages([HumanMessage(content="Hello")]))
        assert get(history) == [HumanMessage(content="Hello")]
        add(history, [HumanMessage(content="World")])
        assert get(history) == [HumanMessage(content="Hello"), HumanMessage(content="World")]
    version = session.chat.stored().version
    with session.request() as history:
        add(history, [HumanMessage(content="Hello"), HumanMessage(content="World")])
    assert session.chat.stored().version == version + 1  # one atomic write for the batch
    with session.request(elsewhere=True) as history:
        assert get(history) == [HumanMessage(content="Hello"), HumanMessage(content="World")] * 2


def test_the_async_interface(kind: Driver) -> None:
    """langchain-core's ``test_async_interface``, on both handles (a ``SyncConversation``
    serves the async methods from a worker thread)."""
    session = Session(kind)
    with session.request() as history:
        EventLoop.run(history.aadd_messages([HumanMessage(content="Hello"),
                                             HumanMessage(content="World")]))
        assert EventLoop.run(history.aget_messages()) == [HumanMessage(content="Hello"),
                                                          HumanMessage(content="World")]
        EventLoop.run(history.aadd_messages([HumanMessage(content="!")]))
        assert EventLoop.run(history.aget_messages()) == [
            HumanMessage(content="Hello"), HumanMessage(content="World"), HumanMessage("!")]
        EventLoop.run(history.aclear())
        assert EventLoop.run(history.aget_messages()) == []
    assert session.stored() == []


def test_convenience_methods_and_str(kind: Driver) -> None:
    session = Session(kind)
    if not session.is_sync:
        with session.request() as history:
            for call in (lambda: history.messages, lambda: history.add_user_message("hi"),
                         history.clear, lambda: history.window(), lambda: str(history)):
                with pytest.raises(TypeError, match="async Conversation"):
                    call()
        assert session.stored() == []
        return
    with session.request() as history:
        history.add_message(SystemMessage(content="system"))
        history.add_user_message("human 1")
        history.add_ai_message("ai")
        history.add_message(HumanMessage(content="human 2"))
        assert str(history) == "System: system\nHuman: human 1\nAI: ai\nHuman: human 2"


MESSAGES: list[BaseMessage] = [
    SystemMessage("You answer with the weather."),
    HumanMessage("Weather in Oslo? Here is a photo.", name="alice"),
    HumanMessage([{"type": "text", "text": "And this one?"},
                  {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]),
    AIMessage("", tool_calls=[{"name": "weather", "args": {"city": "Oslo"}, "id": "call_1",
                               "type": "tool_call"}]),
    ToolMessage("4 C", tool_call_id="call_1"),
    AIMessage("4 C in Oslo."),
]


def test_message_types_round_trip(kind: Driver) -> None:
    session = Session(kind)
    with session.request() as history:
        add(history, MESSAGES)
    with session.request(elsewhere=True) as history:
        assert get(history) == MESSAGES
        assert window(history) == MESSAGES
    assert session.stored()[3] == {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "id": "call_1",
         "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]}


def test_what_the_openai_form_does_not_keep(kind: Driver) -> None:
    session = Session(kind)
    reply = AIMessage("Hi.", id="run-1", response_metadata={"model_name": "m"},
                      usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3})
    result = ToolMessage("4 C", tool_call_id="call_1", name="weather", artifact={"raw": 4})
    call = AIMessage("", tool_calls=[{"name": "weather", "args": {}, "id": "call_1"}])
    with session.request() as history:
        add(history, [HumanMessage("Hi"), reply, HumanMessage("Weather?"), call, result,
                      AIMessage([{"type": "text", "text": "Four"}, {"type": "text", "text": "C"}])])
    with session.request() as history:
        got = get(history)
    assert got[1] == AIMessage("Hi.")  # no id, metadata or usage
    assert got[4] == ToolMessage("4 C", tool_call_id="call_1")  # no name, no artifact
    assert got[5] == AIMessage("Four\nC")  # text-only content comes back as a string


def test_a_conversation_written_by_others_reads_as_langchain_messages(kind: Driver) -> None:
    """Plain chat dicts and Agents SDK items (stored as their JSON) share the history."""
    session = Session(kind)
    sdk_call = {"type": "function_call", "call_id": "call_9", "name": "weather",
                "arguments": '{"city": "Rome"}'}
    sdk_output = {"type": "function_call_output", "call_id": "call_9", "output": "20 C"}
    custom = {"id": "call_c", "type": "custom", "custom": {"name": "sql", "input": "SELECT 1"}}
    with session.chat.turn() as request:
        request.extend([
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Rome?", "metadata": {"channel": "web"}},
            {"role": "assistant", "content": json.dumps(sdk_call), ITEM_FIELD: True},
            {"role": "tool", "content": json.dumps(sdk_output), ITEM_FIELD: True},
            {"role": "assistant", "content": "20 C.", "tool_calls": [custom]},
            {"role": "tool", "tool_call_id": "call_c", "content": "1"},
        ])
    with session.request() as history:
        got = get(history)
    assert got == [
        SystemMessage("Be brief.", additional_kwargs={"__openai_role__": "developer"}),
        HumanMessage("Rome?"),
        AIMessage("", tool_calls=[{"name": "weather", "args": {"city": "Rome"},
                                   "id": "call_9", "type": "tool_call"}]),
        ToolMessage("20 C", tool_call_id="call_9"),
        AIMessage("20 C."),  # a custom tool call has no LangChain form: left out, with its result
    ]


def test_clear_forgets_every_message_and_the_session_stays(kind: Driver) -> None:
    session = Session(kind)
    with session.request() as history:
        add(history, [HumanMessage("Hello")])
    with session.request() as history:
        clear(history)
        assert get(history) == []
    with session.request(elsewhere=True) as history:
        assert get(history) == []
        add(history, [HumanMessage("Again")])
    assert session.stored() == [{"role": "user", "content": "Again"}]


def test_a_budget_must_be_positive(kind: Driver) -> None:
    session = Session(kind)
    with session.request() as history:
        for budget in (0, -5):
            with pytest.raises(ValueError, match="positive"):
                StickyChatMessageHistory(history.conversation, token_budget=budget)


# The token window: the drop-in for trim_messages -------------------------------------------------

def turns(count: int) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for n in range(count):
        out += [HumanMessage(f"Question {n}: what is {n} times {n}?"),
                AIMessage(f"Answer {n}: {n * n}, since {n} times {n} is {n * n}.")]
    return out


def test_the_window_is_what_trim_messages_keeps(kind: Driver) -> None:
    """With plain sliding (``eviction="turn"``), the window is exactly what langchain-core's
    ``trim_messages`` keeps of the same history, counted the same way, ending on the newest
    message and starting on a human turn, without re-tokenizing anything."""
    session = Session(kind, eviction="turn", response_reserve=0)
    history_messages = turns(12)
    with session.request() as history:
        add(history, history_messages)
    tokenizer = load_tokenizer("cl100k_base")

    def count(messages: list[BaseMessage]) -> int:
        return sum(tokenizer.count_message(convert_to_openai_messages(m)) for m in messages)

    sizes = set()
    with session.request() as history:
        for budget in range(60, 700, 37):
            expected = trim_messages(history_messages, max_tokens=budget - REPLY_PRIMER_TOKENS,
                                     token_counter=count, strategy="last", start_on="human")
            assert window(history, budget) == expected
            windowed = StickyChatMessageHistory(history.conversation, token_budget=budget)
            assert get(windowed) == expected
            sizes.add(len(expected))
    assert len(sizes) > 5  # the budgets cut the history in many places


# RunnableWithMessageHistory ----------------------------------------------------------------------

def fixed(history: History) -> Callable[[], History]:
    """A ``get_session_history`` of no arguments: the request's history (no config needed)."""
    return lambda: history


def with_history(runnable: Runnable[Any, Any], history: Callable[[], History],
                 **keys: str) -> RunnableWithMessageHistory:
    with pytest.warns(LangChainDeprecationWarning, match="RunnableWithMessageHistory"):
        return RunnableWithMessageHistory(runnable, history, **keys)  # type: ignore[arg-type]


def invoke(session: Session, chain: RunnableWithMessageHistory, value: Any) -> Any:
    if session.is_sync:
        return chain.invoke(value)
    return EventLoop.run(chain.ainvoke(value))


def stream(session: Session, chain: RunnableWithMessageHistory, value: Any) -> list[Any]:
    if session.is_sync:
        return list(chain.stream(value))

    async def collect() -> list[Any]:
        return [chunk async for chunk in chain.astream(value)]

    return EventLoop.run(collect())


def you_said(messages: list[BaseMessage]) -> str:
    return "you said: " + "\n".join(str(m.content) for m in messages
                                    if isinstance(m, HumanMessage))


def test_input_messages_one_request_each(kind: Driver) -> None:
    session = Session(kind)
    outputs = []
    for n, text in enumerate(("hello", "good bye", "hi again")):
        with session.request(elsewhere=n % 2 == 1) as history:
            chain = with_history(RunnableLambda(you_said), fixed(history))
            if n < 2:
                outputs.append(invoke(session, chain, [HumanMessage(content=text)]))
            else:
                outputs += stream(session, chain, [HumanMessage(content=text)])
    assert outputs == ["you said: hello", "you said: hello\ngood bye",
                       "you said: hello\ngood bye\nhi again"]
    with session.request() as history:
        assert get(history) == [
            HumanMessage(content="hello"), AIMessage(content="you said: hello"),
            HumanMessage(content="good bye"), AIMessage(content="you said: hello\ngood bye"),
            HumanMessage(content="hi again"),
            AIMessage(content="you said: hello\ngood bye\nhi again")]


def _history_said(value: dict[str, Any]) -> str:
    return "you said: " + "\n".join(
        [str(m.content) for m in value["history"] if isinstance(m, HumanMessage)]
        + [value["input"]])


@pytest.mark.parametrize(("runnable", "keys", "first", "second"), [
    pytest.param(RunnableLambda(lambda v: you_said(v["messages"])), {
        "input_messages_key": "messages"}, "you said: hello", "you said: hello\ngood bye",
        id="input-dict"),
    pytest.param(RunnableLambda(_history_said), {
        "input_messages_key": "input", "history_messages_key": "history"},
        "you said: hello", "you said: hello\ngood bye", id="history-key"),
    pytest.param(RunnableLambda(lambda v: AIMessage(_history_said(v))), {
        "input_messages_key": "input", "history_messages_key": "history"},
        AIMessage("you said: hello"), AIMessage("you said: hello\ngood bye"),
        id="output-message"),
    pytest.param(RunnableLambda(lambda v: [AIMessage(_history_said(v))]), {
        "input_messages_key": "input", "history_messages_key": "history"},
        [AIMessage("you said: hello")], [AIMessage("you said: hello\ngood bye")],
        id="output-messages"),
    pytest.param(RunnableLambda(lambda v: {"output": [AIMessage(_history_said(v))]}), {
        "input_messages_key": "input", "history_messages_key": "history",
        "output_messages_key": "output"},
        {"output": [AIMessage("you said: hello")]},
        {"output": [AIMessage("you said: hello\ngood bye")]}, id="output-dict"),
])
def test_inputs_and_outputs_of_every_shape(kind: Driver, runnable: Runnable[Any, Any],
                                           keys: dict[str, str], first: Any,
                                           second: Any) -> None:
    session = Session(kind)
    key = keys["input_messages_key"]
    for text, expected in (("hello", first), ("good bye", second)):
        with session.request() as history:
            chain = with_history(runnable, fixed(history), **keys)
            value = [HumanMessage(text)] if key == "messages" else text
            assert invoke(session, chain, {key: value}) == expected


class LengthChatModel(BaseChatModel):
    """A fake chat model that answers with how many messages it was given."""

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        message = AIMessage(content=str(len(messages)))
        return ChatResult(generations=[ChatGeneration(message=message)])

    @property
    def _llm_type(self) -> str:
        return "length-fake-chat-model"


def test_the_model_is_given_the_history(kind: Driver) -> None:
    session = Session(kind)
    seen = []
    for _ in range(3):
        with session.request() as history:
            chain = with_history(LengthChatModel(), fixed(history))
            seen.append(invoke(session, chain, [HumanMessage(content="hi")]).content)
    assert seen == ["1", "3", "5"]


def test_with_a_token_budget_the_model_is_given_the_window(kind: Driver) -> None:
    session = Session(kind, response_reserve=0)
    seen = []
    for _ in range(12):
        with session.request() as history:
            windowed = StickyChatMessageHistory(history.conversation, token_budget=60)
            chain = with_history(LengthChatModel(), fixed(windowed))
            seen.append(int(invoke(session, chain, [HumanMessage(content="hi")]).content))
    assert seen[:3] == [1, 3, 5]  # while everything fits, the whole history
    assert all(n % 2 == 1 for n in seen)  # whole turns (question and answer), and the new one
    assert max(seen) <= 11 < 2 * len(seen) - 1  # then the window, never the whole history
    assert len(session.stored()) == 24  # every turn stored


def test_a_prompt_and_a_fake_chat_model_with_history(kind: Driver) -> None:
    prompt = ChatPromptTemplate.from_messages([
        ("system", "You are terse."), MessagesPlaceholder("history"), ("human", "{question}")])
    answers = iter([AIMessage("Paris."), AIMessage("About 2 million people.")])
    model = GenericFakeChatModel(messages=answers)
    session = Session(kind)
    replies = []
    for n, question in enumerate(("Capital of France?", "How many live there?")):
        with session.request(elsewhere=n == 1) as history:
            chain = with_history(prompt | model, fixed(history),
                                 input_messages_key="question", history_messages_key="history")
            replies.append(invoke(session, chain, {"question": question}).content)
    assert replies == ["Paris.", "About 2 million people."]
    with session.request() as history:
        assert get(history) == [HumanMessage("Capital of France?"), AIMessage("Paris."),
                                HumanMessage("How many live there?"),
                                AIMessage("About 2 million people.")]
    stored = session.chat.stored()
    assert [m.group for m in stored.messages] == [1, 1, 3, 3]  # one turn group per exchange
    assert session.stored()[1] == {"role": "assistant", "content": "Paris."}  # chat form


def test_without_langchain_core_the_import_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in sys.modules if n.split(".")[0] == "langchain_core"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "stickyctx.integrations.langchain")
    with pytest.raises(ImportError, match=r"pip install 'stickyctx\[langchain\]'"):
        importlib.import_module("stickyctx.integrations.langchain")


class Ask(BaseModel):
    question: str


def test_the_documented_fastapi_app_keeps_the_history_between_requests() -> None:
    """docs/langchain.md's app, behind the real middleware, with a fake chat model."""
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer briefly."), MessagesPlaceholder("history"), ("human", "{question}")])
    seen: list[int] = []

    def model(prompt_value: Any) -> AIMessage:  # how many messages the model was given
        seen.append(len(prompt_value.to_messages()))
        return AIMessage(f"answer {len(seen)}")

    chain = prompt | RunnableLambda(model)
    app = FastAPI()
    app.add_middleware(StickyMiddleware, settings=settings_for())

    @app.post("/chat")
    async def chat(conv: Conversation, ask: Ask) -> dict[str, str]:
        history = StickyChatMessageHistory(conv, token_budget=4000)
        with pytest.warns(LangChainDeprecationWarning):
            with_history = RunnableWithMessageHistory(
                chain, lambda: history, input_messages_key="question",
                history_messages_key="history")
        reply = await with_history.ainvoke({"question": ask.question})
        return {"reply": str(reply.content)}

    async def run() -> list[str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            replies = []
            for question in ("one?", "two?", "three?"):
                answer = await client.post("/chat", json={"question": question})
                assert answer.status_code == 200, answer.text
                replies.append(answer.json()["reply"])
            return replies

    assert EventLoop.run(run()) == ["answer 1", "answer 2", "answer 3"]
    assert seen == [2, 4, 6]  # the system prompt, the history so far, the question
