"""This node's side of its links: the child side toward its parent and the parent side
for its children. Both hand what they receive to the inbox (``node.inbox``). Blocking
store calls; the session and the gRPC servicer run them in worker threads.

A neighbour that comes back as a new incarnation has been restored from a backup and has
forgotten what it did since. Each side notices it at hello and, in the transaction that
records the new incarnation (so a restart in between neither hides nor repeats it), queues
what the neighbour lost: a child re-sends every case it handed over to its owner
(``replication.resend_handed_over``); a parent sends every case it owns from the child's
subtree back to where it was submitted (``replication.send_copies``) and asks the owners
above it to do the same (``replication.notify_owners_above``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from govnet.federation.tree import NodeIdError, check_child, level_of, parent_id
from govnet.node.app.inbox import Inbox
from govnet.node.app.replication import (
    notify_owners_above,
    resend_handed_over,
    send_catalog,
    send_copies,
    send_summary,
)
from govnet.node.domain.catalog import Catalog, ServiceItem
from govnet.node.domain.clock import Clock
from govnet.node.domain.messages import CatalogMessage
from govnet.node.store import outbox, replicas
from govnet.node.store.engine import Store, execute, query, utc_text
from govnet.node.store.models import (
    CaseRow,
    CaseSummary,
    CatalogReleaseItem,
    ChildLink,
    LinkStateRow,
    OutboxRow,
)
from govnet.sync.admission import Admission
from govnet.sync.batching import select_batch
from govnet.sync.cursor import Cursor
from govnet.sync.digest import PeriodDigest, digests, divergent
from govnet.sync.envelope import PROTOCOL_VERSION, Envelope, Received
from govnet.sync.link import Health, LinkState, shown_health
from govnet.sync.transport.base import Hello, HelloReply, PullReply, Refused

log = logging.getLogger("govnet.sync")
LAST_SEEN_EVERY = timedelta(seconds=2)  # how often a child's hello is written down
LOOKAHEAD_BATCHES = 20  # a batch is chosen from this many batches' worth of waiting envelopes
ACK_FLUSH = timedelta(seconds=1)  # acknowledged envelopes leave the outbox at least this often
ACK_FLUSH_BATCHES = 4  # ... and once this many batches' worth are acknowledged


@dataclass(frozen=True)
class SyncSettings:
    flush_interval_s: float = 0.5
    batch_max: int = 200
    admission_limit: int = 4
    digest_interval_s: float = 60.0


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


def _parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts) if ts else None


def _digest_rows(s: Session, root: str) -> list[tuple[str, str, int]]:
    """(day submitted, receipt, version) of every case that originated at or under ``root``."""
    like = root + "%"
    best: dict[str, tuple[str, int]] = {}
    for receipt, submitted, count in s.exec(
        select(CaseRow.receipt, CaseRow.submitted_at, CaseRow.event_count).where(col(CaseRow.origin).like(like))
    ).all():
        best[receipt] = (submitted[:10], count)
    for receipt, submitted, count in s.exec(
        select(CaseSummary.receipt, CaseSummary.submitted_at, CaseSummary.event_count)
        .where(col(CaseSummary.origin).like(like))
    ).all():
        if receipt not in best or best[receipt][1] < count:
            best[receipt] = (submitted[:10], count)
    return [(day, receipt, count) for receipt, (day, count) in best.items()]


def _send_summaries(s: Session, store: Store, root: str, periods: Sequence[str], target: str, now: datetime) -> int:
    """Resync: send our view of every case under ``root`` submitted in ``periods`` to ``target``."""
    wanted = set(periods)
    sent = 0
    like = root + "%"
    for row in s.exec(select(CaseRow).where(col(CaseRow.origin).like(like))).all():
        if row.submitted_at[:10] in wanted:
            send_summary(s, store.meta, target, replicas.snapshot_of(row, personal=False), 0, now)
            sent += 1
    owned = {r for r in s.exec(select(CaseRow.receipt).where(col(CaseRow.origin).like(like))).all()}
    for summ in s.exec(select(CaseSummary).where(col(CaseSummary.origin).like(like))).all():
        if summ.submitted_at[:10] in wanted and summ.receipt not in owned:
            send_summary(s, store.meta, target, replicas.summary_snapshot(summ), 0, now)
            sent += 1
    return sent


class UpLink:
    """The child side of the link to this node's parent (implements ``sync.session.Child``)."""

    def __init__(self, store: Store, inbox: Inbox, clock: Clock, settings: SyncSettings) -> None:
        self.store = store
        self.inbox = inbox
        self.clock = clock
        self.settings = settings
        self.node_id = store.meta.node_id
        parent = parent_id(self.node_id)
        assert parent is not None, "a city has no up-link"
        self.parent = parent
        self.parent_incarnation = 0
        self._recorded_incarnation = 0  # the parent incarnation known to be written down (see on_hello)
        self.refusal = ""  # the parent's last refusal, shown in the status
        # The waiting envelopes the next batches are chosen from (the first ``lookahead`` in
        # link order), kept between batches: reading and decoding thousands of rows for every
        # batch of 200 cost more than sending it. Re-read at every exchange; topped up from
        # beyond the highest position read (positions are given out in commit order).
        self._window: list[Envelope] = []
        self._one_priority = True  # every envelope in the window has the same priority
        self._read_through = 0
        self._window_fresh = False
        # The parent's latest acknowledgement, not yet deleted from the outbox. Deleting is
        # deferred (at most ACK_FLUSH or ACK_FLUSH_BATCHES, and when the backlog is empty;
        # done while the next batch is in flight, and a few batches at a time, so deleting
        # a drained backlog does not come at its end, all at once): an acknowledged
        # envelope that a crash leaves in the outbox is resent and dropped by the parent's
        # cursor, so the deletion needs no fsync of its own on every batch.
        self._acked: Cursor | None = None
        self._flushed_at: datetime | None = None
        self._unflushed = 0  # envelopes acknowledged since the last deletion

    @property
    def lookahead(self) -> int:
        return self.settings.batch_max * LOOKAHEAD_BATCHES

    def hello(self) -> Hello:
        self._window_fresh = False
        catalog = self.store.catalog()
        return Hello(self.node_id, self.store.meta.level.value, PROTOCOL_VERSION, catalog.version,
                     self.store.meta.incarnation, dict(catalog.releases))

    def on_hello(self, reply: HelloReply) -> None:
        if reply.node_id != self.parent:
            raise Refused(f"the node at the parent address is {reply.node_id}, but this node's parent is {self.parent}: "
                          "fix node.parent in govnet.toml")
        if reply.incarnation != self.parent_incarnation and self.parent_incarnation:
            log.warning("parent has a new incarnation: its stream restarts; end-to-end identities drop repeats",
                        extra={"link": self.parent, "old": self.parent_incarnation, "new": reply.incarnation})
        self.parent_incarnation = reply.incarnation
        self.refusal = ""
        if reply.incarnation != self._recorded_incarnation:
            self._record_parent_incarnation(reply.incarnation)

    def _record_parent_incarnation(self, incarnation: int) -> None:
        """Write down the parent's incarnation (as a cursor row on its stream); when it is new
        and an older one was known, the parent was restored: re-send what it may have lost."""
        now = self.clock.now()
        with self.store.transaction() as s:
            known = [i for (i,) in query(s, "SELECT incarnation FROM inbound_cursor WHERE link = ?", (self.parent,))]
            if incarnation not in known:
                if known and max(known) < incarnation:
                    sent = resend_handed_over(s, self.store.meta, now)
                    log.warning("parent restored as a new incarnation: re-sending the cases handed over",
                                extra={"link": self.parent, "old": max(known), "new": incarnation, "cases": sent})
                execute(s, "INSERT OR IGNORE INTO inbound_cursor (link, incarnation, through, above, updated_at) "
                           "VALUES (?, ?, 0, '[]', ?)", (self.parent, incarnation, utc_text(now)))
        self._recorded_incarnation = incarnation

    def next_batch(self, in_flight: Sequence[Envelope] = ()) -> list[Envelope]:
        acked = self._acked
        if not self._window_fresh:
            self._window, self._read_through, self._window_fresh = [], 0, True
        # Topped up a few batches' worth at a time: a first read of the whole lookahead would
        # delay the first batch of a long backlog (urgent envelopes further back are found a
        # few batches later, still ahead of the bulk).
        room = min(self.lookahead - len(self._window), 2 * self.settings.batch_max)
        if room > 0:
            with self.store.reading() as s:
                fresh = outbox.pending(s, self.parent, limit=room, after=self._read_through)
            if fresh:
                self._read_through = fresh[-1].seq
                self._window.extend(e for e in fresh if acked is None or not acked.has(e.seq))
                self._one_priority = len({e.priority for e in self._window}) <= 1
        flying = {e.seq for e in in_flight}
        if self._one_priority:
            # Nothing to promote (a plain backlog): the batch is a prefix of the window, which
            # is in link order, so only its head is looked at (the window holds thousands).
            head = self._window[: len(flying) + self.settings.batch_max]
            candidates = [e for e in head if e.seq not in flying] if flying else head
        else:
            candidates = [e for e in self._window if e.seq not in flying] if flying else self._window
        batch = select_batch(candidates, self.settings.batch_max)
        now = self.clock.now()
        if (not batch or self._flushed_at is None or now - self._flushed_at >= ACK_FLUSH
                or self._unflushed >= ACK_FLUSH_BATCHES * self.settings.batch_max):
            self.flush_acknowledged()
        return batch

    def settled_below(self) -> int:
        with self.store.reading() as s:
            return outbox.settled_below(s, self.parent)

    def acknowledged(self, cursor: Cursor) -> None:
        window = self._window
        # The acknowledged batch is usually the window's head: cut it off, and look further
        # only for positions acknowledged out of order (the window is in link order).
        head = 0
        while head < len(window) and cursor.has(window[head].seq):
            head += 1
        rest = window[head:]
        self._window = [e for e in rest if e.seq not in cursor.above] if cursor.above else rest
        self._unflushed += len(window) - len(self._window)
        self._acked = _storable(cursor)
        if not self._window:
            self.flush_acknowledged()  # the backlog has gone: leave the outbox empty

    def flush_acknowledged(self) -> None:
        """Delete from the outbox what the parent has acknowledged."""
        acked, self._flushed_at, self._unflushed = self._acked, self.clock.now(), 0
        if acked is not None:
            with self.store.transaction() as s:
                outbox.drop_acknowledged(s, self.parent, acked)
            if self._acked is acked:
                self._acked = None

    def down_position(self) -> tuple[int, Cursor]:
        with self.store.reading() as s:
            return self.parent_incarnation, Inbox.cursor(s, self.parent, self.parent_incarnation)

    def apply_down(self, parent_incarnation: int, envelopes: Sequence[Envelope], settled_below: int = 0) -> None:
        self.parent_incarnation = parent_incarnation
        if envelopes or settled_below > 1:
            self.inbox.receive(self.parent, parent_incarnation, envelopes, settled_below)

    def period_digests(self) -> list[PeriodDigest] | None:
        if self.inbox.holds_from(self.parent):
            return None  # not comparable until applied: the next exchange compares
        with self.store.reading() as s:
            return list(digests(_digest_rows(s, self.node_id)).values())

    def resync(self, periods: Sequence[str]) -> None:
        log.warning("digest differs from parent's: resyncing", extra={"link": self.parent, "periods": list(periods)})
        with self.store.transaction() as s:
            _send_summaries(s, self.store, self.node_id, periods, self.parent, self.clock.now())

    # --- link state, persisted so backoff survives restarts ---

    def load_state(self) -> LinkState:
        with self.store.reading() as s:
            row = s.get(LinkStateRow, self.parent)
        if row is None:
            return LinkState(self.parent)
        return LinkState(self.parent, Health(row.health), _parse(row.since), row.failures, _parse(row.next_attempt),
                         _parse(row.last_success), row.last_error)

    def save_state(self, state: LinkState) -> None:
        with self.store.transaction() as s:
            row = s.get(LinkStateRow, self.parent) or LinkStateRow(neighbour=self.parent, health=state.health)
            row.health = state.health.value
            row.since = utc_text(state.since) if state.since else None
            row.failures = state.failures
            row.next_attempt = utc_text(state.next_attempt) if state.next_attempt else None
            row.last_success = utc_text(state.last_success) if state.last_success else None
            row.last_error = state.last_error[:500]
            s.add(row)


