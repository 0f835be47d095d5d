"""Encryption of stored context at rest (AES-GCM, envelope keys, a key ring with rotation).

``STICKYCTX_ENCRYPTION_KEY`` is a key ring: ``id:key,id:key`` newest first, each key 32 bytes in
URL-safe base64. Every session gets its own random data key (DEK); message payloads and the
summary are sealed with it, and the DEK itself is stored wrapped by the newest ring key (with its
id). So ciphertext is bound to its session (another session's DEK cannot open it), old ring keys
still open old DEKs, a DEK wrapped by an older key is re-wrapped under the newest on its next
load, and removing a key from the ring makes exactly the sessions it wrapped unreadable.

Each sealed item is also bound to its place: the associated data of the AEAD names what it is
(a message, or the summary) and its position (the message's sequence number, the summary's
watermark), so an item moved within its session, or replayed at another position, fails
authentication. Whoever can write to the store cannot slip in plaintext either: a data key is
wrapped together with the first position it sealed, and an item below that position is the only
one that may be plaintext (written before the session was encrypted); the position is
authenticated by the ring key with the data key itself.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from ..errors import ConfigError, StoreError, TamperedDataError

__all__ = ["DataKey", "KeyRing", "parse_key_ring"]

_VAR = "STICKYCTX_ENCRYPTION_KEY"
# Sealed payloads start with one of these (plain JSON payloads start with "{").
_PREFIX = "~e2:"  # bound to the item's kind and position
_PREFIX_V1 = "~e1:"  # the first version's, bound to the session only
_WRAP_AAD = b"stickyctx.dek.v1"
_DATA_AAD = b"stickyctx.data.v2|"
_DATA_AAD_V1 = b"stickyctx.data.v1"
_UNBOUNDED = 2**63  # a data key of the first version: plaintext allowed at any position


def _aesgcm(key: bytes) -> object:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise ConfigError(_VAR, "encryption needs the crypto extra: pip install "
                                "'stickyctx[crypto]'") from None
    return AESGCM(key)


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class DataKey:
    """A session's data key, its wrapped form as stored, and the first position it sealed
    (items before it may be plaintext: written before the session was encrypted)."""

    key: bytes
    wrapped: str
    first: int = 1

    def seal(self, plaintext: str, kind: str, position: int) -> str:
        """``kind``: ``m`` (a message, ``position`` its sequence number) or ``s`` (the summary,
        ``position`` its watermark)."""
        nonce = os.urandom(12)
        sealed = _aesgcm(self.key).encrypt(  # type: ignore[attr-defined]
            nonce, plaintext.encode(), _DATA_AAD + f"{kind}{position}".encode())
        return _PREFIX + _b64e(nonce + sealed)

    def open(self, text: str, kind: str, position: int) -> str:
        if text.startswith(_PREFIX):
            aad, body = _DATA_AAD + f"{kind}{position}".encode(), text[len(_PREFIX):]
        elif text.startswith(_PREFIX_V1) and self.first == _UNBOUNDED:
            aad, body = _DATA_AAD_V1, text[len(_PREFIX_V1):]  # sealed by the first version
        elif position < self.first and not text.startswith("~"):
            return text  # written before encryption was turned on for this session
        else:
            raise TamperedDataError(f"stored {_KINDS.get(kind, kind)} {position} is not sealed "
                                    "as its encrypted session requires")
        raw = _b64d(body)
        try:
            plain: bytes = _aesgcm(self.key).decrypt(raw[:12], raw[12:], aad)  # type: ignore[attr-defined]
        except Exception as exc:  # InvalidTag: tampered, moved, or sealed by another session
            raise TamperedDataError(f"stored {_KINDS.get(kind, kind)} {position} failed "
                                    "authentication (tampered, moved, or from another "
                                    "session)") from exc
        return plain.decode()


_KINDS = {"m": "message", "s": "summary"}


class KeyRing:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        self.keys = keys
        self._by_id = dict(keys)
        _aesgcm(keys[0][1])  # fail at startup when the extra is missing

    @property
    def newest(self) -> str:
        return self.keys[0][0]

    def new_data_key(self, first: int = 1) -> DataKey:
        """A new data key for a session whose next sealed item is at position ``first``."""
        key = os.urandom(32)
        return DataKey(key, self._wrap(key, first), first)

    def _wrap(self, key: bytes, first: int) -> str:
        kid, master = self.keys[0]
        nonce = os.urandom(12)
        sealed = _aesgcm(master).encrypt(  # type: ignore[attr-defined]
            nonce, key, _WRAP_AAD + kid.encode() + b"|" + str(first).encode())
        return f"{kid}:{first}:{_b64e(nonce + sealed)}"

    def unwrap(self, wrapped: str) -> DataKey:
        kid, _, rest = wrapped.partition(":")
        first_text, sep, body = rest.partition(":")
        if sep:  # id:first:body
            if not first_text.isdigit():
                raise TamperedDataError("session data key is malformed")
            first, aad = int(first_text), _WRAP_AAD + kid.encode() + b"|" + first_text.encode()
        else:  # id:body, the first version's: positions were not bound
            first, aad, body = _UNBOUNDED, _WRAP_AAD + kid.encode(), rest
        master = self._by_id.get(kid)
        if master is None:
            raise StoreError(f"session data key is wrapped by key id {kid!r}, which is not in "
                             "STICKYCTX_ENCRYPTION_KEY any more")
        raw = _b64d(body)
        try:
            key: bytes = _aesgcm(master).decrypt(raw[:12], raw[12:], aad)  # type: ignore[attr-defined]
        except Exception as exc:  # InvalidTag
            raise TamperedDataError("session data key failed authentication") from exc
        return DataKey(key, wrapped, first)

    def needs_rewrap(self, wrapped: str) -> bool:
        return wrapped.partition(":")[0] != self.newest

    def rewrap(self, data_key: DataKey) -> DataKey:
        if data_key.first == _UNBOUNDED:
            # A first-version key keeps the first version's form under the newest ring key, so
            # that its items (bound to the session only) stay readable.
            kid, master = self.keys[0]
            nonce = os.urandom(12)
            sealed = _aesgcm(master).encrypt(nonce, data_key.key,  # type: ignore[attr-defined]
                                             _WRAP_AAD + kid.encode())
            return DataKey(data_key.key, f"{kid}:{_b64e(nonce + sealed)}", _UNBOUNDED)
        return DataKey(data_key.key, self._wrap(data_key.key, data_key.first), data_key.first)


def parse_key_ring(text: str) -> KeyRing:
    keys: list[tuple[str, bytes]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        kid, sep, encoded = item.partition(":")
        if not sep or not kid or not kid.isalnum() or len(kid) > 32:
            raise ConfigError(_VAR, "expected id:key[,id:key...] with alphanumeric ids, newest "
                                    "first")
        try:
            key = _b64d(encoded)
        except ValueError:
            raise ConfigError(_VAR, f"key {kid!r} is not URL-safe base64") from None
        if len(key) != 32:
            raise ConfigError(_VAR, f"key {kid!r} must be 32 bytes (AES-256)")
        if any(kid == k for k, _ in keys):
            raise ConfigError(_VAR, f"key id {kid!r} is listed twice")
        keys.append((kid, key))
    if not keys:
        raise ConfigError(_VAR, "no key given")
    return KeyRing(keys)
