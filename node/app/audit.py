"""Chain heads up the tree: sending this node's, judging and keeping its descendants'.

Sending (``AuditTrail.report``, one unit of work). On the statistics ledger's rhythm (every
``statistics.flush_interval_s`` when the chain grew, and every ``statistics.heartbeat_s``
anyway, so a history rewritten while the node is quiet is still caught), a node that has a
parent sends an ``audit`` envelope to the city with its chain's algorithm, count and head,
and the checkpoint: the count of the head it sent before and its hash at that position
*now*, read again from the event row. The envelope and the record of what was sent are
written in the same transaction (persist before send), and sync delivers a link's
envelopes in order, exactly once: so the checkpoint is always the position of the head the
ancestors hold.

Receiving (``apply_head``, called by the replicator at every ancestor on the way up, like
statistics): ``node.domain.audit.judge`` compares the head with the one held for that node;
a head that does not extend it marks the node's chain broken (kept with the reason and the
time, until someone looks into it), logs one warning line and shows as a supervision alarm
(``govnet alarms``) and in the metrics (``govnet_audit_chains_broken``,
``govnet_audit_chain_breaks_total``). A new incarnation (a restore done by ``govnet
restore``) re-bases the node's chain without an alarm. A node may only speak for its own
chain: a head about another node is refused (quarantined).

Judging is plain Python over what the store holds; this module only reads, calls the pure
judge and writes its verdict. Adding the chain never blocks intake: sealing an event costs
a hash and one small row update in the unit that appends it, and heads travel in the
background like statistics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from govnet.federation.routing import root_of
from govnet.federation.tree import parent_id
from govnet.node.domain.audit import Head, Judgement, Verdict, judge
from govnet.node.domain.clock import Clock
from govnet.node.domain.messages import AuditHeadMessage
from govnet.node.domain.statistics import StatsSettings
from govnet.node.store import audit as chain_rows
from govnet.node.store.engine import Store
from govnet.node.store.outbox import send
from govnet.node.store.unit import StoreMeta, Unit

log = logging.getLogger("govnet.audit")

KIND = AuditHeadMessage.KIND
ALARM = "audit_chain_broken"  # the kind of the supervision alarm a broken chain shows as


class AuditTrail:
    """This node's chain head, sent up on the statistics ledger's rhythm (module docstring)."""

    def __init__(self, store: Store, settings: StatsSettings | None = None) -> None:
        self.store = store
        self.settings = settings or StatsSettings()
        self._last_report: datetime | None = None

    def report(self, s: Unit, now: datetime, force: bool = False) -> bool:
        """Send the head if the chain grew since the last one sent (or ``force``); returns
        whether it sent one. The city has nobody to send to."""
        meta = self.store.meta
        if not parent_id(meta.node_id):
            return False
        chain = chain_rows.recorded(s)
        sent_count, checkpoint = chain_rows.last_sent(s)
        if chain.count == sent_count and not force:
            return False
        message = AuditHeadMessage(meta.node_id, meta.incarnation, chain.algorithm, chain.count, chain.head,
                                   sent_count, checkpoint)
        send(s, meta, target=root_of(meta.node_id), message=message, case_key=f"{KIND}:{meta.node_id}", priority=0,
             now=now)
        chain_rows.mark_sent(s, chain.count)
        self._last_report = now
        return True

    def report_now(self, now: datetime, force: bool = False) -> bool:
        """``report`` as its own transaction (blocking)."""
        with self.store.transaction() as s:
            return self.report(s, now, force)

    def heartbeat_due(self, now: datetime) -> bool:
        return self._last_report is None or now - self._last_report >= timedelta(seconds=self.settings.heartbeat_s)

    async def run(self, clock: Clock, stop: asyncio.Event, after_send: Callable[[], None] = lambda: None) -> None:
        """Report every ``flush_interval_s`` (forced every ``heartbeat_s``) until ``stop``."""
        if not parent_id(self.store.meta.node_id):
            return
        while not stop.is_set():
            try:
                now = clock.now()
                beat = self.heartbeat_due(now)
                if await self.store.run_unit(partial(self.report, now=now, force=beat)):
                    after_send()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next interval tries again; nothing was sent or recorded
                log.exception("audit head report failed")
            try:
                await asyncio.wait_for(stop.wait(), self.settings.flush_interval_s)
            except TimeoutError:
                pass


def apply_head(s: Unit, meta: StoreMeta, message: AuditHeadMessage, origin: str, now: datetime,
               origin_seq: int = 0) -> Verdict:
    """Judge a descendant's head against the one held and keep it (see the module docstring).
    Raises ``ValueError`` for a head a node sent about another node."""
    if message.node != origin:
        raise ValueError(f"audit head from {origin} about {message.node}: a node speaks only for its own chain")
    head = Head(message.node, message.incarnation, message.algorithm, message.count, message.head,
                message.checkpoint_count, message.checkpoint_hash, origin_seq)
    verdict = judge(chain_rows.kept(s, origin), head, meta.incarnation)
    if not verdict.keep:
        return verdict
    broken = verdict.reason if verdict.judgement is Judgement.BROKEN else ""
    if broken:
        log.warning("audit chain broken", extra={"node_id": origin, "reason": broken})
    chain_rows.keep(s, origin, head.incarnation, head.algorithm, head.count, head.head, meta.incarnation, now,
                    origin_seq=origin_seq, broken=broken, restored=verdict.judgement is Judgement.RESTORED)
    return verdict


def use_configured_algorithm(store: Store, algorithm: str) -> str:
    """Start an empty chain with the configured algorithm; returns the one the chain uses (a
    chain with events keeps its own, and a differing configuration is logged)."""
    with store.transaction() as s:
        used = chain_rows.use_algorithm(s, algorithm)
    if used != algorithm:
        log.warning("audit.hash differs from the chain's algorithm; the chain keeps its own",
                    extra={"configured": algorithm, "chain": used})
    return used
