"""This node's side of its links: the child side toward its parent and the parent side
for its children. Both hand what they receive to the inbox (``node.app.inbox``). Blocking
store calls; the session and the gRPC servicer run them in worker threads.

The up-link decides nothing here: its policy is the sans-I/O ``sync.uplink.UpLinkCore``,
and ``UpLink`` only executes what it asks for against the store (read the outbox, delete
what is acknowledged, write down the parent's incarnation), per that module's contract.

What cannot be sent is withheld, in both directions: the up-link executes the core's
``Withhold`` effects, and a parent answering a pull withholds an envelope that alone
exceeds what the child takes (``sync.batching.withhold_oversize``). Either way the
envelope goes to this node's quarantine (side ``sender``) and its marker takes its place
in the outbox, in one transaction, before the marker is sent. ``requeue_withheld`` is the
operator's way back: after the limit was raised, the envelope is queued again on its link
(a new position, the same identity), and the receiver applies it like any other.

A neighbour that comes back as a new incarnation has been restored from a backup and has
forgotten what it did since. Each side notices it at hello and, in the transaction that
records the new incarnation (so a restart in between neither hides nor repeats it), queues
what the neighbour lost: a child re-sends every case it handed over to its owner, the
custody of those it owns itself and its statistics, and tells its own subtree to do the same
(``replication.ancestor_restored``); a parent sends every case it owns from the child's
subtree back to where it was submitted (``replication.send_copies``), and those it keeps in
custody for the child (``replication.send_custody_back``), and asks the owners above it to do
the same (``replication.notify_owners_above``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from govnet.federation.tree import NodeIdError, check_child, level_of, parent_id
from govnet.node.app.inbox import Inbox
from govnet.node.app.replication import (
    ancestor_restored,
    check_release_in,
    notify_owners_above,
    send_catalog,
    send_copies,
    send_custody_back,
    send_summary,
)
from govnet.node.domain.catalog import Catalog, ServiceItem
from govnet.node.domain.clock import Clock
from govnet.node.store import links as link_store
from govnet.node.store import outbox, quarantine, replicas
from govnet.node.store.engine import Store
from govnet.node.store.models import (
    ChildLink,
)
from govnet.node.store.unit import Unit, utc_text
from govnet.sync.admission import Admission
from govnet.sync.batching import DEFAULT_MAX_BYTES, Withhold, select_batch, too_large, withhold_oversize
from govnet.sync.cursor import Cursor
from govnet.sync.digest import PeriodDigest, digests, divergent
from govnet.sync.envelope import PROTOCOL_VERSION, Envelope, Received
from govnet.sync.link import Health, LinkState, shown_health
from govnet.sync.transport.base import Hello, HelloReply, PullReply, Refused
from govnet.sync.uplink import DeleteAcknowledged, ParentRestarted, UpLinkCore, parent_restored

log = logging.getLogger("govnet.sync")
LAST_SEEN_EVERY = timedelta(seconds=2)  # how often a child's hello is written down


@dataclass(frozen=True)
class SyncSettings:
    flush_interval_s: float = 0.5
    batch_max: int = 200
    admission_limit: int = 4
    digest_interval_s: float = 60.0
    batch_max_bytes: int = DEFAULT_MAX_BYTES  # a batch's bytes on the wire, below the receiver's message limit
    retry_cap_s: float = 120.0  # the longest wait before trying a failing link again (sync.backoff)


@dataclass(frozen=True)
class LinkReport:
    neighbour: str
    direction: str
    health: str
    since: str | None
    outbox_depth: int
    oldest_age_s: float
    last_success: str | None
    last_error: str
    next_attempt: str | None
    inbox_depth: int = 0  # received from this neighbour, not applied yet


def _storable(cursor: Cursor) -> Cursor:
    """The part of a peer's cursor that can name rows of our outbox (SQLite integers)."""
    if cursor.through < 2**63 and all(x < 2**63 for x in cursor.above):
        return cursor
    through = min(cursor.through, 2**63 - 1)
    return Cursor(through, frozenset(x for x in cursor.above if through < x < 2**63))


def _send_summaries(s: Unit, store: Store, root: str, periods: Sequence[str], target: str, now: datetime) -> int:
    """Resync: send our view of every case under ``root`` submitted in ``periods`` to ``target``."""
    wanted = set(periods)
    sent = 0
    held = link_store.cases_from(s, root)
    for row in held:
        if row.submitted_at[:10] in wanted:
            send_summary(s, store.meta, target, replicas.snapshot_of(row, personal=False), 0, now)
            sent += 1
    owned = {row.receipt for row in held}
    for summ in link_store.summaries_from(s, root):
        if summ.submitted_at[:10] in wanted and summ.receipt not in owned:
            send_summary(s, store.meta, target, replicas.summary_snapshot(summ), 0, now)
            sent += 1
    return sent


