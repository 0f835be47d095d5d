"""The machine line every benchmark prints: cores, CPU model, Python, package versions."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib import metadata

__all__ = ["cpu_model", "describe"]


def cpu_model() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model


def describe(packages: Sequence[str], *, server: str = "") -> str:
    """``N cores, model; Python X (implementation); [server; ]package version, ...``."""
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in packages)
    parts = [f"{os.cpu_count()} cores, {cpu_model()}",
             f"Python {platform.python_version()} ({platform.python_implementation()})"]
    if server:
        parts.append(server)
    return "; ".join([*parts, versions])
