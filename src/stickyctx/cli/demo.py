"""``stickyctx demo``: the example chat app on the embedded store, one command, no services.

Without ``STICKYCTX_SECRET_KEYS`` it runs in development mode (``STICKYCTX_DEV=1``: a random
signing key, cookies without ``Secure`` so that plain ``http://`` works).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Literal

from ._types import Subparsers, plain

__all__ = ["find_example", "load_example", "next_steps"]

Example = Literal["fastapi", "flask"]
_PACKAGE = Path(__file__).resolve().parent.parent


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("demo", help="run the example chat app (embedded store, no services)",
                            description=plain(__doc__))
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--flask", action="store_true",
                        help="serve the Flask example instead of the FastAPI one")
    parser.set_defaults(run=run)


def find_example(name: Example) -> Path:
    """The example's ``app.py``: shipped in the wheel first, else the source checkout's."""
    for root in (_PACKAGE / "_examples", _PACKAGE.parent.parent / "examples"):
        path = root / name / "app.py"
        if path.is_file():
            return path
    raise FileNotFoundError(f"the {name} example is not installed with this copy of stickyctx")


def load_example(name: Example) -> Any:
    """Import the example's module from its file (afresh each call) and return its ``app``."""
    path = find_example(name)
    module_name = f"stickyctx_example_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has both
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module.app


def next_steps(name: Example, url: str) -> str:
    """What the demo prints at startup: where it runs, and what to try next."""
    return f"""stickyctx demo: the {name} example chat on {url}/ (Ctrl+C to stop)

Try next:
  * open {url}/ and chat; tell it "my name is Ada" and it remembers, reload and it still does
  * from a terminal, a client without cookies (the session travels in a header):
      curl -si {url}/chat -H 'X-Stickyctx-Session: new' \\
           -H 'Content-Type: application/json' -d '{{"message": "hello"}}'
    then send the X-Stickyctx-Session value it returns instead of "new"
  * {url}/history shows the stored history, {url}/healthz the node and its store
  * several nodes and failover need Redis: see docs/deployment.md
    (STICKYCTX_STORE_URL=redis://..., STICKYCTX_NODES, STICKYCTX_HASH_KEY)
"""


def run(args: argparse.Namespace) -> int:
    if not os.environ.get("STICKYCTX_SECRET_KEYS", "").strip():
        os.environ["STICKYCTX_DEV"] = "1"
    name: Example = "flask" if args.flask else "fastapi"
    try:
        import uvicorn

        app = load_example(name)
        if name == "flask":
            from a2wsgi import WSGIMiddleware

            app = WSGIMiddleware(app)
    except ImportError as exc:
        print(f"stickyctx demo: {exc.name or exc} is missing: pip install "
              "'stickyctx[fastapi,flask]'", file=sys.stderr)
        return 1
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(next_steps(name, f"http://{host}:{args.port}"), flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