class UpLink:
    """The child side of the link to this node's parent (implements ``sync.session.Child``):
    the store's half of the up-link. The policy — the window, what is in flight, what the
    acknowledgements settle, when they are deleted, what a new parent incarnation means —
    is ``core`` (``sync.uplink.UpLinkCore``); this class executes its effects against the
    store, and serves the downward half (the pulled envelopes go to the inbox)."""

    def __init__(self, store: Store, inbox: Inbox, clock: Clock, settings: SyncSettings) -> None:
        self.store = store
        self.inbox = inbox
        self.clock = clock
        self.settings = settings
        self.node_id = store.meta.node_id
        parent = parent_id(self.node_id)
        assert parent is not None, "a city has no up-link"
        self.parent = parent
        self.core = UpLinkCore(parent, settings.batch_max, max_bytes=settings.batch_max_bytes, node_id=self.node_id)
        self.refusal = ""  # the parent's last refusal, shown in the status
        with store.reading() as s:
            self._catching_up = link_store.catching_up(s)  # restored from a backup, not caught up yet
        if self._catching_up:
            log.warning("restored from a backup: no deadline alarms until the parent has sent back what this "
                        "node forgot", extra={"link": parent})

    @property
    def parent_incarnation(self) -> int:
        return self.core.parent_incarnation

    def hello(self) -> Hello:
        self.core.begin()
        catalog = self.store.catalog()
        return Hello(self.node_id, self.store.meta.level.value, PROTOCOL_VERSION, catalog.version,
                     self.store.meta.incarnation, dict(catalog.releases))

    def on_hello(self, reply: HelloReply) -> None:
        for effect in self.core.hello_replied(reply.node_id, reply.incarnation):
            if isinstance(effect, ParentRestarted):
                log.warning("parent has a new incarnation: its stream restarts; end-to-end identities drop repeats",
                            extra={"link": self.parent, "old": effect.old, "new": effect.new})
            else:
                self._record_parent_incarnation(effect.incarnation)
        self.refusal = ""

    def refused(self, why: str) -> None:
        """The parent refused this node (the link driver says so); shown in the status until the next hello."""
        self.refusal = why

    def _record_parent_incarnation(self, incarnation: int) -> None:
        """Write down the parent's incarnation (as a cursor row on its stream) in the same
        transaction as what a restored parent needs: the cases handed over, queued again."""
        now = self.clock.now()
        with self.store.transaction() as s:
            known = link_store.parent_incarnations(s, self.parent)
            if incarnation not in known:
                if parent_restored(known, incarnation):
                    queued = ancestor_restored(s, self.store.meta, self.parent, now)
                    log.warning("parent restored as a new incarnation: re-sending the cases handed over, those "
                                "it keeps in custody and the statistics, and telling the children",
                                extra={"link": self.parent, "old": max(known), "new": incarnation, **queued})
                link_store.record_parent_incarnation(s, self.parent, incarnation, now)
        self.core.recorded(incarnation)

    def next_batch(self) -> list[Envelope]:
        """The next batch to push (what is in flight left out), reading the outbox and
        deleting what is acknowledged as the core asks."""
        read = self.core.to_read()
        if read is not None:
            with self.store.reading() as s:
                self.core.read(outbox.pending(s, self.parent, limit=read.limit, after=read.after))
        step = self.core.next_batch(self.clock.now())
        for effect in step.withhold:
            self.withhold(effect)
        if step.delete is not None:
            self._delete(step.delete)
        return step.batch

    def withhold(self, effect: Withhold) -> None:
        """Set an envelope that cannot be sent aside, its marker in its place (one transaction)."""
        _withhold(self.store, self.parent, effect, self.clock.now())

    def settled_below(self) -> int:
        with self.store.reading() as s:
            return outbox.settled_below(s, self.parent)

    def acknowledged(self, cursor: Cursor) -> None:
        """The parent's cursor, outside a push stream (the session hands its stream's
        acknowledgements to ``core`` directly)."""
        self.core.acknowledged(cursor)
        self.delete_due()

    def delete_due(self) -> None:
        """Delete what is acknowledged if the core wants it deleted now (the backlog has gone)."""
        effect = self.core.deletion(self.clock.now())
        if effect is not None:
            self._delete(effect)

    def flush_acknowledged(self) -> None:
        """Delete from the outbox what the parent has acknowledged."""
        effect = self.core.flush(self.clock.now())
        if effect is not None:
            self._delete(effect)

    def _delete(self, effect: DeleteAcknowledged) -> None:
        with self.store.transaction() as s:
            outbox.drop_acknowledged(s, self.parent, _storable(effect.cursor))
        self.core.deleted(effect)

    def down_position(self) -> tuple[int, Cursor]:
        incarnation = self.core.parent_incarnation
        with self.store.reading() as s:
            return incarnation, Inbox.cursor(s, self.parent, incarnation)

    def apply_down(self, parent_incarnation: int, envelopes: Sequence[Envelope], settled_below: int = 0) -> None:
        self.core.pulled(parent_incarnation)
        if envelopes or settled_below > 1:
            self.inbox.receive(self.parent, parent_incarnation, envelopes, settled_below)

    @property
    def catching_up(self) -> bool:
        return self._catching_up

    def pulled_all(self) -> None:
        """A store restored from a backup has caught up once its parent has nothing more for it
        and what came down is applied (else the next exchange looks again): alarms may run again."""
        if self.inbox.holds_from(self.parent):
            return
        with self.store.transaction() as s:
            link_store.caught_up(s)
        self._catching_up = False
        log.info("caught up with the parent after the restore: deadline alarms run again", extra={"link": self.parent})

    def period_digests(self) -> list[PeriodDigest] | None:
        if self.inbox.holds_from(self.parent):
            return None  # not comparable until applied: the next exchange compares
        with self.store.reading() as s:
            return list(digests(link_store.digest_rows(s, self.node_id)).values())

    def resync(self, periods: Sequence[str]) -> None:
        log.warning("digest differs from parent's: resyncing", extra={"link": self.parent, "periods": list(periods)})
        with self.store.transaction() as s:
            _send_summaries(s, self.store, self.node_id, periods, self.parent, self.clock.now())

    # --- link state, persisted so backoff survives restarts ---

    def load_state(self) -> LinkState:
        with self.store.reading() as s:
            return link_store.load_link_state(s, self.parent)

    def save_state(self, state: LinkState) -> None:
        with self.store.transaction() as s:
            link_store.save_link_state(s, state)


