"""A bounded, closed-loop HTTP load generator, run in a process of its own by ``e2e.py``.

``python benchmarks/_load.py URL PATH --requests N --concurrency C`` opens C keep-alive
connections; each one is one client (it keeps the cookies it is given, as a browser does) and
sends ``POST PATH {"message": ...}`` requests one after the other until N requests were sent in
all (``--message-chars`` makes each message about that long). It prints one JSON line:
requests, errors (status >= 400 or a broken connection), seconds, and the latency of every
request in microseconds.

Hand-written on asyncio streams (HTTP/1.1, Content-Length bodies only) on purpose: a general
client (httpx) spends more CPU per request than the apps under test, and the point is to measure
the servers. Every response the servers under test send has a Content-Length.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

WORDS = ("my name is Ada", "what is my name?", "tell me about the weather",
         "and what did I say before?", "thanks!")


class Client:
    def __init__(self, host: str, port: int, path: str, number: int, size: int = 0) -> None:
        self.host, self.port, self.path, self.number = host, port, path, number
        self.size = size  # a message of about this many characters instead of a short one
        self.cookies: dict[str, str] = {}
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def request(self, turn: int) -> bytes:
        text = f"{WORDS[turn % len(WORDS)]} ({self.number}.{turn})"
        if self.size:
            text = (text + " ") * (self.size // (len(text) + 1))
        body = json.dumps({"message": text})
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        head = (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Content-Type: application/json\r\nAccept: application/json\r\n"
                f"Content-Length: {len(body)}\r\n")
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        return (head + "\r\n" + body).encode()

    async def send(self, turn: int) -> int:
        """One request and its response; the status."""
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(self.request(turn))
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "set-cookie":
                pair = value.split(";", 1)[0].strip()
                key, _, val = pair.partition("=")
                if val:
                    self.cookies[key] = val
                else:
                    self.cookies.pop(key, None)
        await self.reader.readexactly(length)
        return status


async def run(url: str, path: str, total: int, concurrency: int,
              size: int = 0) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    clients = [Client(host, port, path, i, size) for i in range(concurrency)]
    await asyncio.gather(*(c.connect() for c in clients))
    latencies: list[int] = []
    errors = broken = 0
    sent = 0

    async def drive(client: Client) -> None:
        nonlocal errors, broken, sent
        turn = 0
        while sent < total:
            sent += 1
            started = time.perf_counter_ns()
            try:
                status = await client.send(turn)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                broken += 1
                await client.connect()
                continue
            latencies.append((time.perf_counter_ns() - started) // 1000)
            errors += status >= 400
            turn += 1

    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(drive(c) for c in clients))
    seconds = time.perf_counter() - began
    cpu = time.process_time() - cpu
    for client in clients:
        assert client.writer is not None
        client.writer.close()
    return {"requests": len(latencies) + broken, "errors": errors, "seconds": seconds,
            "busy": cpu / seconds, "latencies_us": latencies}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("path")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--message-chars", type=int, default=0,
                        help="send messages of about this many characters")
    args = parser.parse_args()
    work = (args.url, args.path, args.requests, args.concurrency, args.message_chars)
    try:
        import uvloop  # the generator's own cost per request, a third of asyncio's
    except ImportError:
        result = asyncio.run(run(*work))
    else:
        result = uvloop.run(run(*work))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