class ChildrenSide:
    """What this node offers its children (implements ``sync.transport.Parent``)."""

    def __init__(self, store: Store, inbox: Inbox, clock: Clock, settings: SyncSettings) -> None:
        self.store = store
        self.inbox = inbox
        self.clock = clock
        self.settings = settings
        self.admission = Admission(settings.admission_limit)
        self._seen: dict[str, tuple[int, datetime]] = {}  # child -> (incarnation, last recorded)

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
        if not behind and seen is not None and seen[0] == hello.incarnation and now - seen[1] < LAST_SEEN_EVERY:
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
            elif row.incarnation < hello.incarnation:
                # Restored from a backup: it forgot the cases it took since, and their decisions.
                sent = send_copies(s, meta, hello.node_id, now)
                told = notify_owners_above(s, meta, hello.node_id, now)
                log.warning("child restored as a new incarnation: sending back the cases owned here, "
                            "telling the owners above", extra={"link": hello.node_id, "old": row.incarnation,
                                                               "new": hello.incarnation, "cases": sent,
                                                               "owners": told})
            row.incarnation, row.catalog_version, row.last_seen = hello.incarnation, hello.catalog_version, utc_text(now)
            s.add(row)
            pending = self._catalogs_pending(s, hello.node_id)
            for issuer, version in behind.items():
                if (issuer, version) in pending:
                    continue
                send_catalog(s, meta, hello.node_id, version, issuer, self._release_items(s, issuer, version), now)
        self._seen[hello.node_id] = (hello.incarnation, now)
        return HelloReply(meta.node_id, meta.level.value, PROTOCOL_VERSION, meta.incarnation, catalog.version)

    @staticmethod
    def _release_items(s: Session, issuer: str, version: int) -> list[dict[str, Any]]:
        """Every item of a release, including those a nearer issuer overrides here."""
        rows = s.exec(select(CatalogReleaseItem).where(CatalogReleaseItem.issuer == issuer,
                                                       CatalogReleaseItem.version == version)
                      .order_by(col(CatalogReleaseItem.code))).all()
        return [json.loads(r.data) for r in rows]

    @staticmethod
    def _catalogs_pending(s: Session, child: str) -> set[tuple[str, int]]:
        """The catalog releases already waiting in the child's outbox."""
        rows = s.exec(select(OutboxRow.payload).where(OutboxRow.link == child, OutboxRow.kind == "catalog")).all()
        out = set()
        for payload in rows:
            release = CatalogMessage.decode(payload.encode())
            out.add((release.issuer, release.version))
        return out

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
             max_envelopes: int) -> PullReply:
        self.admission.enter()
        try:
            self._registered(child)
            mine = self.store.meta.incarnation
            current = parent_incarnation == mine
            with self.store.reading() as s:
                waiting = outbox.pending(s, child, limit=max(1, max_envelopes) * 20)
            if current and any(applied.has(e.seq) for e in waiting):
                with self.store.transaction() as s:
                    outbox.drop_acknowledged(s, child, _storable(applied))
            left = [e for e in waiting if not (current and applied.has(e.seq))]
            batch = select_batch(left, max(1, min(max_envelopes, self.settings.batch_max)))
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
            mine = digests(_digest_rows(s, child))
        differ = divergent(mine, theirs)
        if differ:
            log.warning("digest differs from child's: resyncing", extra={"link": child, "periods": differ})
            with self.store.transaction() as s:
                _send_summaries(s, self.store, child, differ, child, self.clock.now())
        return differ