class ChildFeed(Protocol):
    """Something a parent keeps its children supplied with, sent on a hello whenever the child
    may lack it (the certificates to seal applicants to: ``node.app.keyring``), so children that
    registered before it existed, or before it changed, catch up by themselves."""

    def lacks(self, child: str) -> bool: ...

    def send_held(self, s: Unit, child: str, now: datetime) -> None: ...


class ChildrenSide:
    """What this node offers its children (implements ``sync.transport.base.Parent``)."""

    def __init__(self, store: Store, inbox: Inbox, clock: Clock, settings: SyncSettings,
                 on_registered: Callable[[Unit, str, datetime], None] | None = None,
                 feeds: Sequence[ChildFeed] = ()) -> None:
        self.store = store
        self.inbox = inbox
        self.clock = clock
        self.settings = settings
        self.on_registered = on_registered  # (session, child, now): a new child gets what it lacks (revocation lists)
        self.feeds = tuple(feeds)  # what a child may lack whatever its registration (certificates)
        self.admission = Admission(settings.admission_limit)
        self._seen: dict[str, tuple[int, datetime]] = {}  # child -> (incarnation, last recorded)
        # child -> (this node's incarnation, positions handed to it in pull replies): a child's
        # cursor acknowledges only what it was sent (see ``pull``).
        self._sent: dict[str, tuple[int, Cursor]] = {}

    @property
    def node_id(self) -> str:
        return self.store.meta.node_id

    def hello(self, hello: Hello) -> HelloReply:
        meta = self.store.meta
        if hello.protocol_version != PROTOCOL_VERSION:
            raise Refused(f"sync protocol {hello.protocol_version} is not supported here; node {meta.node_id} "
                          f"speaks version {PROTOCOL_VERSION}: upgrade the older node")
        try:
            check_child(meta.node_id, hello.node_id)
            if level_of(hello.node_id).value != hello.level:
                raise NodeIdError(f"node {hello.node_id} is a {level_of(hello.node_id)} id but says it is a {hello.level}")
        except NodeIdError as exc:
            raise Refused(f"node {meta.node_id} ({meta.level}) refuses {hello.node_id}: {exc}") from None
        now = self.clock.now()
        catalog = self.store.catalog()
        behind = {i: v for i, v in catalog.releases.items() if hello.catalog_releases.get(i, 0) < v}
        seen = self._seen.get(hello.node_id)
        lacking = [f for f in self.feeds if f.lacks(hello.node_id)]
        if not behind and not lacking and seen is not None and seen[0] == hello.incarnation and now - seen[1] < LAST_SEEN_EVERY:
            # Nothing to record: a child says hello on every exchange, and a write (with its
            # fsync) each time would cost more than the exchange itself.
            return HelloReply(meta.node_id, meta.level.value, PROTOCOL_VERSION, meta.incarnation, catalog.version)
        with self.store.transaction() as s:
            row = s.get(ChildLink, hello.node_id)
            if row is None:
                row = ChildLink(child_id=hello.node_id, level=hello.level, incarnation=hello.incarnation,
                                protocol_version=hello.protocol_version, catalog_version=hello.catalog_version,
                                registered_at=utc_text(now), last_seen=utc_text(now))
                log.info("child registered", extra={"link": hello.node_id})
                if self.on_registered is not None:
                    self.on_registered(s, hello.node_id, now)
            elif row.incarnation < hello.incarnation:
                # Restored from a backup: it forgot the cases it took since, and their decisions.
                if self.on_registered is not None:
                    self.on_registered(s, hello.node_id, now)  # and lists it may not have held then
                sent = send_copies(s, meta, hello.node_id, now)
                kept = send_custody_back(s, meta, hello.node_id, now)
                told = notify_owners_above(s, meta, hello.node_id, now)
                log.warning("child restored as a new incarnation: sending back the cases owned here and those "
                            "kept in custody, telling the owners above",
                            extra={"link": hello.node_id, "old": row.incarnation, "new": hello.incarnation,
                                   "cases": sent, "custody": kept, "owners": told})
            for feed in lacking:
                if feed.lacks(hello.node_id):  # (registering may have sent it already)
                    feed.send_held(s, hello.node_id, now)
            row.incarnation, row.catalog_version, row.last_seen = hello.incarnation, hello.catalog_version, utc_text(now)
            s.add(row)
            pending = link_store.catalogs_pending(s, hello.node_id)
            for issuer, version in behind.items():
                if (issuer, version) in pending:
                    continue
                send_catalog(s, meta, hello.node_id, version, issuer, link_store.release_items(s, issuer, version), now)
        self._seen[hello.node_id] = (hello.incarnation, now)
        return HelloReply(meta.node_id, meta.level.value, PROTOCOL_VERSION, meta.incarnation, catalog.version)

    def _registered(self, child: str) -> None:
        if child in self._seen:
            return  # it said hello to this process, which registered it (rows are never removed)
        with self.store.reading() as s:
            if s.get(ChildLink, child) is None:
                raise Refused(f"node {child} has not registered with {self.node_id}: it must say hello first")

    def push(self, sender: str, incarnation: int, envelopes: Sequence[Received], settled_below: int = 0) -> Cursor:
        self.admission.enter()
        try:
            self._registered(sender)
            self.inbox.check_room()
            return self.inbox.receive(sender, incarnation, envelopes, settled_below)
        finally:
            self.admission.leave()

    def pull(self, child: str, child_incarnation: int, parent_incarnation: int, applied: Cursor,
             max_envelopes: int, max_bytes: int = 0) -> PullReply:
        self.admission.enter()
        try:
            self._registered(child)
            mine = self.store.meta.incarnation
            current = parent_incarnation == mine
            with self.store.reading() as s:
                waiting = outbox.pending(s, child, limit=max(1, max_envelopes) * 20)
            # The child's cursor settles only positions it was handed on this link: one naming
            # more (never sent, or sent before this process started) deletes nothing more; what
            # it names that this process has not sent is sent again once (the child's cursor
            # drops the copy) and settled by its next pull.
            sent = self._sent.get(child, (mine, Cursor()))[1] if current else Cursor()
            acked = {e.seq for e in waiting if applied.has(e.seq) and sent.has(e.seq)}
            if acked:
                with self.store.transaction() as s:
                    outbox.drop_acknowledged(s, child, Cursor.of(0, acked))
            left = [e for e in waiting if e.seq not in acked]
            limit = min(max_bytes, self.settings.batch_max_bytes) if max_bytes > 0 else self.settings.batch_max_bytes
            if any(too_large(e, limit) for e in left):
                left, withholds = withhold_oversize(left, limit, self.node_id)
                for effect in withholds:
                    _withhold(self.store, child, effect, self.clock.now())
            batch = select_batch(left, max(1, min(max_envelopes, self.settings.batch_max)), limit)
            self._sent[child] = (mine, sent.add(e.seq for e in batch))
            if left:
                settled = left[0].seq  # what is held below it, the child's cursor covers
            else:
                with self.store.reading() as s:
                    settled = outbox.settled_below(s, child)
            return PullReply(mine, tuple(batch), more=len(left) > len(batch), settled_below=settled)
        finally:
            self.admission.leave()

    def digest(self, child: str, periods: Sequence[PeriodDigest]) -> list[str]:
        self._registered(child)
        if self.inbox.holds_from(child):
            # What the child sent is received but not all applied: the digests would differ
            # only for that reason, and a resync would send it all again. Compare later.
            return []
        theirs = {p.period: p for p in periods}
        with self.store.reading() as s:
            mine = digests(link_store.digest_rows(s, child))
        differ = divergent(mine, theirs)
        if differ:
            log.warning("digest differs from child's: resyncing", extra={"link": child, "periods": differ})
            with self.store.transaction() as s:
                _send_summaries(s, self.store, child, differ, child, self.clock.now())
        return differ


