"""Reading ``Cookie`` headers and writing ``Set-Cookie`` values."""

from __future__ import annotations

import pytest

from stickyctx.core.cookies import (
    AMBIGUOUS,
    CookieSpec,
    development_host,
    read_cookie,
    read_cookies,
    set_cookie_header,
)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param([], None, id="no-header"),
        pytest.param(["a=1; b=2"], None, id="absent"),
        pytest.param(["stickyctx=tok"], "tok", id="alone"),
        pytest.param(["a=1; stickyctx=tok; b=2"], "tok", id="among-others"),
        pytest.param(["a=1;stickyctx=tok;b=2"], "tok", id="no-spaces"),
        pytest.param(["stickyctx = tok "], "tok", id="spaces-around"),
        pytest.param(['stickyctx="tok"'], "tok", id="quoted"),
        pytest.param(["stickyctx="], "", id="empty-value"),
        pytest.param(["stickyctx"], None, id="name-without-value"),
        pytest.param(["stickyctx=a=b"], "a=b", id="equals-in-value"),
        pytest.param(["xstickyctx=evil"], None, id="longer-name-only"),
        pytest.param(["stickyctx_node=n2"], None, id="prefixed-name-only"),
        pytest.param(["xstickyctx=evil; stickyctx=good"], "good", id="longer-name-first"),
        pytest.param(["stickyctx=good; stickyctx_node=n2"], "good", id="route-cookie-after"),
        pytest.param(["a=1", "stickyctx=tok"], "tok", id="second-header"),
        pytest.param(["stickyctx=one; stickyctx=two"], AMBIGUOUS, id="twice-in-one-header"),
        pytest.param(["stickyctx=one", "stickyctx=two"], AMBIGUOUS, id="across-two-headers"),
        pytest.param(["stickyctx=same; stickyctx=same"], AMBIGUOUS, id="twice-same-value"),
        pytest.param(['stickyctx=one; stickyctx="one"'], AMBIGUOUS, id="twice-once-quoted"),
    ],
)
def test_read_cookie(headers: list[str], expected: object) -> None:
    assert read_cookie(headers, "stickyctx") == expected


def test_the_route_cookie_is_read_by_its_own_name() -> None:
    headers = ["stickyctx=tok; stickyctx_node=n2"]
    assert read_cookie(headers, "stickyctx_node") == "n2"
    assert read_cookie(headers, "stickyctx") == "tok"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(["stickyctx=tok; stickyctx_node=n2"], ["tok", "n2"], id="both"),
        pytest.param(["stickyctx_node=n2", "stickyctx=tok"], ["tok", "n2"], id="two-headers"),
        pytest.param(["stickyctx_node=n2"], [None, "n2"], id="route-only"),
        pytest.param(["stickyctx=a; stickyctx_node=n2; stickyctx=b"], [AMBIGUOUS, "n2"],
                     id="session-twice"),
        pytest.param(["stickyctx=a; stickyctx_node=n1; stickyctx_node=n1"], ["a", AMBIGUOUS],
                     id="route-twice"),
        pytest.param(["stickyctx=1", "stickyctx=2", "stickyctx=3"], [AMBIGUOUS, None],
                     id="thrice-stays-ambiguous"),
    ],
)
def test_read_cookies_reads_each_name_in_one_pass(headers: list[str],
                                                  expected: list[object]) -> None:
    assert read_cookies(headers, ("stickyctx", "stickyctx_node")) == expected
    for name, value in zip(("stickyctx", "stickyctx_node"), expected, strict=True):
        assert read_cookie(headers, name) == value


def test_ambiguous_is_not_a_string() -> None:
    assert not isinstance(AMBIGUOUS, str)
    assert repr(AMBIGUOUS) == "AMBIGUOUS"


def attributes(header: str) -> tuple[str, dict[str, str]]:
    first, *rest = header.split("; ")
    attrs: dict[str, str] = {}
    for part in rest:
        name, _, value = part.partition("=")
        assert name not in attrs, f"{name} appears twice in {header!r}"
        attrs[name] = value
    return first, attrs


def test_a_session_cookie_has_every_protective_attribute() -> None:
    header = set_cookie_header("stickyctx", "tok.en", 3600, CookieSpec(secure=True))
    first, attrs = attributes(header)
    assert first == "stickyctx=tok.en"
    assert attrs == {"Path": "/", "Max-Age": "3600", "HttpOnly": "", "Secure": "",
                     "SameSite": "Lax"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(CookieSpec(secure=False), {"Path": "/", "HttpOnly": "", "SameSite": "Lax"},
                     id="insecure"),
        pytest.param(CookieSpec(secure=True, samesite="strict"),
                     {"Path": "/", "HttpOnly": "", "Secure": "", "SameSite": "Strict"},
                     id="strict"),
        pytest.param(CookieSpec(secure=True, samesite="none"),
                     {"Path": "/", "HttpOnly": "", "Secure": "", "SameSite": "None"},
                     id="samesite-none"),
        pytest.param(CookieSpec(secure=True, domain="example.com", path="/app"),
                     {"Path": "/app", "Domain": "example.com", "HttpOnly": "", "Secure": "",
                      "SameSite": "Lax"},
                     id="domain-and-path"),
    ],
)
def test_cookie_attributes_follow_the_spec(spec: CookieSpec, expected: dict[str, str]) -> None:
    _, attrs = attributes(spec.header("sid", "v", 60))
    assert attrs.pop("Max-Age") == "60"
    assert attrs == expected
    assert spec.header("sid", "v", 60) == set_cookie_header("sid", "v", 60, spec)


@pytest.mark.parametrize("max_age", [0, -5])
def test_a_cookie_without_lifetime_left_expires_at_once(max_age: int) -> None:
    first, attrs = attributes(set_cookie_header("stickyctx", "", max_age, CookieSpec(True)))
    assert first == "stickyctx="
    assert attrs["Max-Age"] == "0"
    assert attrs["Expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert "HttpOnly" in attrs
    assert "Secure" in attrs


def test_a_live_cookie_has_no_expires_attribute() -> None:
    _, attrs = attributes(set_cookie_header("stickyctx", "x", 10, CookieSpec(True)))
    assert "Expires" not in attrs


@pytest.mark.parametrize(("host", "development"), [
    pytest.param("testserver", True, id="test-client"),
    pytest.param("localhost:8000", True, id="localhost"),
    pytest.param("127.0.0.1:8000", True, id="loopback"),
    pytest.param("[::1]:8000", True, id="loopback-v6"),
    pytest.param("192.168.1.20:8000", True, id="lan"),
    pytest.param("10.1.2.3", True, id="private"),
    pytest.param("laptop", True, id="machine-name"),
    pytest.param("chat.local", True, id="mdns"),
    pytest.param("chat.example.com", False, id="public-name"),
    pytest.param("93.184.216.34:443", False, id="public-address"),
])
def test_development_hosts(host: str, development: bool) -> None:
    assert development_host(host) is development


def test_partitioned_and_browser_session_attributes() -> None:
    spec = CookieSpec(secure=True, samesite="none", partitioned=True, persistent=False)
    assert set_cookie_header("a", "b", 100, spec) == (
        "a=b; Path=/; HttpOnly; Secure; SameSite=None; Partitioned")
    assert set_cookie_header("a", "", 0, spec) == (
        "a=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; "
        "SameSite=None; Partitioned")
