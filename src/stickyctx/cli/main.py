"""``stickyctx``: demo, config, doctor, owner (more subcommands arrive with their features)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stickyctx", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("config", help="print the effective settings, secrets masked")
    args = parser.parse_args(argv)
    if args.command == "config":
        import json

        from ..settings import Settings

        print(json.dumps(Settings.from_env().masked(), indent=2, default=str))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
