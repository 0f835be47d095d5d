"""Membership heartbeats in PostgreSQL (``stickyctx_members``): one ``Transaction`` step."""

from __future__ import annotations

from ...core.nodes import Announcement
from .io import Decision, Rows, Statement, Transaction
from .rows import NOW

__all__ = ["heartbeat"]


def heartbeat(namespace: str, node: Announcement, *, ttl: float,
              leaving: bool) -> Transaction:
    """Announce ``node`` for ``ttl`` seconds (or withdraw it); the step's value is the
    namespace's live announcements, by node id. Expired announcements are deleted on the way."""
    def decide(rows: Rows) -> Decision[tuple[Announcement, ...]]:
        now = float(rows[0][0][0])
        members = {n: Announcement(n, address, int(load))
                   for n, address, load, until in rows[1] if float(until) > now}
        writes = [Statement("DELETE FROM stickyctx_members WHERE ns = %s AND expires <= %s",
                            (namespace, now))]
        if leaving:
            members.pop(node.node_id, None)
            writes.append(Statement(
                "DELETE FROM stickyctx_members WHERE ns = %s AND node_id = %s",
                (namespace, node.node_id)))
        else:
            members[node.node_id] = node
            writes.append(Statement(
                "INSERT INTO stickyctx_members (ns, node_id, address, load, expires) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (ns, node_id) DO UPDATE SET "
                "address = excluded.address, load = excluded.load, expires = excluded.expires",
                (namespace, node.node_id, node.address, node.load, now + ttl)))
        return Decision(writes, tuple(members[n] for n in sorted(members)))

    return Transaction([NOW, Statement("SELECT node_id, address, load, expires FROM "
                                       "stickyctx_members WHERE ns = %s", (namespace,))], decide)