def _withhold(store: Store, link: str, effect: Withhold, now: datetime) -> None:
    env = effect.original
    log.warning("envelope withheld: it cannot be sent", extra={
        "link": link, "kind": env.kind, "case_key": env.case_key, "seq": env.seq, "error": effect.reason})
    with store.transaction() as s:
        quarantine.withhold(s, link, effect, now)


class StillTooLarge(Exception):
    """A withheld envelope that still exceeds the batch limit; ``str()`` says what to change."""


def requeue_withheld(store: Store, item_id: int, max_bytes: int, now: datetime) -> bool:
    """Queue a withheld envelope (sender side of the quarantine) again on its link, at a new
    position with its identity unchanged, once it fits ``max_bytes``; the entry is marked
    replayed. False when ``item_id`` is no sender entry waiting."""
    with store.transaction() as s:
        row = quarantine.sender_item(s, item_id)
        if row is None:
            return False
        env = Envelope(0, row.origin, row.origin_incarnation, row.origin_seq, row.kind, row.target, row.case_key,
                       row.priority, row.payload.encode(), row.created_at)
        if too_large(env, max_bytes):
            raise StillTooLarge(
                f"item {item_id} is still {row.size:,} bytes, more than a batch may be ({max_bytes:,}): raise "
                "sync.batch_max_bytes on this node (and the receiver's message limit) and restart it first")
        outbox.forward(s, store.meta, env, link=row.link)
        quarantine.mark_replayed(s, row, now)
    return True


