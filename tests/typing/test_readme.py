"""The README's quickstarts are the files beside this one, which mypy --strict checks in CI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

HERE = Path(__file__).parent
README = HERE.parent.parent / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize(("index", "name"), [
    pytest.param(0, "readme_fastapi.py", id="fastapi"),
    pytest.param(1, "readme_flask.py", id="flask"),
])
def test_readme_block_is_the_checked_file(index: int, name: str) -> None:
    source = (HERE / name).read_text()
    assert _blocks()[index] in source, f"README block {index} drifted from tests/typing/{name}"


def test_readme_fastapi_app_serves_a_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.testclient import TestClient

    monkeypatch.setenv("STICKYCTX_SECRET_KEYS", "k" * 40)
    monkeypatch.setenv("STICKYCTX_COOKIE_SECURE", "0")
    namespace: dict[str, object] = {}
    exec(compile(_blocks()[0], "README-fastapi", "exec"), namespace)  # noqa: S102
    with TestClient(namespace["app"]) as client:  # type: ignore[arg-type]
        first = client.post("/chat", json={"message": "hello"}).json()
        second = client.post("/chat", json={"message": "again"}).json()
    assert first["affinity"] == "new"
    assert second["affinity"] == "hit"
    assert second["tokens"] > first["tokens"] > 0


def test_readme_flask_app_serves_a_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STICKYCTX_SECRET_KEYS", "k" * 40)
    monkeypatch.setenv("STICKYCTX_COOKIE_SECURE", "0")
    namespace: dict[str, object] = {"__name__": "readme_flask"}
    exec(compile(_blocks()[1], "README-flask", "exec"), namespace)  # noqa: S102
    client = namespace["app"].test_client()  # type: ignore[attr-defined]
    first = client.post("/chat", json={"message": "hello"}).get_json()
    second = client.post("/chat", json={"message": "again"}).get_json()
    assert first["affinity"] == "new"
    assert second["affinity"] == "hit"
    assert second["tokens"] > first["tokens"] > 0
