"""The example apps' stand-in for an app's own sign-in, and what they remember about a user.

``POST /login {"user": "<name>"}`` sets a login cookie signed with the app's first signing key
(HMAC-SHA256 over the user name): a stand-in for the app's real authentication, which stickyctx
never does. A real app names the principal from its own session, JWT or OAuth library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..settings import Settings
from . import _NAME

__all__ = ["LOGIN_COOKIE", "learned_name", "login_cookie", "read_login", "valid_user"]

LOGIN_COOKIE = "example_login"
_USER = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _key(settings: Settings) -> bytes:
    first = settings.secret_keys[0] if settings.secret_keys else "dev"
    raw = first.reveal() if hasattr(first, "reveal") else str(first)
    return hmac.new(raw.encode(), b"stickyctx.example.login.v1", hashlib.sha256).digest()


def _mac(settings: Settings, user: str) -> str:
    digest = hmac.new(_key(settings), user.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def valid_user(value: object) -> bool:
    return isinstance(value, str) and _USER.fullmatch(value) is not None


def login_cookie(settings: Settings, user: str) -> str:
    """The login cookie's value for ``user`` (a valid user name)."""
    return f"{user}.{_mac(settings, user)}"


def read_login(settings: Settings, value: str | None) -> str | None:
    """The signed-in user named by a login cookie, or ``None`` (missing, tampered)."""
    if not value or "." not in value:
        return None
    user, _, mac = value.rpartition(".")
    if not valid_user(user) or not hmac.compare_digest(mac, _mac(settings, user)):
        return None
    return user


def learned_name(text: str) -> str | None:
    """The name a user gave ("my name is Ada"), which the examples keep in the user's memory."""
    found = _NAME.search(text)
    return found.group(1) if found else None


def memory_value(body: Mapping[str, Any] | Sequence[Any] | None) -> str | None:
    """``{"value": "..."}`` of ``PUT /me/memory/{key}``, or ``None`` when malformed."""
    if isinstance(body, Mapping) and isinstance(body.get("value"), str):
        return str(body["value"])
    return None
