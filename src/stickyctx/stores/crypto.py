"""Encryption of stored context at rest (AES-GCM, envelope keys, a key ring with rotation).

``STICKYCTX_ENCRYPTION_KEY`` is a key ring: ``id:key,id:key`` newest first, each key 32 bytes in
URL-safe base64. Every session gets its own random data key (DEK); message payloads and the
summary are sealed with it, and the DEK itself is stored wrapped by the newest ring key (with its
id). So ciphertext is bound to its session (another session's DEK cannot open it), old ring keys
still open old DEKs, a DEK wrapped by an older key is re-wrapped under the newest on its next
load, and removing a key from the ring makes exactly the sessions it wrapped unreadable.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from ..errors import ConfigError, StoreError

__all__ = ["DataKey", "KeyRing", "parse_key_ring"]

_VAR = "STICKYCTX_ENCRYPTION_KEY"
_PREFIX = "~e1:"  # sealed payloads start with this (plain JSON payloads start with "{")
_WRAP_AAD = b"stickyctx.dek.v1"
_DATA_AAD = b"stickyctx.data.v1"


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
    """A session's data key, and its wrapped form as stored."""

    key: bytes
    wrapped: str

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = _aesgcm(self.key).encrypt(nonce, plaintext.encode(), _DATA_AAD)  # type: ignore[attr-defined]
        return _PREFIX + _b64e(nonce + sealed)

    def open(self, text: str) -> str:
        if not text.startswith(_PREFIX):
            return text  # written before encryption was turned on
        raw = _b64d(text[len(_PREFIX):])
        try:
            plain: bytes = _aesgcm(self.key).decrypt(raw[:12], raw[12:], _DATA_AAD)  # type: ignore[attr-defined]
        except Exception as exc:  # InvalidTag: tampered, or sealed by another session
            raise StoreError("stored message failed authentication (tampered, or moved "
                             "from another session)") from exc
        return plain.decode()


class KeyRing:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        self.keys = keys
        self._by_id = dict(keys)
        _aesgcm(keys[0][1])  # fail at startup when the extra is missing

    @property
    def newest(self) -> str:
        return self.keys[0][0]

    def new_data_key(self) -> DataKey:
        key = os.urandom(32)
        return DataKey(key, self._wrap(key))

    def _wrap(self, key: bytes) -> str:
        kid, master = self.keys[0]
        nonce = os.urandom(12)
        sealed = _aesgcm(master).encrypt(nonce, key, _WRAP_AAD + kid.encode())  # type: ignore[attr-defined]
        return f"{kid}:{_b64e(nonce + sealed)}"

    def unwrap(self, wrapped: str) -> DataKey:
        kid, _, body = wrapped.partition(":")
        master = self._by_id.get(kid)
        if master is None:
            raise StoreError(f"session data key is wrapped by key id {kid!r}, which is not in "
                             "STICKYCTX_ENCRYPTION_KEY any more")
        raw = _b64d(body)
        try:
            key: bytes = _aesgcm(master).decrypt(raw[:12], raw[12:], _WRAP_AAD + kid.encode())  # type: ignore[attr-defined]
        except Exception as exc:  # InvalidTag
            raise StoreError("session data key failed authentication") from exc
        return DataKey(key, wrapped)

    def needs_rewrap(self, wrapped: str) -> bool:
        return wrapped.partition(":")[0] != self.newest

    def rewrap(self, data_key: DataKey) -> DataKey:
        return DataKey(data_key.key, self._wrap(data_key.key))


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
