"""What the example chat apps share: the HTML page and the reply function.

``reply`` / ``areply`` answer from a deterministic offline function, or from an OpenAI-compatible
chat-completions backend when ``OPENAI_BASE_URL`` or ``OPENAI_API_KEY`` is set (model from
``STICKYCTX_DEMO_MODEL``). Only the standard library is used; nothing happens at import.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .stream_page import STREAM_SCRIPT

__all__ = [
    "CHAT_PAGE",
    "DEFAULT_MODEL",
    "Backend",
    "BackendError",
    "areply",
    "offline_reply",
    "reply",
]

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT = 30.0

# Offline replies ----------------------------------------------------------------------------

_NAME = re.compile(r"\b(?:my name is|call me)\s+([^\W\d_][\w'-]{0,39})", re.IGNORECASE)


def _text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content
                        if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


def _quote(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def _last_name(said: Sequence[str]) -> str | None:
    """The name given last in ``said``. The phrases are found with ``str.find`` on the lowered
    text and only checked by ``_NAME`` where they occur: scanning a long window with the
    case-insensitive expression itself cost ~50 us per 1,000 characters, most of a reply."""
    text = "\0".join(said)  # NUL is neither a space nor a name character: no match spans two
    if not text.isascii():  # lowering is exactly the expression's case rule only in ASCII
        name, found = None, _NAME.search(text)
        while found:  # every start, overlapping ones too (as the phrases are found below)
            name, found = found.group(1), _NAME.search(text, found.start() + 1)
        return name
    low = text.lower()
    last: tuple[int, str] | None = None
    for phrase in _PHRASES:
        at = low.rfind(phrase)
        while at >= 0 and (last is None or at > last[0]):
            found = _NAME.match(text, at)
            if found:
                last = (at, found.group(1))
                break
            at = low.rfind(phrase, 0, at)
    return last[1] if last else None


_PHRASES = ("my name is", "call me")  # what ``_NAME`` starts with, lowered
_REMEMBERED = re.compile(r"^- name: (\S+)$", re.MULTILINE)


def _remembered_name(messages: Sequence[Mapping[str, Any]]) -> str | None:
    for m in messages:
        if m.get("role") == "system":
            found = _REMEMBERED.search(_text(m.get("content")))
            if found:
                return found.group(1)
    return None


def offline_reply(messages: Sequence[Mapping[str, Any]]) -> str:
    """A deterministic reply built only from ``messages`` (the window the model would get).

    It echoes the last user message, counts the user messages, quotes the one before, and
    remembers the name given last ("my name is Ada"): proof that the context came along.
    """
    said = [c if type(c) is str else _text(c)  # plain text without a call per message
            for m in messages if m.get("role") == "user" for c in (m.get("content"),)]
    if not said:
        return "Hello! Say something; tell me your name and I will remember it."
    name = _last_name(said) or _remembered_name(messages)  # else the user's memory (``accounts``)
    just_named = _NAME.search(said[-1]) is not None
    parts = [f"Nice to meet you, {name}!"] if just_named else []
    parts.append(f'You said "{_quote(said[-1], 120)}".')
    count = f"That was message {len(said)} of our conversation"
    if len(said) > 1:
        count += f'; before that you said "{_quote(said[-2], 60)}"'
    parts.append(count + ".")
    if name is None:
        parts.append('Tell me "my name is ..." and I will remember it.')
    elif not just_named:
        parts.append(f"I remember your name: {name}.")
    return " ".join(parts)


# An OpenAI-compatible backend ---------------------------------------------------------------


class BackendError(RuntimeError):
    """The chat backend failed: unreachable, too slow, an error status or an unusable answer."""


@dataclass(frozen=True)
class Backend:
    """An OpenAI-compatible ``/chat/completions`` endpoint."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    model: str = DEFAULT_MODEL
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Backend | None:
        """The backend the environment configures, or ``None`` (then replies are offline)."""
        env = os.environ if environ is None else environ
        base_url = env.get("OPENAI_BASE_URL", "").strip()
        api_key = env.get("OPENAI_API_KEY", "").strip()
        if not base_url and not api_key:
            return None
        model = env.get("STICKYCTX_DEMO_MODEL", "").strip() or DEFAULT_MODEL
        return cls(base_url or DEFAULT_BASE_URL, api_key or None, model)

    def complete(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """The assistant's answer to ``messages``; ``BackendError`` on any failure."""
        url = self.base_url.rstrip("/") + "/chat/completions"
        if not url.startswith(("http://", "https://")):
            raise BackendError("OPENAI_BASE_URL must start with http:// or https://")
        payload = {
            "model": self.model,
            # Only what the chat API knows: stored messages may carry the app's own fields.
            "messages": [{k: m[k] for k in ("role", "content", "name") if k in m}
                         for m in messages],
        }
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            url, data=json.dumps(payload).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise BackendError(f"the chat backend answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackendError(f"the chat backend is unreachable: {reason}") from None
        try:
            content = json.loads(body)["choices"][0]["message"]["content"]
        except (ValueError, LookupError, TypeError):
            raise BackendError("the chat backend's answer is not a chat completion") from None
        if not isinstance(content, str):
            raise BackendError("the chat backend's answer has no text content")
        return content


def reply(messages: Sequence[Mapping[str, Any]], *,
          environ: Mapping[str, str] | None = None) -> str:
    """The backend's answer when one is configured, else ``offline_reply(messages)``."""
    backend = Backend.from_env(environ)
    return offline_reply(messages) if backend is None else backend.complete(messages)


async def areply(messages: Sequence[Mapping[str, Any]], *,
                 environ: Mapping[str, str] | None = None) -> str:
    """``reply`` for async apps: the blocking HTTP call runs in a worker thread."""
    backend = Backend.from_env(environ)
    if backend is None:
        return offline_reply(messages)
    return await asyncio.to_thread(backend.complete, messages)


# The chat page ------------------------------------------------------------------------------

CHAT_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stickyctx chat</title>
<style>
  body { font: 16px/1.4 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto;
         padding: 0 1rem; color: #222; }
  header { display: flex; justify-content: space-between; align-items: center; }
  #log { border: 1px solid #ccc; border-radius: 6px; padding: .5rem 1rem; min-height: 12rem; }
  .msg { margin: .6rem 0; white-space: pre-wrap; }
  .user { text-align: right; }
  .user span { background: #e4efff; }
  .assistant span { background: #f1f1f1; }
  .msg span { display: inline-block; padding: .35rem .7rem; border-radius: 10px; }
  .meta { display: block; font-size: 12px; color: #777; }
  form { display: flex; gap: .5rem; margin-top: 1rem; }
  input { flex: 1; padding: .5rem; font: inherit; }
  #error { color: #b00020; }
</style>
</head>
<body>
<header>
  <h1>stickyctx chat</h1>
  <button id="reset" type="button">New conversation</button>
</header>
<div id="log" aria-live="polite"></div>
<form id="form">
  <input id="message" autocomplete="off" placeholder="Say something, e.g. my name is Ada" required>
  <button type="submit">Send</button>
  <button id="stop" type="button" disabled>Stop</button>
</form>
<p id="error"></p>
<script>
const log = document.getElementById("log");
const input = document.getElementById("message");
const error = document.getElementById("error");

function show(role, text, meta) {
  const row = document.createElement("div");
  row.className = "msg " + role;
  const bubble = document.createElement("span");
  bubble.textContent = text;
  row.appendChild(bubble);
  if (meta) {
    const small = document.createElement("small");
    small.className = "meta";
    small.textContent = meta;
    row.appendChild(small);
  }
  log.appendChild(row);
  row.scrollIntoView();
}

async function call(method, path, body) {
  const options = {method, headers: {"Accept": "application/json"}};
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) {
    throw new Error(response.status + ": " + JSON.stringify(data.detail || data));
  }
  return data;
}

async function loadHistory() {
  log.textContent = "";
  const data = await call("GET", "/history");
  for (const m of data.messages) {
    show(m.role, typeof m.content === "string" ? m.content : JSON.stringify(m.content));
  }
}

document.getElementById("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  error.textContent = "";
  show("user", text);
  try {
    await follow(await fetch("/chat/stream", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({message: text})}));
  } catch (e) {
    error.textContent = e.message;
  }
});

document.getElementById("reset").addEventListener("click", async () => {
  error.textContent = "";
  try {
    await call("DELETE", "/session");
    await loadHistory();
  } catch (e) {
    error.textContent = e.message;
  }
});

loadHistory().then(resumeAfterReload).catch((e) => { error.textContent = e.message; });
</script>
</body>
</html>
""".replace("<script>", STREAM_SCRIPT + "<script>", 1)  # the main script uses it


# The sidebar of conversations for signed-in users (kept in its own module) ------------------

from .sidebar import with_sidebar  # noqa: E402 - the page it extends is defined above

CHAT_PAGE = with_sidebar(CHAT_PAGE)
