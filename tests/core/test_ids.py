"""Session ids: random, URL-safe, and validated before anything is derived from them."""

from __future__ import annotations

import pytest

from stickyctx.core.ids import is_valid_session_id, new_session_id


def test_new_ids_are_valid_url_safe_and_unique() -> None:
    ids = {new_session_id() for _ in range(2000)}
    assert len(ids) == 2000
    for session_id in ids:
        assert len(session_id) == 24
        assert is_valid_session_id(session_id)
        assert session_id.isascii()
        assert not set(session_id) & set("=+/.:{}")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("a" * 23, id="short"),
        pytest.param("a" * 25, id="long"),
        pytest.param("a" * 23 + ":", id="colon"),
        pytest.param("a" * 23 + "=", id="padding"),
        pytest.param("a" * 23 + "}", id="brace"),
        pytest.param("a" * 23 + "é", id="non-ascii"),
        pytest.param("a" * 24 + "\n", id="trailing-newline"),
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
        pytest.param(12345, id="int"),
        pytest.param(b"a" * 24, id="bytes"),
    ],
)
def test_anything_else_is_not_a_session_id(value: object) -> None:
    assert not is_valid_session_id(value)


def test_new_ids_never_start_with_a_dash_so_command_lines_take_them() -> None:
    assert not any(new_session_id().startswith("-") for _ in range(5000))
