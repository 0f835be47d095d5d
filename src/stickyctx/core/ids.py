"""Session ids: generated from ``secrets``, validated before anything is derived from them."""

from __future__ import annotations

import re
import secrets

__all__ = ["ID_BYTES", "is_valid_session_id", "new_session_id"]

ID_BYTES = 18  # 144 bits, 24 URL-safe characters without padding
_ID = re.compile(r"[A-Za-z0-9_-]{24}")


def new_session_id() -> str:
    # Never with a leading '-': an id is pasted into command lines (``stickyctx purge ID``),
    # where it would read as an option.
    while True:
        session_id = secrets.token_urlsafe(ID_BYTES)
        if not session_id.startswith("-"):
            return session_id


def is_valid_session_id(value: object) -> bool:
    """True for ids of the shape this package issues; anything else is never used for a key."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None
