"""The ASGI scope of one in-process HTTP request, for the benchmarks that call apps directly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["http_scope"]


def http_scope(method: str, path: str,
               headers: Sequence[tuple[bytes, bytes]] = ()) -> dict[str, Any]:
    """A fresh scope (the caller may add to it: a ``state`` dict, say) from loopback."""
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1", "method": method, "scheme": "http", "path": path,
        "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": list(headers), "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
