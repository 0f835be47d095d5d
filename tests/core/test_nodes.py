"""Node ids and the ``id=host:port`` membership syntax."""

from __future__ import annotations

import pytest

from stickyctx.core.nodes import NodeSpec, is_valid_node_id, parse_nodes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", (), id="empty"),
        pytest.param(" , ,", (), id="only-commas"),
        pytest.param("n1", (NodeSpec("n1"),), id="one"),
        pytest.param("a, b=10.0.0.2:8000 ,c=host.internal:80,",
                     (NodeSpec("a"), NodeSpec("b", "10.0.0.2:8000"),
                      NodeSpec("c", "host.internal:80")), id="mixed"),
        pytest.param("v6=[::1]:8000", (NodeSpec("v6", "[::1]:8000"),), id="ipv6"),
        pytest.param("web-1.eu_west=h:65535", (NodeSpec("web-1.eu_west", "h:65535"),),
                     id="punctuation-and-top-port"),
        pytest.param("n" * 63, (NodeSpec("n" * 63),), id="longest-id"),
    ],
)
def test_parse_nodes(text: str, expected: tuple[NodeSpec, ...]) -> None:
    assert parse_nodes(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("a b", "node id", id="space-in-id"),
        pytest.param("-a", "node id", id="leading-dash"),
        pytest.param("a;b", "node id", id="semicolon"),
        pytest.param("é", "node id", id="non-ascii"),
        pytest.param("n" * 64, "node id", id="too-long"),
        pytest.param("=h:80", "node id", id="no-id"),
        pytest.param("a,a", "twice", id="duplicate"),
        pytest.param("a=host", "address", id="no-port"),
        pytest.param("a=host:0", "address", id="port-zero"),
        pytest.param("a=host:65536", "address", id="port-too-big"),
        pytest.param("a=:80", "address", id="no-host"),
        pytest.param("a=", "address", id="empty-address"),
        pytest.param("a=h:80/x", "address", id="path-after-port"),
    ],
)
def test_bad_membership_is_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_nodes(text)


def test_errors_name_the_entry_not_its_text() -> None:
    with pytest.raises(ValueError, match="entry 3") as caught:
        parse_nodes("n1,n2,sk-LEAK-secret!")
    assert "sk-LEAK-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("n1", True), ("N.1_a-b", True), ("1", True), ("", False), ("_a", False),
     (".a", False), ("a:b", False), ("a/b", False), ("a\n", False)],
)
def test_is_valid_node_id(value: str, ok: bool) -> None:
    assert is_valid_node_id(value) is ok
