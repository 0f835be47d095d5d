"""The cookie settings' rules: names, attributes and the combinations browsers refuse."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Settings

__all__ = ["cookie_problem"]

_NOT_IN_NAMES = ' ;,="\\\t\r\n()<>@:/[]?{}'


def cookie_problem(settings: Settings) -> tuple[str, str] | None:
    """The first cookie setting a browser would refuse or misread, as (variable without the
    prefix, reason), or ``None``."""
    s = settings
    names = (("COOKIE_NAME", s.cookie_name), ("ROUTE_COOKIE", s.route_cookie))
    for var, name in names:
        if not name or any(c in name for c in _NOT_IN_NAMES):
            return var, "must be a valid cookie name"
    if s.cookie_name == s.route_cookie:
        return "ROUTE_COOKIE", "must differ from STICKYCTX_COOKIE_NAME"
    if s.cookie_samesite not in ("lax", "strict", "none"):
        return "COOKIE_SAMESITE", "must be lax, strict or none"
    if s.cookie_samesite == "none" and not s.secure_cookies:
        return "COOKIE_SAMESITE", "'none' requires Secure cookies"
    if s.cookie_partitioned and not s.secure_cookies:
        return "COOKIE_PARTITIONED", "Partitioned cookies require Secure cookies"
    if not s.cookie_path.startswith("/") or ";" in s.cookie_path:
        return "COOKIE_PATH", "must start with '/' and contain no ';'"
    if s.cookie_domain is not None and (";" in s.cookie_domain or not s.cookie_domain):
        return "COOKIE_DOMAIN", "must be a host name"
    for var, name in names:
        if name.startswith("__Host-") and (
            not s.secure_cookies or s.cookie_domain is not None or s.cookie_path != "/"
        ):
            return var, "the __Host- prefix needs Secure, Path=/ and no Domain"
        if name.startswith("__Secure-") and not s.secure_cookies:
            return var, "the __Secure- prefix needs Secure cookies"
    if s.cookie_issue not in ("lazy", "eager"):
        return "COOKIE_ISSUE", "must be 'lazy' or 'eager'"
    for path in s.exclude_paths:
        if not path.startswith("/") or any(c in path for c in "?#*; \t"):
            return "EXCLUDE_PATHS", "every path must start with '/' (no wildcards, no query)"
    return None
