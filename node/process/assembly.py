"""Assembling one node's core from its store, calendar and clock.

The same assembly serves the real process (``node.server`` adds gRPC and the link
driver) and in-process simulations (which connect nodes with the in-memory transport).
"""

from __future__ import annotations

from dataclasses import dataclass

from govnet.federation.tree import parent_id
from govnet.node.app.desk import CaseDesk
from govnet.node.app.inbox import Inbox
from govnet.node.app.links import ChildrenSide, SyncSettings, UpLink, catalog_publisher
from govnet.node.app.replication import Replicator
from govnet.node.domain.calendar import WorkCalendar
from govnet.node.domain.clock import Clock
from govnet.node.store.engine import Store


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
