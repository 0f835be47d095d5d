"""The shape of the package: its layers (import-linter's contracts in pyproject), the sync and
async faces in step, small modules, and a package root that holds only the public entry points.
"""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import stickyctx
from stickyctx import Conversation, SyncConversation
from stickyctx.session.handle import operation
from stickyctx.stores import MemoryStore, Store
from stickyctx.stores.redis.io import AsyncRedisIO, SyncRedisIO
from stickyctx.stores.redis.store import RedisStore
from stickyctx.stores.streams import StreamStore

SOURCES = Path(stickyctx.__file__).parent
MAX_LINES = 320  # "a few hundred lines at most"


def test_the_layer_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is a development dependency"
    done = subprocess.run([lint, "--no-cache"], capture_output=True, text=True, timeout=120,
                          cwd=SOURCES.parent.parent, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout
    assert done.stdout.count("KEPT") >= 2


def _public(cls: type) -> dict[str, object]:
    return {name: value for name, value in inspect.getmembers(cls)
            if not name.startswith("_")}


def test_both_handles_expose_the_same_operations_with_the_same_signatures() -> None:
    sync, aio = _public(SyncConversation), _public(Conversation)
    assert sorted(sync) == sorted(aio)
    operations = [name for name, value in sync.items() if isinstance(value, operation)]
    assert {"append", "extend", "messages", "window", "token_count", "pop", "clear", "rotate",
            "destroy"} <= set(operations)
    for name in operations:
        # One declaration serves both faces: the same Session operation, the same signature.
        assert sync[name] is aio[name]
    for name, value in sync.items():
        if callable(value) and not isinstance(value, operation):
            got = inspect.signature(value).parameters
            want = inspect.signature(aio[name]).parameters  # type: ignore[arg-type]
            assert list(got) == list(want), name


def _protocol_methods() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(value) for protocol in (Store, StreamStore)
            for name, value in vars(protocol).items()
            if callable(value) and not name.startswith("_")}


@pytest.mark.parametrize("implementation", [MemoryStore, RedisStore], ids=lambda c: c.__name__)
def test_every_store_implements_every_primitive_with_the_protocols_parameters(
    implementation: type,
) -> None:
    for name, expected in _protocol_methods().items():
        method = getattr(implementation, name, None)
        assert method is not None, f"{implementation.__name__} lacks {name}"
        got = inspect.signature(method)
        assert [(p.name, p.kind, p.default) for p in got.parameters.values()] == [
            (p.name, p.kind, p.default) for p in expected.parameters.values()], name


def test_the_redis_io_adapters_are_mirrors() -> None:
    sync, aio = _public(SyncRedisIO), _public(AsyncRedisIO)
    assert set(sync) - {"close", "client"} == set(aio) - {"aclose", "client", "clients"}
    assert list(inspect.signature(sync["perform"]).parameters) == list(  # type: ignore[arg-type]
        inspect.signature(aio["perform"]).parameters)  # type: ignore[arg-type]
    assert inspect.iscoroutinefunction(aio["perform"])


def test_no_module_is_over_a_few_hundred_lines() -> None:
    long = {str(p.relative_to(SOURCES)): n for p in SOURCES.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long


def test_the_package_root_holds_only_the_public_entry_points() -> None:
    modules = sorted(p.name for p in SOURCES.glob("*.py"))
    assert modules == ["__init__.py", "__main__.py", "_version.py", "errors.py", "fastapi.py",
                       "flask.py"]
    folders = sorted(p.name for p in SOURCES.iterdir()
                     if p.is_dir() and (p / "__init__.py").exists())
    assert folders == ["chat_example", "cli", "cluster", "core", "edges", "integrations",
                       "sansio", "session", "settings", "stores", "telemetry", "tools"]
