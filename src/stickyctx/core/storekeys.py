"""Store keys: derived from session ids with a keyed hash, all under one Cluster hash tag.

Raw session ids never reach a store or telemetry: ``derive`` validates the id, then names it by
``HMAC-SHA256(hash key, id)``. Every key of one session carries that digest as its ``{hash tag}``,
so a session's keys share one Cluster slot and multi-key scripts work there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from .ids import is_valid_session_id

__all__ = ["KeyDeriver", "SessionKey", "derive_hash_key"]

_DIGEST_BYTES = 16  # 128 bits: collisions between sessions are out of reach


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


class KeyDeriver:
    def __init__(self, secret: bytes, namespace: str) -> None:
        self._secret = secret
        self.namespace = namespace

    def digest(self, session_id: str) -> str:
        mac = hmac.new(self._secret, session_id.encode(), hashlib.sha256).digest()[:_DIGEST_BYTES]
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def derive(self, session_id: str) -> SessionKey:
        """The store key of a session; ``ValueError`` for an id this package would not issue."""
        if not is_valid_session_id(session_id):
            raise ValueError("not a stickyctx session id")
        return SessionKey(self.namespace, self.digest(session_id))
