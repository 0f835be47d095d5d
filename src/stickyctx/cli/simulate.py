"""``stickyctx simulate --nodes N --sessions M``: placement quality from the real placement code.

Places M sessions on N nodes with bounded loads (``--epsilon``, default
``STICKYCTX_BALANCE_FACTOR``), then lets one node leave and one join, and prints max/avg load,
the share of sessions moved against the 1/N minimum, the spread of the failed node's sessions
over the survivors, and the cost of a placement and of the affinity check on a hit.

A placement scores every node, so a run costs about sessions x nodes scores. At hundreds or
thousands of nodes, ``--sample S`` estimates the join's two shares (what re-hashing every
request would move, the new node's share of later sessions) on S sessions; every session is
still placed, and every one is decided again when a node leaves and when one joins.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tqdm import tqdm

from ..errors import ConfigError
from ..settings import Settings
from ..tools.simulation import simulate, steps
from ._types import Subparsers, plain


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("simulate", help="placement quality: balance and movement",
                            description=plain(__doc__),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--sessions", type=int, required=True)
    parser.add_argument("--epsilon", type=float, default=None,
                        help="bounded-load factor (default STICKYCTX_BALANCE_FACTOR or 0.25)")
    parser.add_argument("--sample", type=int, default=None, metavar="S",
                        help="estimate the join's re-hash share and the new node's share on S "
                             "sessions instead of all of them (for hundreds of nodes or more)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="a progress bar on standard error (default: when it is a terminal)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    epsilon = args.epsilon
    if epsilon is None:
        raw = os.environ.get("STICKYCTX_BALANCE_FACTOR", "").strip()
        try:
            epsilon = float(raw) if raw else Settings.balance_factor
        except ValueError:
            raise ConfigError("STICKYCTX_BALANCE_FACTOR", "expected a number") from None
    if args.nodes < 2 or args.sessions < args.nodes or epsilon <= 0:
        print("stickyctx simulate: need --nodes >= 2, --sessions >= --nodes, epsilon > 0")
        return 2
    if args.sample is not None and args.sample < 1:
        print("stickyctx simulate: need --sample >= 1")
        return 2
    # tqdm: disable=None turns the bar off when standard error is not a terminal.
    with tqdm(total=steps(args.sessions, args.sample), desc="simulating", unit=" placements",
              unit_scale=True, file=sys.stderr, leave=False,
              disable=None if args.progress is None else not args.progress) as bar:
        result = simulate(args.nodes, args.sessions, epsilon, progress=bar.update,
                          sample=args.sample)
    if args.json:
        print(json.dumps({k: getattr(result, k) for k in result.__dataclass_fields__}))
        return 0
    width = max(len(name) for name, _ in result.rows())
    for name, value in result.rows():
        print(f"{name.ljust(width)}  {value}")
    return 0
