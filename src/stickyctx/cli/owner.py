"""``stickyctx owner TOKEN_OR_ID``: which node owns a session.

A signed token is verified with the configured keys and its claims are printed (owner, times,
which key verified it). A bare session id gets the owner that placement would pick among the
configured nodes (plain rendezvous hashing: the bounded-load rule may pick another node when the
live loads are uneven).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

from ..core.ids import is_valid_session_id
from ..core.nodes import NodeSpec
from ..core.placement import place
from ..core.tokens import TokenCodec
from ..settings import Settings
from ._types import Subparsers, plain


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("owner", help="the owning node of a session token or id",
                            description=plain(__doc__),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("token_or_id", metavar="TOKEN_OR_ID",
                        help="a session cookie / X-Stickyctx-Session value, or a session id")
    parser.set_defaults(run=run)


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    nodes = settings.nodes or (NodeSpec(settings.node_id),)
    node_ids = [n.id for n in nodes]
    value = args.token_or_id.strip()
    info: dict[str, Any]
    if is_valid_session_id(value):
        info = {"kind": "session id", "owner": place(value, nodes), "nodes": node_ids}
        print(json.dumps(info, indent=2))
        return 0
    keys = settings.keys
    claims = TokenCodec([k.reveal() for k in keys], max_age=settings.absolute_ttl).verify(value)
    if claims is None:
        print("stickyctx: not a valid session token for the configured keys (tampered, expired, "
              "or signed with a key that is not in STICKYCTX_SECRET_KEYS)", file=sys.stderr)
        return 1
    verified_by = f"key {claims.key_index + 1} of {len(keys)}"
    verified_by += " (newest)" if claims.key_index == 0 else " (older: re-signed on next response)"
    info = {
        "kind": "token",
        "session_id": claims.session_id,
        "owner": claims.owner,
        "owner_listed": claims.owner in node_ids,
        "created": _time(claims.created),
        "signed_at": _time(claims.signed_at),
        "expires_by": _time(claims.created + settings.absolute_ttl),
        "verified_by": verified_by,
    }
    if claims.owner not in node_ids:
        # What the middleware does on the next request: fail over to a live node.
        info["failover_owner"] = place(claims.session_id, nodes)
    print(json.dumps(info, indent=2))
    return 0
