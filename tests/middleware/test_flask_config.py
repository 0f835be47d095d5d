"""The Flask extension reads ``app.config["STICKYCTX_*"]`` over the environment."""

from __future__ import annotations

import os
from typing import Any

import flask
import pytest

from stickyctx import ConfigError, Settings, StickyWSGIMiddleware
from stickyctx.flask import StickyCtx, current_context, settings_from_config

from ..conftest import KEY_A, KEY_B


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("STICKYCTX_"):
            monkeypatch.delenv(name)


def make_app(**config: Any) -> flask.Flask:
    app = flask.Flask("stickyctx_config")
    app.config.update(config)

    @app.post("/chat")
    def chat() -> Any:
        conv = current_context()
        conv.append("user", "hi")
        return {"node": conv.node_id, "turns": conv.turn_count()}

    return app


def settings_of(app: flask.Flask) -> Settings:
    middleware = app.wsgi_app  # the app's own middleware (one extension may serve many apps)
    assert isinstance(middleware, StickyWSGIMiddleware)
    return middleware.settings


def test_the_extension_reads_app_config() -> None:
    app = make_app(STICKYCTX_SECRET_KEYS=[KEY_B, KEY_A], STICKYCTX_NODE_ID="from-config",
                   STICKYCTX_IDLE_TTL=600, STICKYCTX_COOKIE_SECURE=False,
                   STICKYCTX_COOKIE_NAME="chat", STICKYCTX_BALANCE_FACTOR=0.5,
                   SECRET_KEY="flask's own, ignored")
    StickyCtx(app)
    settings = settings_of(app)
    assert [k.reveal() for k in settings.keys] == [KEY_B, KEY_A]
    assert (settings.node_id, settings.idle_ttl, settings.secure_cookies, settings.cookie_name,
            settings.balance_factor) == ("from-config", 600, False, "chat", 0.5)
    reply = app.test_client().post("/chat")
    assert reply.get_json() == {"node": "from-config", "turns": 1}
    assert any(h.startswith("chat=") for h in reply.headers.getlist("Set-Cookie"))


def test_config_wins_over_the_environment_which_fills_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STICKYCTX_SECRET_KEYS", KEY_A)
    monkeypatch.setenv("STICKYCTX_NODE_ID", "from-env")
    monkeypatch.setenv("STICKYCTX_NAMESPACE", "env-namespace")
    app = make_app(STICKYCTX_NODE_ID="from-config")
    StickyCtx(app)
    settings = settings_of(app)
    assert (settings.node_id, settings.namespace) == ("from-config", "env-namespace")
    assert [k.reveal() for k in settings.keys] == [KEY_A]


def test_explicit_settings_win_over_config() -> None:
    app = make_app(STICKYCTX_NODE_ID="from-config", STICKYCTX_SECRET_KEYS=KEY_A)
    StickyCtx(app, Settings(secret_keys=(KEY_B,), node_id="explicit"))
    assert settings_of(app).node_id == "explicit"


def test_an_application_factory_with_init_app() -> None:
    extension = StickyCtx()
    apps = [make_app(STICKYCTX_SECRET_KEYS=KEY_A, STICKYCTX_NODE_ID=f"n{i}",
                     STICKYCTX_COOKIE_SECURE="0") for i in (1, 2)]
    for app in apps:
        extension.init_app(app)
        assert app.test_client().post("/chat").get_json()["node"] == settings_of(app).node_id
    assert [settings_of(app).node_id for app in apps] == ["n1", "n2"]


@pytest.mark.parametrize(("config", "variable"), [
    pytest.param({"STICKYCTX_IDEL_TTL": 10}, "STICKYCTX_IDEL_TTL", id="typo"),
    pytest.param({"STICKYCTX_IDLE_TTL": "soon"}, "STICKYCTX_IDLE_TTL", id="bad-value"),
    pytest.param({"STICKYCTX_IDLE_TTL": {"hours": 1}}, "STICKYCTX_IDLE_TTL", id="bad-type"),
    pytest.param({"STICKYCTX_SECRET_KEYS": "short-secret-value"}, "STICKYCTX_SECRET_KEYS",
                 id="short-key"),
])
def test_a_bad_key_or_value_is_a_config_error_naming_it(config: dict[str, Any],
                                                        variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_config({"STICKYCTX_SECRET_KEYS": KEY_A, **config}, environ={})
    assert caught.value.variable == variable
    assert "short-secret-value" not in str(caught.value)
    assert "soon" not in str(caught.value)
