"""Reading ``Cookie`` headers and writing ``Set-Cookie`` values: pure string work.

Duplicates matter: a second cookie of the same name (cookie tossing from a sibling domain) makes
the value ambiguous, so ``read_cookie`` reports it and the caller starts a fresh session.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["AMBIGUOUS", "CookieSpec", "read_cookie", "set_cookie_header"]


class _Ambiguous:
    __slots__ = ()

    def __repr__(self) -> str:
        return "AMBIGUOUS"


AMBIGUOUS = _Ambiguous()


def read_cookie(headers: Iterable[str], name: str) -> str | _Ambiguous | None:
    """The value of cookie ``name`` across all ``Cookie`` header values.

    ``None`` when absent, ``AMBIGUOUS`` when it appears more than once.
    """
    found: str | None = None
    for header in headers:
        if name not in header:
            continue
        for part in header.split(";"):
            key, sep, value = part.partition("=")
            if sep and key.strip() == name:
                if found is not None:
                    return AMBIGUOUS
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                found = value
    return found


@dataclass(frozen=True, slots=True)
class CookieSpec:
    """The attributes shared by the cookies this package sets."""

    secure: bool
    samesite: str = "lax"
    domain: str | None = None
    path: str = "/"

    def header(self, name: str, value: str, max_age: int) -> str:
        return set_cookie_header(name, value, max_age, self)


def set_cookie_header(name: str, value: str, max_age: int, spec: CookieSpec) -> str:
    """A ``Set-Cookie`` value. ``max_age`` 0 expires the cookie at once."""
    parts = [f"{name}={value}", f"Path={spec.path}", f"Max-Age={max(0, max_age)}"]
    if max_age <= 0:
        parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    if spec.domain:
        parts.append(f"Domain={spec.domain}")
    parts.append("HttpOnly")
    if spec.secure:
        parts.append("Secure")
    parts.append("SameSite=" + spec.samesite.capitalize())
    return "; ".join(parts)
