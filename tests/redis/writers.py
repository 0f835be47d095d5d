"""Writer processes of the concurrency tests: each one its own interpreter, store and client.

Started with the ``spawn`` method (nothing inherited but the arguments); a failed check exits
with a message, so the parent sees a non-zero exit code.
"""

from __future__ import annotations

import json
import time
from typing import Any

from stickyctx import Settings
from stickyctx.core.messages import NewMessage
from stickyctx.core.storekeys import SessionKey
from stickyctx.settings import Secret
from stickyctx.stores import open_store
from tests.support.stores import SyncCalls

WRITER_KEY = "w" * 40


def message(writer: int, n: int, dedupe: str | None = None) -> NewMessage:
    payload = {"role": "user", "content": f"w{writer} n{n}"}
    size = len(json.dumps(payload, separators=(",", ":")))
    return NewMessage("user", payload["content"], {}, 5, "cl100k_base", size, dedupe)


def append_turns(url: str, namespace: str, hash_key: str, tags: tuple[str, str], writer: int,
                 count: int, barrier: Any) -> None:
    """``count`` appends to the first session; then ``count`` appends to the second one, each
    sent twice with the same dedupe key (a retry). Starts with the others at ``barrier``."""
    settings = Settings(secret_keys=(WRITER_KEY,), store_url=url, namespace=namespace,
                        hash_key=Secret(hash_key), store_timeout=10.0, node_id=f"writer-{writer}")
    store = SyncCalls(open_store(settings))
    plain, retried = (SessionKey(namespace, tag) for tag in tags)
    created = time.time()
    try:
        barrier.wait(60)
        for n in range(count):
            result = store.append(plain, [message(writer, n)], created=created)
            if result.written != (True,):
                raise SystemExit(f"writer {writer}: append {n} was not written: {result}")
        barrier.wait(60)
        for n in range(count):
            turn = message(writer, n, dedupe=f"writer-{writer}:turn-{n}")
            first = store.append(retried, [turn], created=created)
            again = store.append(retried, [turn], created=created)
            if first.written != (True,) or again.written != (False,):
                raise SystemExit(f"writer {writer}: turn {n} stored {first}, retried {again}")
    finally:
        store.close()
