"""Fixtures handing out private PostgreSQL servers (``tests.postgres_servers``).

Without ``initdb``/``postgres`` a test using them skips with a loud reason, and fails in CI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from tests.postgres_servers import PostgresServer, find_binary

MakePostgresServer = Callable[[], PostgresServer]


def _binaries() -> tuple[str, str]:
    initdb, postgres = find_binary("initdb"), find_binary("postgres")
    if initdb is None or postgres is None:
        reason = ("MISSING BINARY: PostgreSQL's 'initdb' and 'postgres' are not installed "
                  "(Debian package postgresql); these tests need them (CI installs them)")
        if os.environ.get("STICKYCTX_REQUIRE_BINARIES") == "1" or os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return initdb, postgres


def upgraded(server: PostgresServer) -> PostgresServer:
    """The server with the stickyctx schema applied (``stickyctx db upgrade``)."""
    from stickyctx.stores.postgres.migrations import upgrade

    with server.connect() as conn:
        upgrade(conn)
    return server


@pytest.fixture(scope="session")
def postgres_server_session() -> Iterator[PostgresServer]:
    """One server shared by the session, schema applied. Tests share it: each writes under a
    namespace of its own and never kills, restarts or reconfigures it."""
    initdb, postgres = _binaries()
    with PostgresServer(initdb=initdb, postgres=postgres) as server:
        yield upgraded(server)


@pytest.fixture
def postgres_server_factory() -> Iterator[MakePostgresServer]:
    """Fresh servers of this test's own (kill them, restart them), without the schema."""
    initdb, postgres = _binaries()
    with ExitStack() as stack:

        def make() -> PostgresServer:
            return stack.enter_context(PostgresServer(initdb=initdb, postgres=postgres))

        yield make


@pytest.fixture
def postgres_server(postgres_server_factory: MakePostgresServer) -> PostgresServer:
    """A fresh server of this test's own, schema applied."""
    return upgraded(postgres_server_factory())
