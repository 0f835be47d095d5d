"""Node identities: what a node id may look like, and the ``id=host:port`` membership syntax."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Announcement", "NodeSpec", "is_valid_node_id", "parse_nodes"]

# Node ids travel in a plain cookie, a response header and load-balancer configuration files,
# so they are restricted to characters that need no quoting in any of them.
_NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_ADDRESS = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})")


def is_valid_node_id(value: str) -> bool:
    return _NODE_ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One member: its id, and its ``host:port`` when known (for load balancers and hints)."""

    id: str
    address: str | None = None
    weight: float = 1.0


def parse_nodes(text: str) -> tuple[NodeSpec, ...]:
    """Parse ``a,b=10.0.0.2:8000,c=host:80``; raise ``ValueError`` with a reason on bad input."""
    specs: list[NodeSpec] = []
    seen: set[str] = set()
    # Errors name an entry by its position, never by its text: the value may be a pasted secret.
    for position, raw in enumerate(text.split(","), 1):
        item = raw.strip()
        if not item:
            continue
        node_id, sep, address = item.partition("=")
        node_id = node_id.strip()
        if not is_valid_node_id(node_id):
            raise ValueError(f"entry {position}: invalid node id (letters, digits, '.', '_', '-')")
        if node_id in seen:
            raise ValueError(f"entry {position}: the node id is listed twice")
        seen.add(node_id)
        addr: str | None = None
        if sep:
            addr = address.strip()
            match = _ADDRESS.fullmatch(addr)
            if match is None or not 0 < int(match.group(2)) < 65536:
                raise ValueError(f"entry {position}: invalid address (host:port)")
        specs.append(NodeSpec(node_id, addr))
    return tuple(specs)


@dataclass(frozen=True, slots=True)
class Announcement:
    """What a node announces in a membership heartbeat: its id, address and active sessions."""

    node_id: str
    address: str | None
    load: int
