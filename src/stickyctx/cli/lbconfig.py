"""``stickyctx lb-config haproxy|nginx|envoy``: a load-balancer configuration that routes on the
routing cookie, from ``STICKYCTX_NODES`` (``id=host:port``, comma-separated).

Written to standard output (or ``--output FILE``). The cookie names follow
``STICKYCTX_ROUTE_COOKIE`` and ``STICKYCTX_COOKIE_NAME``. Nothing else is read: no signing key
and no node id are needed, so it runs anywhere, not only on a node. See docs/deployment.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..core.nodes import parse_nodes
from ..errors import ConfigError
from ..settings import Settings
from ..tools import balancers as lbconfig
from ._types import Subparsers, plain

_GENERATORS = {"haproxy": lbconfig.haproxy, "nginx": lbconfig.nginx, "envoy": lbconfig.envoy}


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("lb-config", help="a load-balancer configuration routing on the "
                            "routing cookie", description=plain(__doc__),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=sorted(_GENERATORS))
    parser.add_argument("--listen", default="0.0.0.0:8080", metavar="HOST:PORT",
                        help="where the load balancer listens (default 0.0.0.0:8080)")
    parser.add_argument("--health-path", default="/healthz",
                        help="the app's health check path (default /healthz)")
    parser.add_argument("--output", "-o", type=Path, help="write to this file")
    parser.set_defaults(run=run)


# The variables this command reads; the settings' own parsers and checks apply to them.
_READ = ("STICKYCTX_NODES", "STICKYCTX_COOKIE_NAME", "STICKYCTX_ROUTE_COOKIE")
_UNUSED_KEY = "lb-config signs nothing; this key only completes the settings"


def _settings() -> Settings:
    env = {name: os.environ[name] for name in _READ if name in os.environ}
    try:
        listed = parse_nodes(env.get("STICKYCTX_NODES", ""))
    except ValueError as exc:
        raise ConfigError("STICKYCTX_NODES", str(exc)) from None
    env["STICKYCTX_SECRET_KEYS"] = _UNUSED_KEY
    if listed:
        env["STICKYCTX_NODE_ID"] = listed[0].id  # (settings require the node to be listed)
    return Settings.from_env(env)


def run(args: argparse.Namespace) -> int:
    settings = _settings()
    options = lbconfig.LBOptions(listen=args.listen, route_cookie=settings.route_cookie,
                                 session_cookie=settings.cookie_name,
                                 health_path=args.health_path)
    try:
        text = _GENERATORS[args.kind](settings.nodes, options)
    except ValueError as exc:
        raise ConfigError("STICKYCTX_NODES", str(exc)) from None
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0
