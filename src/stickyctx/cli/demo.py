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

from ._types import Subparsers

__all__ = ["find_example", "load_example"]

Example = Literal["fastapi", "flask"]
_PACKAGE = Path(__file__).resolve().parent.parent


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("demo", help="run the example chat app (embedded store, no services)",
                            description=__doc__)
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
    print(f"stickyctx demo: the {name} example chat on http://{host}:{args.port}/ "
          "(Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
