"""Sans-I/O operations: logic written once as generators, driven sync (WSGI) or async (ASGI).

An operation (``Op[T]``) is a generator that yields the I/O it needs as typed steps and
receives each result back; its return value is the operation's result. Logic composes
operations with ``yield from``, so mypy checks every call (a store operation is a method
returning ``Op[T]``), and only the two drivers in ``drive`` perform anything:

* ``Sleep`` and ``Offload`` (user code such as a summarizer) are run by the drivers themselves;
* ``Pull``, ``Close`` and ``Watch`` (a streamed reply's chunks, see ``signals``) too;
* every other step is an ``IOStep`` handed to the store's I/O adapter (``SyncIO`` /
  ``AsyncIO``), the only code that exists in a sync and an async form, a few lines each.

An exception raised while performing a step is thrown back into the operation at its
``yield``, so the logic decides what a failure means.
"""

from .drive import AsyncIO, SyncIO, run_async, run_sync
from .signals import CANCELLED, END, NOT_READY, Ahead, Cancel, Close, Pull, Signal, Watch
from .steps import IOStep, Offload, Op, Sleep, immediate

__all__ = ["CANCELLED", "END", "NOT_READY", "Ahead", "AsyncIO", "Cancel", "Close", "IOStep",
           "Offload", "Op", "Pull", "Signal", "Sleep", "SyncIO", "Watch", "immediate",
           "run_async", "run_sync"]
