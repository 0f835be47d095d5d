"""The Redis store, sync form (for WSGI): a thin driver of ``ops`` over redis-py."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from ...core.messages import AppendResult, NewMessage, Snapshot, StoredMessage, Summary
from ...core.storekeys import SessionKey
from ...sansio.drive import run_sync
from ..crypto import KeyRing
from .ops import RedisOps
from .schema import Limits, repeatable, script, translate

__all__ = ["RedisStore"]

class _Scripts:
    """Runs a named script with the client; maps redis-py's errors to the store's."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._scripts: dict[str, Any] = {}

    def script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        registered = self._scripts.get(name)
        if registered is None:
            registered = self._scripts[name] = self.client.register_script(script(name))
        for attempt in (1, 2):
            try:
                return registered(keys=keys, args=args)
            except Exception as exc:  # translated into the store's errors
                if not repeatable(name, exc, attempt):
                    raise translate(name, exc) from exc
        raise AssertionError("unreachable")

    def wait(self, replicas: int, timeout_ms: int) -> int:
        try:
            return int(self.client.wait(replicas, timeout_ms))
        except Exception as exc:  # translated into the store's errors
            raise translate("wait", exc) from exc


class RedisStore:
    def __init__(self, client: Any, limits: Limits, hot_capacity: int = 10_000,
                 ring: KeyRing | None = None) -> None:
        self.client = client
        self.ops = RedisOps(limits, hot_capacity, ring)
        self.scripts = _Scripts(client)

    def load(self, key: SessionKey) -> Snapshot:
        return run_sync(self.ops.load(key), self.scripts)

    def append(self, key: SessionKey, messages: Sequence[NewMessage], *, created: float,
               create: bool = True, fence: int | None = None) -> AppendResult:
        return run_sync(self.ops.append(key, messages, created, create, fence), self.scripts)

    def clear(self, key: SessionKey, *, fence: int | None = None) -> int:
        return run_sync(self.ops.clear(key, fence), self.scripts)

    def pop(self, key: SessionKey, *, fence: int | None = None) -> StoredMessage | None:
        return run_sync(self.ops.pop(key, fence), self.scripts)

    def rotate(self, old: SessionKey, new: SessionKey) -> None:
        run_sync(self.ops.rotate(old, new), self.scripts)

    def destroy(self, key: SessionKey) -> None:
        run_sync(self.ops.destroy(key), self.scripts)

    def acquire_lease(self, key: SessionKey, *, holder: str, ttl: float,
                      name: str = "turn", live: Collection[str] = ()) -> int | None:
        return run_sync(self.ops.acquire_lease(key, holder, ttl, name, live), self.scripts)

    def release_lease(self, key: SessionKey, token: int, name: str = "turn",
                      holder: str | None = None) -> None:
        run_sync(self.ops.release_lease(key, token, name, holder), self.scripts)

    def apply_summary(self, key: SessionKey, text: str, tokens: int, *, watermark: int,
                      expected_watermark: int, delete_folded: bool = False) -> Summary | None:
        return run_sync(self.ops.apply_summary(key, text, tokens, watermark, expected_watermark,
                                               delete_folded), self.scripts)

    def recount(self, key: SessionKey, encoding: str, tokens: dict[int, int], *,
                expected_version: int) -> int | None:
        return run_sync(self.ops.recount(key, encoding, tokens, expected_version), self.scripts)

    def close(self) -> None:
        self.client.close()
