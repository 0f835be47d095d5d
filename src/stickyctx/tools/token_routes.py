"""The owner inside a session token, as a regular expression a load balancer can match.

A header-transport client sends its token in ``X-Stickyctx-Session`` and nothing else. The token
is itsdangerous' ``payload.timestamp.signature``, the payload being the compact JSON
``{"v":1,"s":"<24-character id>","o":"<owner>","c":<created>...}`` in unpadded URL-safe base64.
Everything before the owner has a fixed length, and the owner is followed by the fixed
``","c":``, so the base64 characters of the 3-byte groups that span ``"<owner>"`` sit at a fixed
offset and depend on the owner alone: ``^.{offset}<those characters>`` matches exactly the tokens
that name that owner (the closing quote is included: ``web-1`` never matches ``web-10``'s).

The load balancer needs no key and verifies nothing: as with the routing cookie, a forged or
stale owner only sends the request to another node, which classifies it ``miss``. The pattern
is derived from a token signed by this package's own codec, so it follows the token format.
The codec never compresses payloads (:mod:`stickyctx.core.tokens`); a compressed token of an
earlier version (it starts with ``.``) matches no owner and is spread.
"""

from __future__ import annotations

import base64

from ..core.ids import new_session_id
from ..core.tokens import TokenCodec

__all__ = ["token_owner_regex"]

_SAMPLE = TokenCodec(["stickyctx-token-route-pattern-key"], max_age=1)
_OWNER = b'"o":"'
_AFTER = b'","c":'


def _payload(token: str) -> bytes | None:
    encoded = token.split(".", 1)[0]
    if not encoded:  # compressed: the payload starts after a leading "."
        return None
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


def token_owner_regex(node_id: str) -> str | None:
    """``^.{N}<base64>``: matches the session tokens whose owner is ``node_id`` (a POSIX
    extended, PCRE and RE2 expression of plain characters), or ``None`` if it cannot be built
    (a token format this module does not know)."""
    raw = _payload(_SAMPLE.sign(new_session_id(), node_id, 1))
    if raw is None:
        return None
    start = raw.index(_OWNER) + len(_OWNER) - 1  # the opening quote of the owner
    end = start + 1 + len(node_id) + 1  # after the closing quote
    if raw[end - 1:end - 1 + len(_AFTER)] != _AFTER:
        return None  # not the format this module knows
    first = start // 3 * 3
    last = (end + 2) // 3 * 3  # at most two bytes into the fixed '","c":'
    chars = base64.urlsafe_b64encode(raw[first:last]).decode()
    return f"^.{{{first // 3 * 4}}}{chars}"