def link_reports(store: Store, uplink: UpLink | None, now: datetime, flush_interval: timedelta) -> list[LinkReport]:
    """Per link: health, outbox depth and age of the oldest waiting item, inbox depth, last success and error."""
    reports = []
    with store.reading() as s:
        received = {link: int(n) for link, n in query(s, "SELECT link, sum(count - applied) FROM inbox GROUP BY link")}
        if uplink is not None:
            state = uplink.load_state()
            depth, oldest = outbox.depth(s, uplink.parent)
            oldest_at = _parse(oldest)
            health = shown_health(state, now, oldest_at, flush_interval)
            reports.append(LinkReport(
                uplink.parent, "up", health.value, utc_text(state.since) if state.since else None, depth,
                (now - oldest_at).total_seconds() if oldest_at else 0.0,
                utc_text(state.last_success) if state.last_success else None,
                f"refused by the parent: {uplink.refusal}" if uplink.refusal else state.last_error,
                utc_text(state.next_attempt) if state.next_attempt else None, received.get(uplink.parent, 0),
            ))
        for child in s.exec(select(ChildLink).order_by(col(ChildLink.child_id))).all():
            depth, oldest = outbox.depth(s, child.child_id)
            oldest_at = _parse(oldest)
            seen = _parse(child.last_seen)
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

    def publish(s: Session, version: int, issuer: str, items: list[dict[str, Any]], now: datetime) -> bool:
        if store.catalog().releases.get(issuer, 0) >= version:
            return False
        catalog = Catalog(items=tuple(ServiceItem.from_dict(i) for i in items), issuer=issuer)
        store.publish_catalog_in(s, catalog, now, version)
        return True

    return publish
