"""Reading server-sent events from an httpx streaming response, as a browser's parser would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["SSE", "read_events"]

TERMINAL = frozenset({"done", "stopped", "cancelled", "interrupted"})


@dataclass(frozen=True)
class SSE:
    id: str
    event: str
    data: str

    @property
    def number(self) -> int:
        return int(self.id.rsplit(":", 1)[1])

    @property
    def stream(self) -> str:
        return self.id.rsplit(":", 1)[0]

    def json(self) -> Any:
        return json.loads(self.data)


def read_events(response: httpx.Response) -> Iterator[SSE]:
    """The events of ``response`` as they arrive (comments skipped)."""
    fields: dict[str, list[str]] = {}
    for line in response.iter_lines():
        if not line:
            if fields:
                yield SSE("".join(fields.get("id", [""])),
                          "".join(fields.get("event", ["message"])),
                          "\n".join(fields.get("data", [])))
                fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
