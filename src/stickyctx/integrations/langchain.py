"""LangChain: a chat message history over a stickyctx conversation, ``StickyChatMessageHistory``.

In a request, wrap the request's handle (``pip install 'stickyctx[langchain]'``)::

    from langchain_core.runnables.history import RunnableWithMessageHistory
    from stickyctx.fastapi import Conversation
    from stickyctx.integrations.langchain import StickyChatMessageHistory

    @app.post("/chat")
    async def chat(conv: Conversation, ask: Ask) -> dict[str, str]:
        chain = RunnableWithMessageHistory(
            prompt | model, lambda: StickyChatMessageHistory(conv, token_budget=4000))
        reply = await chain.ainvoke([HumanMessage(ask.message)])
        return {"reply": reply.content}

A ``Conversation`` (ASGI) is used through the async methods (``aget_messages``,
``aadd_messages``, ``aclear``, ``awindow``: what ``RunnableWithMessageHistory.ainvoke`` calls);
its sync methods raise ``TypeError``, since its store belongs to the request's event loop. A
``SyncConversation`` (WSGI) serves both (the async ones from a worker thread).

What is stored, what comes back
-------------------------------
* Messages are stored in the OpenAI chat form that langchain-core's own
  ``convert_to_openai_messages`` gives (content, name, tool calls, tool call id), so that the
  window, plain chat code and the Agents SDK share the history. LangChain's ids,
  ``additional_kwargs``, ``response_metadata``, ``usage_metadata`` and a tool message's
  ``artifact`` are not part of that form and are not stored; text-only content lists come back
  as a string.
* Reading turns the conversation's chat form (``format="chat"``: whatever wrote it, Agents SDK
  items included) into LangChain messages with ``convert_to_messages``: ``HumanMessage``,
  ``AIMessage`` (with ``tool_calls``), ``ToolMessage``, ``SystemMessage`` (developer messages
  too), ``FunctionMessage``. A tool message's ``name`` is not part of the chat form and comes
  back unset. Custom (free-form) tool calls, which LangChain messages cannot carry, are left out
  with their results.
* ``token_budget`` makes ``messages`` / ``aget_messages`` return the conversation's token window
  (the newest whole turns that fit, with the running summary as a system message when
  summarization is on) instead of the whole history: the drop-in for ``trim_messages`` in a
  chain with history. ``window()`` / ``awindow()`` return one window on demand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

try:
    from langchain_core.chat_history import BaseChatMessageHistory
    from langchain_core.messages import BaseMessage, convert_to_messages
    from langchain_core.runnables.config import run_in_executor
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "stickyctx.integrations.langchain needs langchain-core: "
        "pip install 'stickyctx[langchain]'"
    ) from exc

from ..session.handle import Conversation, SyncConversation

__all__ = ["StickyChatMessageHistory"]


def _to_langchain(messages: Sequence[dict[str, Any]]) -> list[BaseMessage]:
    """LangChain messages from chat-form message dicts (``window(format="chat")``)."""
    custom = {call["id"] for m in messages for call in m.get("tool_calls", ())
              if call.get("type") == "custom"}
    kept: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "tool" and message.get("tool_call_id") in custom:
            continue
        if custom and "tool_calls" in message:
            calls = [c for c in message["tool_calls"] if c["id"] not in custom]
            message = {k: v for k, v in message.items() if k != "tool_calls"}
            if calls:
                message["tool_calls"] = calls
            elif not message.get("content") and message.keys() == {"role", "content"}:
                continue
        kept.append(message)
    return convert_to_messages(kept)


class StickyChatMessageHistory(BaseChatMessageHistory):
    """A LangChain ``BaseChatMessageHistory`` over a conversation (see the module's docs)."""

    def __init__(self, conversation: Conversation | SyncConversation, *,
                 token_budget: int | None = None) -> None:
        if token_budget is not None and token_budget <= 0:
            raise ValueError("token_budget must be positive")
        self.conversation = conversation
        self.token_budget = token_budget

    def _sync(self) -> SyncConversation:
        if not isinstance(self.conversation, SyncConversation):
            raise TypeError("this history is over an async Conversation: use aget_messages, "
                            "aadd_messages, aclear and awindow (e.g. chain.ainvoke)")
        return self.conversation

    def _async(self) -> Conversation | None:
        return self.conversation if isinstance(self.conversation, Conversation) else None

    # Reading ------------------------------------------------------------------------------

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]  # read-only here
        """The history (the token window with ``token_budget``) as LangChain messages."""
        conv = self._sync()
        if self.token_budget is not None:
            return _to_langchain(conv.window(self.token_budget))
        return _to_langchain(conv.messages(format="chat"))

    async def aget_messages(self) -> list[BaseMessage]:
        conv = self._async()
        if conv is None:
            return await super().aget_messages()
        if self.token_budget is not None:
            return _to_langchain(await conv.window(self.token_budget))
        return _to_langchain(await conv.messages(format="chat"))

    def window(self, budget: int | None = None, *,
               system: str | None = None) -> list[BaseMessage]:
        """The conversation's token window (``Conversation.window``) as LangChain messages."""
        return _to_langchain(self._sync().window(budget, system=system))

    async def awindow(self, budget: int | None = None, *,
                      system: str | None = None) -> list[BaseMessage]:
        conv = self._async()
        if conv is None:
            return await run_in_executor(None, self.window, budget, system=system)
        return _to_langchain(await conv.window(budget, system=system))

    # Writing ------------------------------------------------------------------------------

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append the messages in one atomic write (all or none)."""
        if messages:
            self._sync().extend(list(messages))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        conv = self._async()
        if conv is None:
            await super().aadd_messages(messages)
        elif messages:
            await conv.extend(list(messages))

    def clear(self) -> None:
        """Forget every message (the session itself stays)."""
        self._sync().clear()

    async def aclear(self) -> None:
        conv = self._async()
        if conv is None:
            await super().aclear()
        else:
            await conv.clear()

    def __repr__(self) -> str:
        return f"<StickyChatMessageHistory {self.conversation!r}>"
