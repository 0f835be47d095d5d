"""The example apps' stand-in for an app's own sign-in, and what they remember about a user.

``POST /login {"user": "<name>"}`` sets a login cookie signed (itsdangerous) with the app's
first signing key: a stand-in for the app's real authentication, which stickyctx never does. A
real app names the principal from its own session, JWT or OAuth library.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from itsdangerous import BadSignature, Signer

from ..settings import Settings
from . import _NAME

__all__ = ["LOGIN_COOKIE", "learned_name", "login_cookie", "read_login", "valid_user"]

LOGIN_COOKIE = "example_login"
_USER = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SALT = "stickyctx.example.login"


@cache
def _process_key() -> str:
    return secrets.token_urlsafe(32)  # no signing key configured: valid in this process only


def _signer(settings: Settings) -> Signer:
    first = settings.secret_keys[0] if settings.secret_keys else None
    key = (first.reveal() if hasattr(first, "reveal") else str(first)) if first else None
    return Signer(key or _process_key(), salt=_SALT)


def valid_user(value: object) -> bool:
    return isinstance(value, str) and _USER.fullmatch(value) is not None


def login_cookie(settings: Settings, user: str) -> str:
    """The login cookie's value for ``user`` (a valid user name)."""
    return _signer(settings).sign(user).decode()


def read_login(settings: Settings, value: str | None) -> str | None:
    """The signed-in user named by a login cookie, or ``None`` (missing, tampered)."""
    if not value:
        return None
    try:
        user = _signer(settings).unsign(value).decode()
    except BadSignature:
        return None
    return user if valid_user(user) else None


def learned_name(text: str) -> str | None:
    """The name a user gave ("my name is Ada"), which the examples keep in the user's memory."""
    found = _NAME.search(text)
    return found.group(1) if found else None


def memory_value(body: Mapping[str, Any] | Sequence[Any] | None) -> str | None:
    """``{"value": "..."}`` of ``PUT /me/memory/{key}``, or ``None`` when malformed."""
    if isinstance(body, Mapping) and isinstance(body.get("value"), str):
        return str(body["value"])
    return None
