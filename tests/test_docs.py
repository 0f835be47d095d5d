"""The docs stay true: every variable, header, span, attribute and metric is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stickyctx.core import flow
from stickyctx.settings import ENV_VARIABLES

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("variable", ENV_VARIABLES)
def test_every_variable_is_in_the_configuration_table(variable: str) -> None:
    rows = [line for line in (DOCS / "configuration.md").read_text().splitlines()
            if line.startswith(f"| `{variable}`")]
    assert len(rows) == 1, f"{variable} must have exactly one row in docs/configuration.md"


@pytest.mark.parametrize("header", [
    flow.SESSION_HEADER, flow.NODE_HEADER, flow.AFFINITY_HEADER, flow.ENDPOINT_HEADER,
    flow.OWNER_ANNOTATION, flow.AFFINITY_ANNOTATION,
])
def test_every_header_is_documented(header: str) -> None:
    text = (DOCS / "headers-and-cookies.md").read_text().lower()
    assert header in text


def _commands() -> list[str]:
    from stickyctx.cli.main import build_parser

    parser = build_parser()
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        return sorted(action.choices)  # type: ignore[arg-type]
    raise AssertionError("no subcommands")


@pytest.mark.parametrize("command", _commands())
def test_every_command_is_in_the_cli_page(command: str) -> None:
    rows = [line for line in (DOCS / "cli.md").read_text().splitlines()
            if line.startswith(f"| `stickyctx {command}")]
    assert len(rows) == 1, f"stickyctx {command} must have exactly one row in docs/cli.md"


_PAGES = [*sorted(DOCS.glob("*.md")), DOCS.parent / "README.md",
          DOCS.parent / "examples" / "README.md"]
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _node_setups() -> list[tuple[str, str]]:
    """Code blocks that configure app nodes of a shared deployment: they set a node id and
    either the node list or a Redis store."""
    found = []
    for page in _PAGES:
        for block in _FENCE.findall(page.read_text()):
            if "STICKYCTX_NODE_ID" in block and (
                    "STICKYCTX_NODES" in block or re.search(r"STORE_URL\W+\s*(value: )?redis",
                                                             block)):
                found.append((page.name, block))
    return found


def test_the_multi_node_examples_are_found() -> None:
    pages = {page for page, _ in _node_setups()}
    assert {"deployment.md", "README.md"} <= pages  # the Kubernetes manifest, the examples' one


@pytest.mark.parametrize(("page", "block"), _node_setups())
def test_every_multi_node_example_sets_the_hash_key(page: str, block: str) -> None:
    assert "STICKYCTX_HASH_KEY" in block, f"{page}: a multi-node example without the hash key"
