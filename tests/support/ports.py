"""The one free-port helper of the tests: a loopback port for a server the tests start.

Chosen at random below the kernel's ephemeral range, where the kernel never puts outgoing
connections or ``bind(0)`` sockets, so another process rarely takes it before the server binds
it; never a standard Redis or Sentinel port, never handed out twice in a session. A server that
loses the race anyway exits at once, and its starter retries on another port
(``RedisServer``; ``AppServer`` in ``tests/conftest.py``).
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["HOST", "STANDARD_PORTS", "free_port"]

HOST = "127.0.0.1"
# Redis and Sentinel ports by convention (with their cluster bus ports): never handed out.
STANDARD_PORTS = frozenset({6379, 6380, 16379, 16380, 26379, 26380})
_LOWEST_PORT = 20000

_handed_out: set[int] = set()
_random = random.Random()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # the Linux default


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port nothing is bound to, never a standard one, never handed out twice.

    Chosen at random below the ephemeral range, where the kernel never puts outgoing connections
    or ``bind(0)`` sockets, so another process rarely takes it before the server binds it (a
    server that loses that race says so with ``PortInUseError``).
    """
    low, _high = _ephemeral_range()
    for _ in range(1000):
        if low - _LOWEST_PORT >= 1000:
            port = _random.randrange(_LOWEST_PORT, low)
        else:  # an unusual range: let the kernel choose
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((HOST, 0))
                port = sock.getsockname()[1]
        if port not in STANDARD_PORTS and port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port found")
