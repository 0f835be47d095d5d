"""Large messages are counted off the event loop: other requests go on meanwhile.

A tokenizer stand-in wraps the real one: counting a large message waits (on a thread event)
until another request has completed. Counted on the event loop, that wait would hold every
other request up (and the other request could not complete); counted in a worker thread, the
other request completes while the large one is being counted. The counts are the real ones.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

from stickyctx import StickyMiddleware, StickyWSGIMiddleware
from stickyctx.core.tokenizer import Tokenizer
from stickyctx.session.incoming import INLINE_BYTES
from tests.conftest import make_settings
from tests.edges import Req, asgi_request, wsgi_request
from tests.redis.chat import chat_app

LARGE = "word " * (INLINE_BYTES // 2)  # about 2.5 times INLINE_BYTES of JSON


class Recording(Tokenizer):
    """The real tokenizer; large counts wait until ``go`` (at most 10 s) and say where they ran."""

    def __init__(self, real: Tokenizer) -> None:
        super().__init__(real._encoding, real.name)
        self.go = threading.Event()
        self.counting = threading.Event()
        self.threads: list[tuple[int, int]] = []  # (content length, thread id)
        self.nice: dict[int, int] = {}  # content length -> the counting thread's nice value

    def count_message(self, message: Mapping[str, Any]) -> int:
        content = message.get("content")
        if isinstance(content, str) and len(content) > INLINE_BYTES:
            self.counting.set()
            self.go.wait(10)
        self.threads.append((len(str(content)), threading.get_ident()))
        if sys.platform == "linux":
            self.nice[len(str(content))] = os.getpriority(os.PRIO_PROCESS,
                                                          threading.get_native_id())
        return super().count_message(message)


def test_a_large_message_is_counted_in_a_worker_thread_while_others_are_served() -> None:
    middleware = StickyMiddleware(chat_app, make_settings())
    real = middleware.services.tokenizer
    recording = middleware.services.tokenizer = Recording(real)

    async def scenario() -> dict[str, Any]:
        loop_thread = threading.get_ident()
        large = asyncio.create_task(asgi_request(middleware, Req(
            "POST", "/chat", [("X-Stickyctx-Session", "new")], {"message": LARGE})))
        assert await asyncio.to_thread(recording.counting.wait, 10)
        small = await asgi_request(middleware, Req(
            "POST", "/chat", [("X-Stickyctx-Session", "new")], {"message": "hi"}))
        small_done_while_counting = not recording.go.is_set()
        recording.go.set()
        reply = await large
        return {"loop": loop_thread, "small": small, "large": reply,
                "small_done_while_counting": small_done_while_counting}

    out = asyncio.run(scenario())
    assert out["small"].status == 200
    assert out["small_done_while_counting"]  # the loop was free during the large count
    assert out["large"].status == 200
    assert [m["content"] for m in out["large"].json()["messages"]] == [LARGE, "echo: " + LARGE]
    where = {length: thread for length, thread in recording.threads}
    assert where[len(LARGE)] != out["loop"]  # off the loop...
    assert where[len("hi")] == out["loop"]  # ...and small ones in place, no thread hop
    if sys.platform == "linux":  # the large count yields the CPU to the loop's requests
        assert recording.nice[len(LARGE)] == 19
        assert recording.nice[len("hi")] == os.getpriority(os.PRIO_PROCESS, 0)
    # The counts are the real tokenizer's.
    message = {"role": "user", "content": LARGE}
    assert recording.count_message(message) == real.count_message(message)


def test_a_large_message_under_wsgi_is_counted_in_the_request_thread() -> None:
    import flask

    from stickyctx.flask import current_context

    app = flask.Flask(__name__)

    @app.post("/chat")
    def chat() -> Any:
        conv = current_context()
        conv.append("user", flask.request.get_json()["message"])
        return {"tokens": conv.token_count()}

    middleware = StickyWSGIMiddleware(app.wsgi_app, make_settings())
    recording = middleware.services.tokenizer = Recording(middleware.services.tokenizer)
    recording.go.set()
    request_threads: list[int] = []

    def run() -> None:
        request_threads.append(threading.get_ident())
        reply = wsgi_request(middleware, Req("POST", "/chat", [], {"message": LARGE}))
        assert reply.status == 200, reply.body

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(30)
    where = {length: thread for length, thread in recording.threads}
    assert where[len(LARGE)] == request_threads[0]
