"""Custom summarizers (``STICKYCTX_SUMMARIZER=module:callable``): sync and async ones work on both
paths; one that fails falls back to the built-in summarizer; a bad spec is a ``ConfigError``."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest

from stickyctx import ConfigError, Settings, StickyMiddleware, StickyWSGIMiddleware
from stickyctx.core.summarizer import HEADER
from stickyctx.session.services import Services

from ..conftest import KEY_A
from .chatter import assistant_text, user_text
from .harness import Chat, Driver, settings_for

SPEC = "tests.context.summarizers:"
SYSTEM = "You are a helpful assistant."
BUDGET = 700


def converse(chat: Chat, turns: int = 20) -> list[dict[str, Any]]:
    """A conversation that outgrows the window; every window fits. The last window."""
    rng = random.Random(8)
    window: list[dict[str, Any]] = []
    for turn in range(turns):
        with chat.turn() as request:
            request.append("user", ("My name is Alice. " if turn == 0 else "") + user_text(rng))
            window = request.window(system=SYSTEM)
            assert chat.count(window) <= BUDGET
            request.append("assistant", assistant_text(rng))
    return window


@pytest.mark.parametrize("name", [pytest.param("sync_summary", id="sync-summarizer"),
                                  pytest.param("async_summary", id="async-summarizer")])
def test_a_custom_summarizer_folds_on_both_paths(kind: Driver, name: str,
                                                 folded: list[str]) -> None:
    """``kind`` is the path (sync: WSGI, async: ASGI); both run both kinds of summarizer."""
    chat = Chat(kind, settings_for(token_budget=BUDGET, pruning="summarize",
                                   summarizer=SPEC + name))
    window = converse(chat)
    stored = chat.stored().summary
    assert stored is not None
    covered = len(folded)
    assert covered >= 6
    label = name.split("_")[0]
    assert stored.text == f"{label} summary: {covered} messages folded"
    assert window[1]["content"].startswith(f"{label} summary: ")
    with chat.turn() as request:  # the next window shows the summary the last request stored
        assert request.window(system=SYSTEM)[1] == {"role": "system", "content": stored.text}
    assert folded[0].startswith("My name is Alice.")


@pytest.mark.parametrize("name", [
    pytest.param("raising_summary", id="raises"),
    pytest.param("async_raising_summary", id="async-raises"),
    pytest.param("non_string_summary", id="returns-a-dict"),
    pytest.param("oversized_summary", id="over-its-budget"),
])
@pytest.mark.parametrize("storage", [pytest.param("archive", id="archive"),
                                     pytest.param("delete", id="delete")])
def test_a_failing_summarizer_falls_back_to_the_built_in_one(
    kind: Driver, name: str, storage: str, caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for(token_budget=BUDGET, pruning="summarize", summary_storage=storage,
                            summarizer=SPEC + name)
    chat = Chat(kind, settings)
    with caplog.at_level(logging.WARNING, logger="stickyctx"):
        window = converse(chat)
    assert any("built-in" in r.getMessage() for r in caplog.records)
    stored = chat.stored()
    assert stored.summary is not None
    assert stored.summary.version >= 2
    text = stored.summary.text
    assert isinstance(text, str)
    assert text.startswith(HEADER)
    assert "Alice" in text
    budget = settings.effective_summary_budget
    assert chat.count([{"role": "system", "content": text}]) - 3 <= budget
    assert window[1]["role"] == "system"
    assert window[1]["content"].startswith(HEADER)
    with chat.turn() as request:
        assert request.window(system=SYSTEM)[1] == {"role": "system", "content": text}
        messages = request.messages()
        assert request.token_count() == chat.count(messages)
    if storage == "archive":
        assert len(messages) == 40  # no message lost
    else:  # exactly the folded ones left
        assert next(m.seq for m in stored.messages) == stored.summary.watermark + 1


@pytest.mark.parametrize("spec", [
    pytest.param("no_colon_here", id="no-colon"),
    pytest.param(":sync_summary", id="no-module"),
    pytest.param("tests.context.summarizers:", id="no-callable"),
    pytest.param("tests.context.no_such_module:summarize", id="missing-module"),
    pytest.param(SPEC + "no_such_function", id="missing-callable"),
    pytest.param(SPEC + "NOT_CALLABLE", id="not-callable"),
])
def test_a_bad_summarizer_spec_is_a_config_error_naming_the_variable(spec: str) -> None:
    settings = settings_for(pruning="summarize", summarizer=spec)
    with pytest.raises(ConfigError) as caught:
        Services(settings)
    assert caught.value.variable == "STICKYCTX_SUMMARIZER"
    for middleware in (StickyMiddleware, StickyWSGIMiddleware):
        with pytest.raises(ConfigError, match="STICKYCTX_SUMMARIZER"):
            middleware(lambda *args: None, settings)  # type: ignore[arg-type]
    env = {"STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_PRUNING": "summarize",
           "STICKYCTX_SUMMARIZER": spec}
    with pytest.raises(ConfigError, match="STICKYCTX_SUMMARIZER"):
        Services(Settings.from_env(env))


def test_the_summarizer_variable_names_a_working_summarizer() -> None:
    env = {"STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_PRUNING": "summarize",
           "STICKYCTX_SUMMARIZER": SPEC + "async_summary"}
    services = Services(Settings.from_env(env))
    assert services.summarizer is not services.builtin_summarizer
    assert services.settings.summarizer == SPEC + "async_summary"
