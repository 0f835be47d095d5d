"""Signed session tokens: ``{session id, creation time, pinned owner}`` under a key ring.

A rotated session's token also carries its ``lineage``: the keyed name of the conversation's
first id (never an id), so that names derived for the conversation survive ``rotate()``.

Signed with itsdangerous (own salt, timestamped); the newest key signs, every key verifies, and a
token verified by an older key is reported so that it can be re-issued under the newest one.
Verification is pure and never raises: anything unusable is ``None`` (a fresh session follows).

Payloads are never compressed (itsdangerous' default compresses when that is a byte shorter):
the owner then always sits at a fixed offset, where a load balancer finds it
(:mod:`stickyctx.tools.token_routes`). Compressed tokens of earlier versions still verify.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from itsdangerous import Serializer, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode, bytes_to_int

from .ids import is_valid_session_id
from .nodes import is_valid_node_id

__all__ = ["MAX_TOKEN_BYTES", "SessionToken", "TokenCodec"]

MAX_TOKEN_BYTES = 4096
_SALT = "stickyctx.session.v1"
_FORMAT = 1
_CACHE_LIMIT = 4096
_LINEAGE = re.compile(r"[A-Za-z0-9_-]{16,64}")  # a KeyDeriver digest (22 characters today)
_FIELDS = frozenset({"v", "s", "o", "c", "l"})  # a payload with anything else is not ours
_SKEW = 60  # seconds of clock skew between nodes tolerated on the times a token carries


class _PlainSerializer(URLSafeTimedSerializer):
    """itsdangerous' URL-safe timed serializer whose payloads are never zlib-compressed."""

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


@dataclass(frozen=True, slots=True)
class SessionToken:
    """What a valid token says. ``key_index`` 0 is the newest key; above 0 means re-sign."""

    session_id: str
    owner: str
    created: int
    signed_at: int
    key_index: int = 0
    lineage: str | None = None  # set once the session was rotated


class TokenCodec:
    """Signs and verifies session tokens. ``keys`` are raw key strings, newest first."""

    def __init__(self, keys: Sequence[str], *, max_age: int,
                 clock: Callable[[], float] = time.time) -> None:
        if not keys:
            raise ValueError("at least one key is required")

        class _Signer(TimestampSigner):
            def get_timestamp(self) -> int:  # signing time from the same clock as expiry
                return int(clock())

            @functools.cache  # noqa: B019 - one signer per key, alive as long as the codec
            def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
                # A hash of the salt and the secret: the same every time (1.2 us per token).
                return super().derive_key(secret_key)

        # One serializer per key, newest first, so that we learn which key verified a token.
        # (itsdangerous' own key lists want the signing key last; keeping one key per serializer
        # avoids that convention entirely.)
        self._serializers = [
            _PlainSerializer(k, salt=_SALT, signer=_Signer,
                             signer_kwargs={"digest_method": _sha256()})
            for k in keys
        ]
        # Signers built once (itsdangerous' loads() builds one per call): a third cheaper.
        self._unsigners = [(s, cast(TimestampSigner, s.make_signer(_SALT)))
                           for s in self._serializers]
        self.max_age = max_age
        # Exact token string -> verified claims. Signatures are deterministic for a key ring, so
        # a token verified once needs only its expiry re-checked. Bounded; tampering misses it.
        self._cache: dict[str, SessionToken] = {}

    def sign(self, session_id: str, owner: str, created: int,
             lineage: str | None = None) -> str:
        payload: dict[str, object] = {"v": _FORMAT, "s": session_id, "o": owner, "c": created}
        if lineage is not None:
            payload["l"] = lineage
        token = self._serializers[0].dumps(payload)
        assert isinstance(token, str)
        return token

    def verify(self, token: str, now: float | None = None) -> SessionToken | None:
        """Return the claims of a valid, unexpired token, or ``None`` (never raises)."""
        now = time.time() if now is None else now
        cached = self._cache.get(token)
        if cached is None:
            if not token or len(token) > MAX_TOKEN_BYTES or not token.isascii():
                return None
            cached = self._verify_signature(token)
            if cached is None:
                return None
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[token] = cached
        if now - cached.signed_at > self.max_age or now - cached.created > self.max_age:
            return None
        if max(cached.signed_at, cached.created) > now + _SKEW:  # made in the future: forged
            return None
        return cached

    def _verify_signature(self, token: str) -> SessionToken | None:
        # itsdangerous' format (``payload.timestamp.signature``), checked with its own
        # ``verify_signature`` but without ``unsign``'s datetime and its second split of the
        # token: a token's first request to a node cost 32 us that way, 17 us this way.
        signed, _, signature = token.rpartition(".")
        encoded, _, stamp = signed.rpartition(".")
        if not encoded or not stamp:
            return None
        signed_bytes, signature_bytes = signed.encode(), signature.encode()
        for index, (serializer, signer) in enumerate(self._unsigners):
            if not signer.verify_signature(signed_bytes, signature_bytes):
                continue
            try:
                signed_at = bytes_to_int(base64_decode(stamp))
                payload = serializer.load_payload(encoded.encode())
            except Exception:  # noqa: BLE001 - malformed input of any kind is just "invalid"
                return None
            claims = _claims(payload)
            if claims is None:
                return None
            session_id, owner, created, lineage = claims
            if created > signed_at + _SKEW:  # created after it was signed
                return None
            return SessionToken(session_id, owner, created, signed_at, index, lineage)
        return None


def _claims(payload: Any) -> tuple[str, str, int, str | None] | None:
    if not isinstance(payload, dict) or payload.get("v") != _FORMAT or payload.keys() - _FIELDS:
        return None
    session_id, owner, created = payload.get("s"), payload.get("o"), payload.get("c")
    if not is_valid_session_id(session_id):
        return None
    if not isinstance(owner, str) or not is_valid_node_id(owner):
        return None
    if not isinstance(created, int) or isinstance(created, bool) or created < 0:
        return None
    lineage = payload.get("l")
    if lineage is not None and not (isinstance(lineage, str) and _LINEAGE.fullmatch(lineage)):
        return None
    assert isinstance(session_id, str)
    return session_id, owner, created, lineage


def _sha256() -> Any:
    import hashlib

    return hashlib.sha256
