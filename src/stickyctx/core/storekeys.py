"""Store keys: derived from session ids with a keyed hash, all under one Cluster hash tag.

Raw session ids never reach a store or telemetry: ``derive`` validates the id, then names it by
``HMAC-SHA256(hash key, id)``. Every key of one session carries that digest as its ``{hash tag}``,
so a session's keys share one Cluster slot and multi-key scripts work there.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from .ids import is_valid_session_id

__all__ = ["KeyDeriver", "SessionKey", "derive_hash_key"]

_DIGEST_BYTES = 16  # 128 bits: collisions between sessions are out of reach
_TAG_BYTES = 16


@dataclass(frozen=True, slots=True)
class SessionKey:
    """The store's name for one session: ``namespace`` plus the keyed digest of its id."""

    namespace: str
    tag: str

    def key(self, part: str) -> str:
        return f"{self.namespace}:{{{self.tag}}}:{part}"


def derive_hash_key(explicit: str | None, signing_keys_newest_first: tuple[str, ...]) -> bytes:
    """The secret of the keyed hash.

    ``STICKYCTX_HASH_KEY`` when set (required with a Redis store, outside dev mode). Otherwise
    (the embedded store, whose data lives only as long as the process) it is derived from the
    *oldest* signing key, the last in the list, which stays put while keys are added in front.
    """
    if explicit:
        return explicit.encode()
    anchor = signing_keys_newest_first[-1].encode()
    return hmac.new(anchor, b"stickyctx.hash-key.v1", hashlib.sha256).digest()


_REMEMBERED = 4096  # keyed hashes kept per node (its recently active sessions' names)


class KeyDeriver:
    # The keyed hash that names a session (URL-safe, 22 characters). Remembered for the most
    # recent ids (``functools.lru_cache``): an HMAC per request costs as much as the rest of a
    # sticky hit.
    digest: Callable[[str], str]

    def __init__(self, secret: bytes, namespace: str) -> None:
        self._secret = secret
        self.namespace = namespace
        self.digest = functools.lru_cache(maxsize=_REMEMBERED)(self._keyed_hash)

    def _keyed_hash(self, session_id: str) -> str:
        mac = hmac.new(self._secret, session_id.encode(), hashlib.sha256).digest()[:_DIGEST_BYTES]
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def follow_pointer(self, old_id: str, new_id: str) -> str:
        """What a rotation leaves in the old id's tombstone: the new id, readable only with the
        hash key and the old id (the tokens that carry it), and authenticated.

        A keystream of HMAC blocks keyed by the hash key and the old id, XORed with the new id,
        and an HMAC tag over both ids: each old id is rotated away once, so its keystream is
        used once. (Written here rather than with an AEAD library because the `crypto` extra
        is optional, and HMAC-SHA256 is all this needs.)"""
        data = new_id.encode()
        body = bytes(a ^ b for a, b in zip(data, self._pad(old_id, len(data)), strict=True))
        return base64.urlsafe_b64encode(body + self._follow_tag(old_id, data)).rstrip(
            b"=").decode()

    def followed(self, old_id: str, pointer: str) -> str | None:
        """The new id of ``follow_pointer``, or ``None`` when the pointer is not authentic."""
        try:
            raw = base64.urlsafe_b64decode(pointer + "=" * (-len(pointer) % 4))
        except ValueError:
            return None
        body, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        data = bytes(a ^ b for a, b in zip(body, self._pad(old_id, len(body)), strict=True))
        if len(raw) <= _TAG_BYTES or not hmac.compare_digest(tag, self._follow_tag(old_id, data)):
            return None
        new_id = data.decode(errors="replace")
        return new_id if is_valid_session_id(new_id) else None

    def _pad(self, old_id: str, length: int) -> bytes:
        blocks = b""
        for counter in range(-(-length // 32)):
            blocks += hmac.new(self._secret, b"stickyctx.follow.pad\0" + bytes([counter])
                               + old_id.encode(), hashlib.sha256).digest()
        return blocks[:length]

    def _follow_tag(self, old_id: str, new_id: bytes) -> bytes:
        return hmac.new(self._secret, b"stickyctx.follow.tag\0" + old_id.encode() + b"\0"
                        + new_id, hashlib.sha256).digest()[:_TAG_BYTES]

    def derive(self, session_id: str) -> SessionKey:
        """The store key of a session; ``ValueError`` for an id this package would not issue."""
        if not is_valid_session_id(session_id):
            raise ValueError("not a stickyctx session id")
        return SessionKey(self.namespace, self.digest(session_id))
