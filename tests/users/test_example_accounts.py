"""The examples' sign-in stand-in: a login cookie signed with the app's key, refused when
tampered with, forged with another key, or naming an unusable user."""

from __future__ import annotations

import pytest

from stickyctx.chat_example.accounts import learned_name, login_cookie, read_login, valid_user
from tests.conftest import KEY_B, make_settings


def test_a_login_cookie_names_its_user_and_nothing_else_does() -> None:
    settings = make_settings()
    cookie = login_cookie(settings, "ada")
    assert read_login(settings, cookie) == "ada"
    user, _, mac = cookie.rpartition(".")
    for forged in ("", "ada", f"bob.{mac}", cookie + "x", f"{user}.{mac[:-1]}",
                   login_cookie(make_settings(secret_keys=(KEY_B,)), "ada")):
        assert read_login(settings, forged) is None, forged
    assert read_login(settings, None) is None


@pytest.mark.parametrize(("user", "ok"), [("ada", True), ("a.b-c_9", True), ("", False),
                                          ("a b", False), ("x" * 65, False), ("ä", False)])
def test_user_names(user: str, ok: bool) -> None:
    assert valid_user(user) is ok


def test_a_given_name_is_learned() -> None:
    assert learned_name("hi, my name is Ada!") == "Ada"
    assert learned_name("call me Bob") == "Bob"
    assert learned_name("what is my name?") is None
