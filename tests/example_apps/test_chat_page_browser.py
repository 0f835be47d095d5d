"""The example chat page in a real headless browser (Debian's chromium driven by Playwright),
against real servers of both example apps: a reply streams into the page, a reload in the
middle of it resumes it, and the reply appears once; the Stop button stops a reply."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stickyctx.chat_example import offline_reply
from tests.conftest import KEY_A, AppServer, require_binary

pytestmark = pytest.mark.slow

APPS = {
    "fastapi": ("examples.fastapi.app:app", "asgi3"),
    "flask": ("examples.flask.app:app", "gunicorn"),
}
MESSAGE = "my name is Ada and please tell me something long enough to reload during it"
TIMEOUT_MS = 20_000


@pytest.fixture(params=sorted(APPS))
def page_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
             app_server: Callable[..., AppServer]) -> str:
    for name in list(os.environ):
        if name.startswith(("STICKYCTX_", "OPENAI_")):
            monkeypatch.delenv(name)
    target, interface = APPS[request.param]
    env = {"STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_NODE_ID": "n1",
           "STICKYCTX_COOKIE_SECURE": "0", "DEMO_TOKEN_DELAY_MS": "120"}
    return app_server(target, env, interface=interface).url + "/"


@pytest.fixture
def page(page_url: str) -> Iterator[Any]:
    chromium = require_binary("chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            opened = browser.new_page()
            opened.set_default_timeout(TIMEOUT_MS)
            opened.goto(page_url)
            yield opened
        finally:
            browser.close()


def send(page: Any, text: str) -> None:
    page.fill("#message", text)
    page.click("button[type=submit]")


def test_a_reload_mid_reply_resumes_it_and_the_reply_appears_once(page: Any) -> None:
    send(page, MESSAGE)
    # A few words in, the reply is still streaming: reload.
    page.wait_for_function(
        "() => { const s = document.querySelector('.assistant.streaming span');"
        " return s && s.textContent.split(' ').length >= 4; }")
    assert page.locator(".assistant[data-status]").count() == 0  # not finished yet
    page.reload()
    finished = page.locator(".assistant[data-status]")
    finished.wait_for()
    full = offline_reply([{"role": "user", "content": MESSAGE}])
    assert page.locator(".assistant").count() == 1
    assert finished.get_attribute("data-status") == "complete"
    assert finished.locator("span").text_content() == full
    assert page.locator(".user").all_text_contents() == [MESSAGE]
    # And once more from the stored history alone.
    page.reload()
    page.locator(".assistant").first.wait_for()
    assert page.locator(".assistant").all_text_contents() == [full]


def test_the_stop_button_stops_the_reply(page: Any) -> None:
    send(page, MESSAGE)
    page.wait_for_function(
        "() => { const s = document.querySelector('.assistant.streaming span');"
        " return s && s.textContent.length > 0; }")
    page.click("#stop")
    stopped = page.locator(".assistant[data-status]")
    stopped.wait_for()
    assert stopped.get_attribute("data-status") == "stopped"
    text = stopped.locator("span").text_content()
    full = offline_reply([{"role": "user", "content": MESSAGE}])
    assert full.startswith(text)
    assert text != full
    page.reload()
    page.locator(".assistant").first.wait_for()
    assert page.locator(".assistant span").all_text_contents() == [text]
