"""Assembling one node's core from its store, calendar and clock.

The same assembly serves the real process (``node.server`` adds gRPC and the link
driver) and in-process simulations (which connect nodes with the in-memory transport).
"""

from __future__ import annotations

from dataclasses import dataclass

from federation.tree import parent_id
from node.calendar import WorkCalendar
from node.clock import Clock
from node.desk import CaseDesk
from node.replication import Replicator
from node.store import Store
from node.inbox import Inbox
from node.sync_node import ChildrenSide, SyncSettings, UpLink, catalog_publisher


@dataclass
class NodeCore:
    store: Store
    desk: CaseDesk
    replicator: Replicator
    inbox: Inbox
    uplink: UpLink | None  # None for the city
    children: ChildrenSide
    settings: SyncSettings


def assemble(store: Store, calendar: WorkCalendar, clock: Clock, settings: SyncSettings,
             duplicate_window_days: int = 30, apply_inline: bool = True) -> NodeCore:
    """``apply_inline``: apply received envelopes before answering (a simulation's determinism)
    rather than from the node process's background task."""
    desk = CaseDesk(store, calendar, clock, duplicate_window_days)
    replicator = Replicator(store.meta, desk, catalog_publisher(store))
    inbox = Inbox(store, replicator, clock, apply_inline=apply_inline)
    uplink = UpLink(store, inbox, clock, settings) if parent_id(store.meta.node_id) else None
    children = ChildrenSide(store, inbox, clock, settings)
    return NodeCore(store, desk, replicator, inbox, uplink, children, settings)
