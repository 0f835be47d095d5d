"""What the command modules share: the subparsers' type and plain help text."""

from __future__ import annotations

import argparse
import re
from typing import TypeAlias

__all__ = ["Subparsers", "plain"]

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

_LITERAL = re.compile(r"``(.+?)``")


def plain(doc: str | None) -> str:
    """A module docstring as help text: reStructuredText's ``literal`` marks dropped."""
    return _LITERAL.sub(r"\1", doc or "").strip()
