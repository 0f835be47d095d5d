"""Every unusable token starts a fresh session with a 200, never an error and never a store read
of the id it names, on both edges and both transports (cookie and ``X-Stickyctx-Session``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer

from stickyctx.core.tokens import MAX_TOKEN_BYTES

from ..conftest import KEY_A, KEY_B, FakeClock
from ..edges import EDGES, Browser, Edge, make_edge

SALT = "stickyctx.session.v1"  # the token format; test_forged_tokens_are_shaped_right guards it


def forge(payload: dict[str, Any], *, key: str = KEY_A, salt: str = SALT) -> str:
    """A token signed the way the package signs, with any key, salt and payload."""
    serializer = URLSafeTimedSerializer(key, salt=salt,
                                        signer_kwargs={"digest_method": hashlib.sha256})
    token = serializer.dumps(payload)
    assert isinstance(token, str)
    return token


@dataclass
class Live:
    """A live conversation with one stored turn, and what a test may forge from it."""

    edge: Edge
    token: str
    session_id: str
    created: int

    def claims(self, **changes: Any) -> dict[str, Any]:
        return {"v": 1, "s": self.session_id, "o": "n1", "c": self.created, **changes}


@pytest.fixture(params=EDGES)
def live(request: pytest.FixtureRequest, clock: FakeClock) -> Live:
    edge = make_edge(request.param, clock=clock)
    browser = Browser(edge)
    reply = browser.chat("a secret")
    assert reply.status == 200
    edge.store.calls.clear()
    return Live(edge, browser.jar["stickyctx"], reply.json()["session_id"], int(clock()))


def flip_signature(token: str) -> str:
    """Change one signature character whose every bit counts (the last one carries padding
    bits that base64 decoders ignore, so changing it may leave the signature as it was).
    """
    c = token[-5]
    return token[:-5] + ("A" if c != "A" else "Q") + token[-4:]


def oversized(live: Live) -> str:
    """A correctly signed token, longer than any token the package accepts (refused for its
    size before anything else is looked at)."""
    pad = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(200))
    token = forge(live.claims(pad=pad))
    assert len(token) > MAX_TOKEN_BYTES
    return token


def expire(live: Live) -> str:
    live.edge.clock.advance(live.edge.settings.absolute_ttl + 1)
    return live.token


BAD: list[Any] = [
    pytest.param(lambda live: flip_signature(live.token), id="tampered-signature"),
    pytest.param(lambda live: ("e" if live.token[0] != "e" else "f") + live.token[1:],
                 id="tampered-payload"),
    pytest.param(lambda live: live.token[: len(live.token) // 2], id="truncated-half"),
    pytest.param(lambda live: live.token[:-2], id="truncated-end"),
    pytest.param(lambda live: live.token.rpartition(".")[0], id="signature-removed"),
    pytest.param(expire, id="expired"),
    pytest.param(lambda live: forge(live.claims(), salt="another.salt"), id="another-salt"),
    pytest.param(lambda live: forge(live.claims(), key=KEY_B), id="unknown-key"),
    pytest.param(oversized, id="oversized"),
    pytest.param(lambda live: "x" * (MAX_TOKEN_BYTES + 1), id="oversized-garbage"),
    pytest.param(lambda live: "!!not a token at all!!", id="garbage"),
    pytest.param(lambda live: live.token[:10] + "\u00e9\u00ff" + live.token[12:], id="non-ascii"),
    pytest.param(lambda live: "\u00e9" * 40, id="non-ascii-garbage"),
    pytest.param(lambda live: forge(live.claims(s="../../../etc/passwd")), id="path-as-id"),
    pytest.param(lambda live: forge(live.claims(s=live.session_id + "x")), id="long-id"),
    pytest.param(lambda live: forge(live.claims(s=12345)), id="number-as-id"),
    pytest.param(lambda live: forge(live.claims(s=None)), id="no-id"),
    pytest.param(lambda live: forge(live.claims(o="not a node!")), id="bad-owner"),
    pytest.param(lambda live: forge(live.claims(v=2)), id="unknown-format"),
    pytest.param(lambda live: forge(live.claims(c="yesterday")), id="bad-created"),
    pytest.param(lambda live: forge(live.claims(c=live.created + 3600)), id="created-later"),
    pytest.param(lambda live: forge(live.claims(pad="x" * 100)), id="unknown-field"),
    pytest.param(lambda live: forge(["a", "list"]), id="not-a-mapping"),
    pytest.param(lambda live: live.session_id, id="raw-session-id"),
]

TRANSPORTS = [
    pytest.param(lambda value: [("Cookie", f"stickyctx={value}; stickyctx_node=n1")],
                 id="cookie"),
    pytest.param(lambda value: [("X-Stickyctx-Session", value)], id="header"),
]

Make = Callable[[Live], str]
Send = Callable[[str], list[tuple[str, str]]]


def assert_fresh(live: Live, headers: list[tuple[str, str]]) -> None:
    edge = live.edge
    whoami = edge.request("GET", "/whoami", headers=headers)
    assert whoami.status == 200
    body = whoami.json()
    assert body["affinity"] == "new"
    assert body["session_id"] != live.session_id
    assert whoami.header("x-stickyctx-affinity") == "new"
    assert edge.store.calls == [], "an unusable token led to a store access"

    history = edge.request("GET", "/history", headers=headers)
    assert history.status == 200
    body = history.json()
    assert body["messages"] == []
    assert body["session_id"] != live.session_id
    touched = {tag for _, tag in edge.store.calls}
    # A fresh session is known to be empty: the store need not even be asked about it.
    assert touched <= {edge.tag(body["session_id"])}, "the store was asked about another id"
    if history.header("x-stickyctx-session") is None:
        assert "stickyctx" in history.cookies
    else:
        assert history.all("set-cookie") == []


@pytest.mark.parametrize("send", TRANSPORTS)
@pytest.mark.parametrize("make", BAD)
def test_an_unusable_token_starts_a_fresh_session(live: Live, make: Make, send: Send) -> None:
    assert_fresh(live, send(make(live)))


@pytest.mark.parametrize("cookie", [
    pytest.param("stickyctx={t}; stickyctx={t}", id="same-value-twice"),
    pytest.param("stickyctx={t}; stickyctx=other", id="valid-then-other"),
    pytest.param("stickyctx=other; stickyctx={t}", id="other-then-valid"),
    pytest.param('stickyctx="{t}"; stickyctx={t}', id="quoted-and-plain"),
])
def test_duplicate_session_cookies_start_a_fresh_session(live: Live, cookie: str) -> None:
    assert_fresh(live, [("Cookie", cookie.format(t=live.token))])


def test_the_live_token_is_accepted(live: Live) -> None:
    """The control for the table above: the unmodified token keeps the session."""
    for headers in ([("Cookie", f"stickyctx={live.token}")], [("X-Stickyctx-Session", live.token)]):
        body = live.edge.request("GET", "/history", headers=headers).json()
        assert (body["session_id"], body["affinity"]) == (live.session_id, "hit")
        assert [m["content"] for m in body["messages"]] == ["a secret", "echo: a secret"]


def test_forged_tokens_are_shaped_right(live: Live) -> None:
    """A token forged with the package's key, salt and format is accepted: so the forged bad
    tokens above are rejected for the one thing each of them changes, not for their shape.
    """
    token = forge(live.claims())
    assert len(token) <= MAX_TOKEN_BYTES
    body = live.edge.request("GET", "/history", headers=[("Cookie", f"stickyctx={token}")]).json()
    assert (body["session_id"], body["affinity"]) == (live.session_id, "hit")
    assert len(body["messages"]) == 2
