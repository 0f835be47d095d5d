"""An OpenAI Agents SDK ``Session`` over the stickyctx store: ``StickySession``.

In a request, wrap the request's handle (``pip install 'stickyctx[agents]'``)::

    from agents import Runner
    from stickyctx.fastapi import Conversation
    from stickyctx.integrations.agents import StickySession

    @app.post("/chat")
    async def chat(conv: Conversation, ask: Ask) -> dict[str, str]:
        result = await Runner.run(agent, ask.message, session=StickySession(conv))
        return {"reply": str(result.final_output)}

Outside a request (a background job that has the session id), build one over a store with the
app's settings: ``StickySession.for_session_id(session_id, store=store, settings=settings)``.

How the SDK's items are stored
------------------------------
* An item that is a chat message (``role`` user, assistant, system or developer, and
  ``content`` a string or a list of parts that are dicts with a ``type``) is stored as that
  message; its other keys (``type``, ``id``, ``status``, ...) become the message's fields.
* Any other item (``function_call``, ``function_call_output``, ``reasoning``, ...) is stored as
  one message whose content is the item's JSON, so that its tokens are counted, and whose field
  ``agents_item`` marks it. Its role is the item's own role when it has a chat role, ``tool``
  for the results of a call (item types ending in ``_output`` or ``_response``), else
  ``assistant``.
* ``get_items`` returns every item equal to the dict that was added (a fresh copy each time).
  Messages appended by the app itself come back as they are stored.
* Only user, system and developer messages open a turn group, so the calls, outputs and
  reasoning of a turn stay in the group of the user message that started it: the token window
  and the store's ceiling drop whole turns, never a call without its output.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

try:
    from agents.items import TResponseInputItem
    from agents.memory.session_settings import (
        SessionSettings,
        coerce_session_settings,
        resolve_session_limit,
    )
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "stickyctx.integrations.agents needs the OpenAI Agents SDK: "
        "pip install 'stickyctx[agents]'"
    ) from exc

from ..core.affinity import classify
from ..core.flow import SessionState
from ..core.formats import ITEM_FIELD
from ..core.ids import is_valid_session_id
from ..core.placement import place
from ..errors import InvalidMessageError, SessionGoneError
from ..sansio import run_async
from ..session.handle import Conversation
from ..session.logic import Session
from ..session.services import Services
from ..settings import Settings
from ..stores.base import Store

__all__ = ["ITEM_FIELD", "StickySession"]

T = TypeVar("T")

# ITEM_FIELD ("agents_item") marks a stored message as an SDK item kept as JSON; it is defined
# with the output formats, which read such items back.
_CHAT_ROLES = frozenset({"user", "assistant", "system", "developer"})
_RESULT_SUFFIXES = ("_output", "_response")


# The item mapping ------------------------------------------------------------------------------

def _copy(message: Mapping[str, Any]) -> dict[str, Any]:
    """A copy that shares no list or dict with ``message`` (the memory store and the hot tier
    hold what they were given and hand it out again)."""
    return {k: copy.deepcopy(v) if isinstance(v, (list, dict)) else v for k, v in message.items()}


def _is_chat_message(item: Mapping[str, Any]) -> bool:
    if item.get("role") not in _CHAT_ROLES or ITEM_FIELD in item:
        return False
    if item.get("type", "message") != "message":
        return False
    content = item.get("content")
    if isinstance(content, str):
        return True
    return isinstance(content, list) and all(
        isinstance(part, Mapping) and isinstance(part.get("type"), str) for part in content
    )


def _role_of(item: Mapping[str, Any]) -> str:
    role = item.get("role")
    if isinstance(role, str) and role in _CHAT_ROLES:
        return role
    kind = item.get("type")
    if isinstance(kind, str) and kind.endswith(_RESULT_SUFFIXES):
        return "tool"
    return "assistant"


def _to_message(item: Mapping[str, Any]) -> dict[str, Any]:
    """The message dict that stores ``item`` (see the module's docstring for the rule)."""
    if not isinstance(item, Mapping):
        raise InvalidMessageError(f"an item must be a dict, not {type(item).__name__}")
    if _is_chat_message(item):
        return _copy(item)
    try:
        encoded = json.dumps(item, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidMessageError(f"item is not JSON-serializable: {exc}") from None
    return {"role": _role_of(item), "content": encoded, ITEM_FIELD: True}


def _to_item(message: Mapping[str, Any]) -> dict[str, Any]:
    """The item a stored message stands for: the inverse of ``_to_message``."""
    content = message.get("content")
    if message.get(ITEM_FIELD) is True and isinstance(content, str):
        try:
            item = json.loads(content)
        except ValueError:
            item = None
        if isinstance(item, dict):
            return item
    return _copy(message)


# Writes finish even when their caller is cancelled ----------------------------------------------

async def _settled(write: Awaitable[T]) -> T:
    """Run ``write`` to its end even if the caller is cancelled meanwhile (then re-raise the
    cancellation), as the SDK's own sessions do: a write is never cut between its store calls
    (the turn lock taken, the append not sent), and its outcome is known."""
    task = asyncio.ensure_future(write)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as exc:
            cancelled = cancelled or exc
    if cancelled is not None:
        if not task.cancelled():
            task.exception()  # retrieved: the cancellation is what the caller gets
        raise cancelled
    return task.result()


# Handles outside a request ----------------------------------------------------------------------

class _Detached:
    """Opens a fresh handle on one session for each operation, without the turn lock, so that a
    long-lived session object never serves a history cached before another writer's append."""

    __slots__ = ("services", "session_id", "store")

    def __init__(self, services: Services, store: Store, session_id: str) -> None:
        self.services = services
        self.store = store
        self.session_id = session_id

    async def run(self, operation: Callable[[Conversation], Awaitable[T]]) -> T:
        services = self.services
        members = services.members.view()
        owner = place(self.session_id, members.nodes, members.loads,
                      services.settings.balance_factor)
        state = SessionState(self.session_id, owner, int(services.clock()),
                             classify(owner, services.node_id, members.ids()), "header")
        session = Session(services, self.store, state, auto_lock=False, follows=False)
        result = await operation(Conversation(session))
        # Takes nothing: releases no lock (none was taken) and folds what a window evicted.
        await run_async(session.finish(), self.store.async_io)
        if state.session_id != self.session_id:
            # The id was rotated or destroyed: the handle moved to a fresh id no one knows.
            raise SessionGoneError("the session was rotated or destroyed")
        return result


# The Session ------------------------------------------------------------------------------------

class StickySession:
    """An Agents SDK ``Session`` over a stickyctx conversation.

    ``session_settings.limit`` is the item limit used when ``get_items`` gets none (as in the
    SDK's own sessions). With ``token_budget``, ``get_items`` reads the conversation's token
    window (the newest whole turns that fit, as ``Conversation.window``) instead of the whole
    history, and a limit then keeps the newest items of that window.
    """

    session_settings: SessionSettings | None

    def __init__(
        self,
        conversation: Conversation,
        *,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        token_budget: int | None = None,
    ) -> None:
        self._setup(conversation, None, session_settings, token_budget)

    def _setup(
        self,
        conversation: Conversation | None,
        detached: _Detached | None,
        session_settings: SessionSettings | dict[str, Any] | None,
        token_budget: int | None,
    ) -> None:
        if token_budget is not None and token_budget <= 0:
            raise ValueError("token_budget must be positive")
        self._conversation = conversation
        self._detached = detached
        self._serial = asyncio.Lock()  # one operation at a time on a request's handle
        self.session_settings = (coerce_session_settings(session_settings)
                                 if session_settings is not None else SessionSettings())
        self.token_budget = token_budget

    @classmethod
    def for_session_id(
        cls,
        session_id: str,
        *,
        store: Store,
        settings: Settings | None = None,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        token_budget: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> StickySession:
        """A session outside a request (a background job), over ``store`` with the app's
        ``settings`` (``None``: ``Settings.from_env()``), which name the session's store keys.

        It takes no turn lock and reads the store afresh for every operation. ``ValueError``
        for an id that stickyctx would not issue; ``SessionGoneError`` from an operation when
        the session was rotated or destroyed since.
        """
        if not is_valid_session_id(session_id):
            raise ValueError("not a stickyctx session id")
        services = Services(settings if settings is not None else Settings.from_env(),
                            clock=clock)
        self = cls.__new__(cls)
        self._setup(None, _Detached(services, store, session_id), session_settings, token_budget)
        return self

    @property
    def session_id(self) -> str:
        """The session's id (a request's handle changes it after ``rotate()``)."""
        if self._conversation is not None:
            return self._conversation.session_id
        assert self._detached is not None
        return self._detached.session_id

    @session_id.setter
    def session_id(self, value: str) -> None:
        # Settable only to match the SDK's protocol (an attribute there): the id is the
        # conversation's, which changes it only through rotate().
        raise AttributeError("the session id belongs to the conversation")

    async def _run(self, operation: Callable[[Conversation], Awaitable[T]]) -> T:
        if self._detached is not None:
            return await self._detached.run(operation)
        assert self._conversation is not None
        async with self._serial:
            return await operation(self._conversation)

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The latest ``limit`` items in chronological order (all of them when ``None`` and
        ``session_settings.limit`` is unset; none for a limit of 0 or below)."""
        count = resolve_session_limit(limit, self.session_settings)
        if count is not None and count <= 0:
            return []
        budget = self.token_budget

        async def read(conv: Conversation) -> list[dict[str, Any]]:
            return await (conv.window(budget, format="stored") if budget is not None
                          else conv.messages())

        messages = await self._run(read)
        if count is not None:
            messages = messages[-count:]
        return [cast("TResponseInputItem", _to_item(m)) for m in messages]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` in one atomic store write (all or none)."""
        if not items:
            return
        messages = [_to_message(cast("Mapping[str, Any]", item)) for item in items]

        async def write(conv: Conversation) -> int:
            return await conv.extend(messages)

        await _settled(self._run(write))

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item (atomic: concurrent pops never return the same
        item); ``None`` when the session is empty."""

        async def pop(conv: Conversation) -> dict[str, Any] | None:
            return await conv.pop()

        message = await _settled(self._run(pop))
        return cast("TResponseInputItem", _to_item(message)) if message is not None else None

    async def clear_session(self) -> None:
        """Forget every item (the session itself stays)."""

        async def clear(conv: Conversation) -> None:
            await conv.clear()

        await _settled(self._run(clear))

    def __repr__(self) -> str:
        where = "request" if self._conversation is not None else "detached"
        return f"<StickySession {where}>"