def link_reports(store: Store, uplink: UpLink | None, now: datetime, flush_interval: timedelta) -> list[LinkReport]:
    """Per link: health, outbox depth and age of the oldest waiting item, inbox depth, last success and error."""
    reports = []
    with store.reading() as s:
        received = link_store.inbox_depths(s)
        if uplink is not None:
            state = uplink.load_state()
            depth, oldest = outbox.depth(s, uplink.parent)
            oldest_at = link_store.parse_time(oldest)
            health = shown_health(state, now, oldest_at, flush_interval)
            reports.append(LinkReport(
                uplink.parent, "up", health.value, utc_text(state.since) if state.since else None, depth,
                (now - oldest_at).total_seconds() if oldest_at else 0.0,
                utc_text(state.last_success) if state.last_success else None,
                f"refused by the parent: {uplink.refusal}" if uplink.refusal else state.last_error,
                utc_text(state.next_attempt) if state.next_attempt else None, received.get(uplink.parent, 0),
            ))
        for child in link_store.child_links(s):
            depth, oldest = outbox.depth(s, child.child_id)
            oldest_at = link_store.parse_time(oldest)
            seen = link_store.parse_time(child.last_seen)
            quiet = seen is None or now - seen > max(flush_interval * 10, timedelta(seconds=10))
            if quiet:
                health = Health.OFFLINE
            elif oldest_at is not None and now - oldest_at > flush_interval * 4:
                health = Health.LAGGING
            else:
                health = Health.CONNECTED
            reports.append(LinkReport(
                child.child_id, "down", health.value, child.last_seen, depth,
                (now - oldest_at).total_seconds() if oldest_at else 0.0, child.last_seen, "", None,
                received.get(child.child_id, 0),
            ))
    return reports


def catalog_publisher(store: Store) -> Any:
    """The replicator's hook to store a catalog release received from the parent (if newer)."""

    def publish(s: Unit, version: int, issuer: str, items: list[dict[str, Any]], now: datetime) -> bool:
        if store.catalog().releases.get(issuer, 0) >= version:
            return False
        catalog = Catalog(items=tuple(ServiceItem.from_dict(i) for i in items), issuer=issuer)
        check_release_in(s, store.meta, catalog, local=False)  # its issuer's chain, its issuer's authority
        store.publish_catalog_in(s, catalog, now, version)
        return True

    return publish
