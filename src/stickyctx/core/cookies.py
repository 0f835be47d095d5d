"""Reading ``Cookie`` headers and writing ``Set-Cookie`` values: pure string work.

Duplicates matter: a second cookie of the same name (cookie tossing from a sibling domain) makes
the value ambiguous, so ``read_cookie`` reports it and the caller starts a fresh session.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["AMBIGUOUS", "CookieSpec", "development_host", "read_cookie", "read_cookies",
           "secure_cookie_lost", "set_cookie_header"]


class _Ambiguous:
    __slots__ = ()

    def __repr__(self) -> str:
        return "AMBIGUOUS"


AMBIGUOUS = _Ambiguous()


def read_cookie(headers: Iterable[str], name: str) -> str | _Ambiguous | None:
    """The value of cookie ``name`` across all ``Cookie`` header values.

    ``None`` when absent, ``AMBIGUOUS`` when it appears more than once.
    """
    return read_cookies(headers, (name,))[0]


def read_cookies(headers: Iterable[str], names: Sequence[str]) -> list[str | _Ambiguous | None]:
    """``read_cookie`` for each of ``names``, in one pass over the headers."""
    found: list[str | _Ambiguous | None] = [None] * len(names)
    for header in headers:
        if not any(name in header for name in names):
            continue
        for part in header.split(";"):
            key, sep, value = part.partition("=")
            if not sep:
                continue
            key = key.strip()
            if key not in names:
                continue
            index = names.index(key)
            if found[index] is not None:
                found[index] = AMBIGUOUS
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            found[index] = value
    return found


@dataclass(frozen=True, slots=True)
class CookieSpec:
    """The attributes shared by the cookies this package sets.

    ``partitioned``: the ``Partitioned`` attribute (CHIPS: a widget embedded on other sites gets
    a cookie jar per top-level site). ``persistent=False``: browser-session cookies, without
    ``Max-Age`` (dropped when the browser session ends; the token still expires on the server).
    """

    secure: bool
    samesite: str = "lax"
    domain: str | None = None
    path: str = "/"
    partitioned: bool = False
    persistent: bool = True

    def header(self, name: str, value: str, max_age: int) -> str:
        return set_cookie_header(name, value, max_age, self)


def set_cookie_header(name: str, value: str, max_age: int, spec: CookieSpec) -> str:
    """A ``Set-Cookie`` value. ``max_age`` 0 expires the cookie at once."""
    parts = [f"{name}={value}", f"Path={spec.path}"]
    if max_age <= 0:
        parts += ["Max-Age=0", "Expires=Thu, 01 Jan 1970 00:00:00 GMT"]
    elif spec.persistent:
        parts.append(f"Max-Age={max_age}")
    if spec.domain:
        parts.append(f"Domain={spec.domain}")
    parts.append("HttpOnly")
    if spec.secure:
        parts.append("Secure")
    parts.append("SameSite=" + spec.samesite.capitalize())
    if spec.partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)


_DEV_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def development_host(host: str) -> bool:
    """Whether ``host`` (a ``Host`` header, port allowed) names a development machine: a test
    client's made-up host (``testserver``, ``localhost``), a loopback, private or link-local
    address, or a local-network name. A public name (a deployment behind a proxy) is not."""
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:8000
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name in ("testserver", "localhost", "") or name.endswith(_DEV_SUFFIXES):
        return True
    if "." not in name and ":" not in name:
        return True  # a bare machine name on a LAN
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


def secure_cookie_lost(secure: bool, scheme: str, host: str, forwarded_proto: str | None) -> bool:
    """Whether a ``Secure`` cookie sent in this response will likely never come back: the
    request came over plain http (no proxy says it was https) to a development host. Test
    clients (httpx, requests) and browsers on a LAN address keep ``Secure`` cookies only for
    https, so every request would start a new session."""
    if not secure or scheme not in ("http", "ws"):
        return False
    if forwarded_proto and forwarded_proto.split(",")[0].strip().lower() in ("https", "wss"):
        return False
    return development_host(host)
