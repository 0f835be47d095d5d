"""``stickyctx config``: the effective settings as JSON, every secret masked."""

from __future__ import annotations

import argparse
import json

from ..settings import Settings
from ._types import Subparsers, plain


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("config", help="print the effective settings (secrets masked)",
                            description=plain(__doc__))
    parser.set_defaults(run=run)


def run(_args: argparse.Namespace) -> int:
    print(json.dumps(Settings.from_env().masked(), indent=2, default=str))
    return 0
