"""Affinity all the way down: keep a conversation on one model server behind an inference router.

The load balancer keeps a conversation on one app node (the routing cookie); from there, the
router in front of the model servers (vLLM's, SGLang's, OpenAI's own) keeps it on the model
server that holds its prefix cache, if each request carries the key that router routes on.
``routing_hints(conv)`` gives those headers and body fields for the router named by
``STICKYCTX_INFERENCE_ROUTER`` (``STICKYCTX_INFERENCE_HEADER`` names another header); every value
is a keyed hash, stable for the conversation, and never the session id. ``openai_options(conv)``
gives them as the openai client's ``extra_headers`` / ``extra_body``::

    from openai import AsyncOpenAI
    from stickyctx.fastapi import Conversation
    from stickyctx.integrations.inference import openai_options

    client = AsyncOpenAI(base_url="http://router:30000/v1", api_key="unused")

    @app.post("/chat")
    async def chat(ask: Ask, conv: Conversation) -> dict[str, str]:
        await conv.append("user", ask.message)
        completion = await client.chat.completions.create(
            model=MODEL, messages=await conv.window(system=SYSTEM), **openai_options(conv))
        ...

In Flask the same call on ``OpenAI`` with ``current_context()``. See
docs/affinity-all-the-way-down.md for what each router keys on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from ..core.inference import DEFAULT_HEADERS, ROUTERS, RouterKind, RoutingHints
from ..session.handle import Conversation, SyncConversation

__all__ = [
    "DEFAULT_HEADERS",
    "ROUTERS",
    "OpenAIOptions",
    "RouterKind",
    "RoutingHints",
    "openai_options",
    "routing_hints",
]


class OpenAIOptions(TypedDict):
    """Keyword arguments of an openai client request (``create(..., **options)``)."""

    extra_headers: dict[str, str]
    extra_body: dict[str, object]


def routing_hints(
    conv: Conversation | SyncConversation,
    router: RouterKind | None = None,
    *,
    user: str | None = None,
) -> RoutingHints:
    """The headers and body fields ``router`` (default: the configured one) routes on.

    ``user`` is the app's own id of the signed-in user: OpenAI's ``safety_identifier`` is then a
    keyed hash of it (the same for all of the user's conversations), else of the conversation.
    Same as ``conv.routing_hints(router, user=user)``.
    """
    return conv.routing_hints(router, user=user)


def openai_options(
    conv: Conversation | SyncConversation,
    router: RouterKind | None = None,
    *,
    user: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
    extra_body: Mapping[str, object] | None = None,
) -> OpenAIOptions:
    """``extra_headers`` and ``extra_body`` for an openai client call, with the routing hints
    added to the app's own (a header or field the app sets itself wins)."""
    headers, body = routing_hints(conv, router, user=user).merged(extra_headers, extra_body)
    return {"extra_headers": headers, "extra_body": body}
