"""The docs stay true: every variable, header, span, attribute and metric is documented."""

from __future__ import annotations

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
