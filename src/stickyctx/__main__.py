"""``python -m stickyctx``: the same as the ``stickyctx`` command."""

import sys

from .cli import main

sys.exit(main())
