"""The backends the store contract suite runs against.

A backend is one entry of ``BACKENDS``: a name, a factory and the capabilities it offers. A
factory builds one fresh store in its sync and its async form over the same data, with the
requested clock, lifetimes and bounds (sessions per store, tokens and bytes per session), or calls
``pytest.skip``. Each backend is one entry; the Redis ones (a standalone server and a
three-master Cluster) reuse the session's servers through ``request.getfixturevalue``.

Capabilities a test may need, declared with ``@pytest.mark.store_needs(...)``:

* ``"clock"``: the store reads time from the injected clock only, so a test can move time
  (expiry, lease takeover). A backend whose server keeps its own time does not offer it.
* ``"lru"``: the store holds at most ``max_sessions`` sessions, evicting the least recently used.

Every test gets its own namespace, so backends whose data outlives a test never mix tests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import pytest

from stickyctx import Settings
from stickyctx.core.ids import new_session_id
from stickyctx.core.storekeys import KeyDeriver, SessionKey
from stickyctx.settings import Secret
from stickyctx.stores import Store, open_store
from stickyctx.stores.memory import MemoryStore
from tests.conftest import KEY_A, FakeClock
from tests.support.stores import AsyncCalls, SyncCalls

CAPABILITIES = frozenset({"clock", "lru"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "store_needs(*capabilities): run only on store backends that offer them "
        f"({', '.join(sorted(CAPABILITIES))}); others skip",
    )


class StoreFactory(Protocol):
    def __call__(
        self,
        request: pytest.FixtureRequest,
        *,
        clock: Callable[[], float],
        idle_ttl: float,
        absolute_ttl: float,
        max_sessions: int,
        max_session_tokens: int,
        max_session_bytes: int,
    ) -> Store: ...


@dataclass(frozen=True)
class Backend:
    name: str
    factory: StoreFactory
    capabilities: frozenset[str]
    why_not: Mapping[str, str] = field(default_factory=dict)  # why a capability is missing


def memory_backend(
    request: pytest.FixtureRequest,
    *,
    clock: Callable[[], float],
    idle_ttl: float,
    absolute_ttl: float,
    max_sessions: int,
    max_session_tokens: int,
    max_session_bytes: int,
) -> Store:
    return MemoryStore(
        max_sessions=max_sessions, idle_ttl=idle_ttl, absolute_ttl=absolute_ttl,
        max_session_tokens=max_session_tokens, max_session_bytes=max_session_bytes, clock=clock,
    )


def redis_backend(server_fixture: str, cold: bool = False) -> StoreFactory:
    """Stores over a Redis server (or Cluster) shared by the session, built from ``Settings``.

    Redis keeps its own time and its own memory bound: ``clock`` and ``max_sessions`` do not
    apply (tests never see each other's data: every test has a namespace of its own).
    """

    def factory(
        request: pytest.FixtureRequest,
        *,
        clock: Callable[[], float],
        idle_ttl: float,
        absolute_ttl: float,
        max_sessions: int,
        max_session_tokens: int,
        max_session_bytes: int,
    ) -> Store:
        server = request.getfixturevalue(server_fixture)
        tiers: dict[str, Any] = {}
        if cold:  # with the cold tier behind it (nothing goes cold during a test)
            tiers = {"cold_url": request.getfixturevalue("postgres_server_session").url,
                     "cold_after": max(1, round(idle_ttl) // 2)}
        settings = Settings(
            secret_keys=(KEY_A,), store_url=server.url, **tiers,
            hash_key=Secret("contract-suite-hash-key-0123456789"),
            idle_ttl=round(idle_ttl), absolute_ttl=round(absolute_ttl), store_timeout=5.0,
            max_session_tokens=max_session_tokens, max_session_bytes=max_session_bytes,
            max_message_bytes=min(1 << 20, max_session_bytes),
        )
        return open_store(settings)

    return factory


def postgres_backend(
    request: pytest.FixtureRequest,
    *,
    clock: Callable[[], float],
    idle_ttl: float,
    absolute_ttl: float,
    max_sessions: int,
    max_session_tokens: int,
    max_session_bytes: int,
) -> Store:
    """Stores over the session's PostgreSQL server (schema applied), built from ``Settings``;
    like Redis, it keeps its own time and has no session-count bound."""
    server = request.getfixturevalue("postgres_server_session")
    settings = Settings(
        secret_keys=(KEY_A,), store_url=server.url,
        hash_key=Secret("contract-suite-hash-key-0123456789"),
        idle_ttl=round(idle_ttl), absolute_ttl=round(absolute_ttl), store_timeout=5.0,
        max_session_tokens=max_session_tokens, max_session_bytes=max_session_bytes,
        max_message_bytes=min(1 << 20, max_session_bytes),
    )
    return open_store(settings)


_POSTGRES_WHY_NOT = {
    "clock": "PostgreSQL expires sessions and leases by the server's clock; "
             "tests/postgres/ checks expiry and lease takeover with real short lifetimes "
             "(test_store; test_userdata_streams for user data, streams and the follow grace)",
    "lru": "a PostgreSQL store is bounded by its disk, not a session count",
}

_REDIS_WHY_NOT = {
    "clock": "Redis expires keys by its own clock; tests/redis/ checks expiry, lease takeover "
             "and tombstones with real short lifetimes (test_expiry, test_fencing, test_erasure)",
    "lru": "Redis bounds memory with its own maxmemory policy, not a session count",
}

BACKENDS: list[Backend] = [
    Backend("memory", memory_backend, frozenset({"clock", "lru"})),
    Backend("redis", redis_backend("redis_server_session"), frozenset(), _REDIS_WHY_NOT),
    Backend("redis-cluster", redis_backend("redis_cluster"), frozenset(), _REDIS_WHY_NOT),
    Backend("postgres", postgres_backend, frozenset(), _POSTGRES_WHY_NOT),
    Backend("redis+cold", redis_backend("redis_server_session", cold=True), frozenset(),
            _REDIS_WHY_NOT),
]


@dataclass(frozen=True)
class StoreConfig:
    """The lifetimes and bound of the ``store``/``astore`` fixtures (tests read them here)."""

    idle_ttl: float = 100.0
    absolute_ttl: float = 1000.0
    max_sessions: int = 10_000
    max_session_tokens: int = 4_000_000
    max_session_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class Stores:
    store: Store  # the store itself
    sync: SyncCalls  # its primitives called blocking
    async_: AsyncCalls  # and awaited


MakeStores = Callable[..., Stores]


@pytest.fixture(params=[pytest.param(b, id=b.name) for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    needed: set[str] = set()
    for marker in request.node.iter_markers("store_needs"):
        needed.update(marker.args)
    unknown = needed - CAPABILITIES
    if unknown:
        raise ValueError(f"unknown store capabilities {sorted(unknown)}")
    missing = needed - chosen.capabilities
    if missing:
        reasons = "; ".join(f"{c}: {chosen.why_not.get(c, 'not offered')}"
                            for c in sorted(missing))
        pytest.skip(f"the {chosen.name} store does not offer {reasons}")
    return chosen


@pytest.fixture
def store_config() -> StoreConfig:
    return StoreConfig()


@pytest.fixture
def make_stores(
    request: pytest.FixtureRequest, backend: Backend, clock: FakeClock, store_config: StoreConfig
) -> Iterator[MakeStores]:
    """Build stores of the backend under test (``store_config`` changed by keyword arguments).

    Each one is closed at the end of the test.
    """
    made: list[Stores] = []

    def make(**changes: Any) -> Stores:
        config = replace(store_config, **changes)
        store = backend.factory(
            request, clock=clock, idle_ttl=config.idle_ttl, absolute_ttl=config.absolute_ttl,
            max_sessions=config.max_sessions, max_session_tokens=config.max_session_tokens,
            max_session_bytes=config.max_session_bytes,
        )
        made.append(Stores(store, SyncCalls(store), AsyncCalls(store)))
        return made[-1]

    yield make
    for stores in made:
        stores.store.close()


@pytest.fixture
def stores(make_stores: MakeStores) -> Stores:
    """One store in both forms over the same data."""
    return make_stores()


@pytest.fixture
def store(stores: Stores) -> SyncCalls:
    return stores.sync


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def astore(stores: Stores, anyio_backend: str) -> AsyncIterator[AsyncCalls]:
    """The async form of ``store`` (same data); closed inside the test's event loop."""
    yield stores.async_
    await stores.store.aclose()


@pytest.fixture
def new_key() -> Callable[[], SessionKey]:
    """Fresh session keys, under a namespace of this test's own."""
    deriver = KeyDeriver(b"contract-suite-hash-key-0123456789", f"contract-{uuid.uuid4().hex}")
    return lambda: deriver.derive(new_session_id())
