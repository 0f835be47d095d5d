"""``stickyctx``: the command line. Each command family lives in its own module.

Every command turns a configuration error into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import ConfigError
from . import config, db, demo, doctor, lbconfig, owner, session, simulate

__all__ = ["build_parser", "main"]

# Each module adds its subcommand with ``register(subparsers)`` and sets ``run`` as a default.
_COMMANDS = (demo, config, doctor, owner, session, simulate, lbconfig, db)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stickyctx",
        description="Sticky, durable, token-budgeted context for multi-turn LLM chat apps. "
                    "Configured by STICKYCTX_* environment variables.",
    )
    parser.add_argument("--version", action="version", version=f"stickyctx {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except ConfigError as exc:
        print(f"stickyctx: configuration error: {exc}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
