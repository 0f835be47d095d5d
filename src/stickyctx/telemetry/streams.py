"""Metrics of streamed replies: ``stickyctx.streams`` (by ``stickyctx.stream.event``:
``started``, ``resumed``, ``stopped``, ``cancelled``, ``interrupted``; a resume also says which
node served it, ``stickyctx.stream.node``: ``same`` or ``other``) and
``stickyctx.stream.chunks.replayed`` (chunks a resuming or attaching client received that were
generated before it came). Their store steps have spans of their own (``stickyctx.store
stream_push``, ...)."""

from __future__ import annotations

from opentelemetry import metrics

from . import ATTR, METRIC

__all__ = ["StreamTelemetry"]


class StreamTelemetry:
    def __init__(self, node_id: str, meter: metrics.Meter) -> None:
        """``meter``: the package's (``Telemetry.meter``), obtained once."""
        self._node = node_id
        self.streams = meter.create_counter(
            METRIC.STREAMS, unit="{stream}", description="Streamed replies, by event")
        self.replayed = meter.create_counter(
            METRIC.STREAM_REPLAYED, unit="{chunk}",
            description="Chunks sent again to a client that resumed or attached")

    def event(self, event: str, *, same_node: bool | None = None) -> None:
        attributes = {ATTR.NODE_ID: self._node, ATTR.STREAM_EVENT: event}
        if same_node is not None:
            attributes[ATTR.STREAM_NODE] = "same" if same_node else "other"
        self.streams.add(1, attributes)

    def chunks_replayed(self, count: int) -> None:
        if count:
            self.replayed.add(count, {ATTR.NODE_ID: self._node})
