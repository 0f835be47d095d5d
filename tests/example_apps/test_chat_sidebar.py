"""The chat page's sidebar of conversations, in a real browser (Chromium driven by Playwright)
against the FastAPI example in a real uvicorn process."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.conftest import KEY_A, AppServer, require_binary

ENV = {"STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_NODE_ID": "n1",
       "STICKYCTX_COOKIE_SECURE": "0"}


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.needs_binary("chromium")
def test_a_signed_in_user_keeps_several_conversations_and_their_memory(
    app_server: Callable[..., AppServer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    chromium = require_binary("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    for name in list(os.environ):
        if name.startswith(("STICKYCTX_", "OPENAI_")):
            monkeypatch.delenv(name)
    server = app_server("examples.fastapi.app:app", ENV)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(server.url + "/")
            expect = sync_api.expect
            expect(page.locator("#signin")).to_be_visible()

            page.fill("#user", "ada")
            page.click("#signin button")
            expect(page.locator("#who")).to_contain_text("ada")
            page.click("#newconv")
            expect(page.locator("#convlist li")).to_have_count(1)
            page.fill("#message", "my name is Ada")
            page.press("#message", "Enter")
            expect(page.locator(".assistant").last).to_contain_text("Nice to meet you, Ada")
            expect(page.locator("#convlist li").first).to_contain_text("my name is Ada")

            page.click("#newconv")
            expect(page.locator("#convlist li")).to_have_count(2)
            expect(page.locator("#log .msg")).to_have_count(0)
            page.fill("#message", "what is my name?")
            page.press("#message", "Enter")
            expect(page.locator(".assistant").last).to_contain_text("I remember your name: Ada")
            expect(page.locator(".assistant").last).to_contain_text("message 1 of")

            # Resume the first conversation: its own history comes back.
            page.locator("#convlist li", has_text="my name is Ada").click()
            expect(page.locator("#log .user").first).to_have_text("my name is Ada")
            expect(page.locator("#log .msg")).to_have_count(2)

            # Signed out, the page is the anonymous chat again.
            page.click("#signout")
            expect(page.locator("#signin")).to_be_visible()
            page.fill("#message", "hello anonymous")
            page.press("#message", "Enter")
            expect(page.locator(".assistant").last).to_contain_text("message 1 of")
        finally:
            browser.close()
