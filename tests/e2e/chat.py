"""A scripted chat client for the example app: one ``httpx.AsyncClient`` (one cookie jar) each.

``say()`` posts the next numbered message with an ``Idempotency-Key`` of its own and retries a
failed request (a transport error, or the load balancer's 502/503/504 while a node dies) with the
same key, so that the turn is stored once however many attempts it took. It checks that the
response headers agree with the JSON body, and records what the client saw for the assertions.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

MAX_ATTEMPTS = 4
RETRY_STATUSES = frozenset({502, 503, 504})
REQUEST_TIMEOUT = 20.0


@dataclass(frozen=True)
class Turn:
    message: str
    attempts: int
    owner: str
    affinity: str
    node: str  # the node that served the request
    stored_turns: int  # the user turns stored after this one
    phase: str


class Chat:
    def __init__(self, name: str, base_url: str, addresses: Mapping[str, str]) -> None:
        self.name = name
        self.addresses = addresses
        self.client = httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT)
        self.turns: list[Turn] = []
        self.failed_attempts: list[str] = []

    def __repr__(self) -> str:
        return f"<Chat {self.name} owner={self.owner} turns={len(self.turns)}>"

    @property
    def owner(self) -> str | None:
        return self.turns[-1].owner if self.turns else None

    async def say(self, phase: str) -> Turn:
        message = f"{self.name} turn {len(self.turns) + 1}"
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        response: httpx.Response | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = await self.client.post("/chat", json={"message": message},
                                                  headers=headers)
            except httpx.TransportError as exc:
                self.failed_attempts.append(f"{message} #{attempt}: {exc!r}")
                continue
            if response.status_code not in RETRY_STATUSES:
                break
            self.failed_attempts.append(f"{message} #{attempt}: HTTP {response.status_code}")
        else:
            raise AssertionError(f"{message}: no answer after {MAX_ATTEMPTS} attempts: "
                                 f"{self.failed_attempts[-MAX_ATTEMPTS:]}")
        assert response is not None
        assert response.status_code == 200, f"{message}: {response.status_code} {response.text}"
        body: dict[str, Any] = response.json()
        hints = (response.headers.get("x-stickyctx-node"),
                 response.headers.get("x-stickyctx-affinity"))
        assert hints == (body["owner"], body["affinity"]), f"{message}: {hints}, {body}"
        # The owner's address, from the serving node's view of the membership: always there
        # on a hit (a node knows itself); absent when the owner has just left that view.
        endpoint = response.headers.get("x-stickyctx-endpoint")
        if endpoint is not None or body["affinity"] == "hit":
            assert endpoint == self.addresses[body["owner"]], f"{message}: {endpoint}, {body}"
        turn = Turn(message, attempt, body["owner"], body["affinity"], body["node"],
                    body["turns"], phase)
        self.turns.append(turn)
        return turn

    async def history(self) -> list[dict[str, Any]]:
        response = await self.client.get("/history")
        assert response.status_code == 200, f"{self.name}: history {response.status_code}"
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages

    async def aclose(self) -> None:
        await self.client.aclose()
