"""A stand-in for one model server: a tiny OpenAI-compatible HTTP server that records requests.

Run as ``python -m tests.inference.stub_model_server NAME PORT``. It answers the routers' probes
(``/health``, ``/v1/models``, model and server info: any GET), answers
``POST /v1/chat/completions`` with a chat completion whose text is NAME (and the header
``x-stub-backend: NAME``), and records each POST's path, headers and JSON body, which
``GET /_stub/requests`` returns. Standard library only: it starts in a fraction of a second.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "stub-model"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per response, without Nagle: headers and body in separate small segments meet
    # the client's delayed ACK and cost 40 ms a request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the routers probe often

    def _send(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-stub-backend", self.server.name)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/_stub/requests":
            with self.server.lock:
                self._send(200, list(self.server.requests))
        elif self.path.startswith("/v1/models"):
            self._send(200, {"object": "list", "data": [
                {"id": MODEL, "object": "model", "owned_by": "stub"}]})
        elif "info" in self.path:
            self._send(200, {"model_path": MODEL, "is_generation": True})
        else:
            self._send(200, {"status": "ok"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, {"error": "the body is not JSON"})
            return
        record = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                  "body": body}
        with self.server.lock:
            self.server.requests.append(record)
        name = self.server.name
        self._send(200, {
            "id": f"chatcmpl-{name}-{len(self.server.requests)}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", MODEL) if isinstance(body, dict) else MODEL,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": name}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.name = name
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []


def main() -> None:
    name, port = sys.argv[1], int(sys.argv[2])
    _Server(name, port).serve_forever()


if __name__ == "__main__":
    main()
