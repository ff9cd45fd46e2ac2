"""A node's statistics in its store: counting its own facts, keeping its subtree's rows, answering.

Counting (``StatsLedger.flush``, one unit of work). The ledger keeps a durable cursor in
``meta``: the id of the last ``case_event`` row it has looked at. A flush reads the events
after it, counts those this node originated (``node.domain.statistics``), adds them to this
node's own ``stat_row`` buckets, moves the cursor — all in the same transaction, so a
crash before the commit loses nothing and one after it counts nothing twice — and,
when a bucket changed, gives every changed row the node's next version (its store
incarnation first, then its own flush counter, so a restore from backup never goes back),
records its own ``stat_report`` and sends the changed rows, whole, to the city in one
``stats`` envelope (persist before send: the outbox insert is in the same transaction).
Complaints are rows, not events: when the number about this node changes, their counts
are regrouped from the ``complaint`` table (indexed by about_node, filed_on) and the
buckets that differ are rewritten the same way. With nothing new, a report alone goes
up every ``heartbeat_s`` so ancestors can tell a quiet node from a silent one.

Keeping (``apply_stats``, called by the replicator for a ``stats`` envelope, at every
ancestor on the way up): each row and the report are upserted only if their version is
higher than the one held (``federation.rollup``: highest version wins), so repeats,
reorders and late arrivals are harmless.

Answering (``answer``): totals over the rows of this node's subtree, grouped as asked,
with the coverage of the reports under it and each child's last-heard time.

The ledger decides what to count and when; the rows, reports and cursors are read and
written by the store's repository (``node.store.statistics``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from govnet.federation.rollup import (
    GROUPINGS,
    Coverage,
    Report,
    RowKey,
    VersionedRow,
    coverage,
    grand_total,
    totals,
)
from govnet.federation.routing import root_of
from govnet.federation.tree import in_subtree, level_of, parent_id
from govnet.node.domain.calendar import WorkCalendar, local_date
from govnet.node.domain.clock import Clock
from govnet.node.domain.messages import StatsMessage, StatsReportPart, StatsRowPart
from govnet.node.domain.statistics import (
    COUNTED_ACTIONS,
    COUNTERS,
    RANKINGS,
    ComplaintFact,
    EventFact,
    StatsSettings,
    rank,
    tally,
)
from govnet.node.store import complaints as complaint_rows
from govnet.node.store import statistics as stat_rows
from govnet.node.store.engine import Store
from govnet.node.store.outbox import send
from govnet.node.store.unit import StoreMeta, Unit, next_value, utc_text

log = logging.getLogger("govnet.stats")

KIND = StatsMessage.KIND
EVENT_CURSOR = "stats_event_id"  # meta: last case_event id looked at
COMPLAINTS_SEEN = "stats_complaints"  # meta: complaints about this node counted so far
BATCH = 20_000  # events per flush at most (a first flush of an old store goes in steps)
INCARNATION_SHIFT = 32  # version = incarnation · 2^32 + the store's own flush counter


class StatsQueryError(ValueError):
    """A statistics question that cannot be answered as asked; the text says what to fix."""


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _row_part(values: dict[str, Any]) -> StatsRowPart:
    """A row as this node keeps it, as it travels up."""
    return StatsRowPart(values["node"], values["day"], values["item_code"], values["department"],
                        {c: values[c] for c in COUNTERS}, values["version"], values["computed_at"])


class StatsLedger:
    """This node's counting of its own facts (see the module docstring)."""

    def __init__(self, store: Store, calendar: WorkCalendar, settings: StatsSettings | None = None) -> None:
        self.store = store
        self.calendar = calendar
        self.settings = settings or StatsSettings()
        self._last_report: datetime | None = None

    # --- when to flush ---

    def pending(self) -> bool:
        """Whether facts have arrived since the last flush (a cheap read; blocking)."""
        with self.store.reading() as s:
            top = stat_rows.last_event_id(s)
            about = complaint_rows.count_about(s, self.store.meta.node_id)
            seen_event = stat_rows.cursor(s, EVENT_CURSOR)
            seen_complaints = stat_rows.cursor(s, COMPLAINTS_SEEN)
        return top != seen_event or about != seen_complaints

    def heartbeat_due(self, now: datetime) -> bool:
        return self._last_report is None or now - self._last_report >= timedelta(seconds=self.settings.heartbeat_s)

    def flush_now(self, now: datetime, report: bool = False) -> bool:
        """One flush as its own transaction (blocking); True if a report was recorded."""
        with self.store.transaction() as s:
            return self.flush(s, now, report)

    # --- the unit of work ---

    def flush(self, s: Unit, now: datetime, report: bool = False) -> bool:
        """Count what is new, store this node's changed rows and report, send them up.

        ``report``: record (and send) a report even if nothing changed (the heartbeat).
        Returns whether a report was recorded."""
        me = self.store.meta.node_id
        cursor = stat_rows.cursor(s, EVENT_CURSOR)
        rows = stat_rows.events_after(s, cursor, BATCH)
        facts = [f for f in (self._fact(s, me, r) for r in rows) if f is not None]
        complete = len(rows) < BATCH
        counts = tally(facts, (), self.calendar)
        if rows:
            cursor = rows[-1][0]
            stat_rows.set_cursor(s, EVENT_CURSOR, cursor)
        changed: dict[tuple[str, str, str], dict[str, int]] = {}
        for bucket, adds in counts.items():
            held = stat_rows.own_counters(s, me, bucket)
            for k, v in adds.items():
                held[k] = held.get(k, 0) + v
            changed[bucket] = held
        self._recount_complaints(s, me, changed)
        if not changed and not report:
            return False
        # A store restored from backup has a new incarnation and an older counter: putting the
        # incarnation first keeps its versions above everything it sent before the restore.
        version = (self.store.meta.incarnation << INCARNATION_SHIFT) + next_value(s, "stats_version")
        computed_at = utc_text(now)
        sent = []
        for (day, item, dept), values in sorted(changed.items()):
            row = VersionedRow(RowKey(me, day, item, dept), version, values)
            sent.append(stat_rows.keep_row(s, row, computed_at))
        held_as_of = stat_rows.report_as_of(s, me)
        # A partial flush (a long backlog) does not claim to be complete up to now.
        as_of = now if complete or held_as_of is None else held_as_of
        children = stat_rows.children(s)
        mine = Report(me, version, as_of, children)
        stat_rows.keep_report(s, mine, now)
        if parent_id(me) is not None:
            message = StatsMessage(StatsReportPart(me, version, utc_text(as_of), children),
                                   tuple(_row_part(r) for r in sent))
            send(s, self.store.meta, target=root_of(me), message=message, case_key=f"{KIND}:{me}", priority=0, now=now)
        self._last_report = now
        return True

    def _recount_complaints(self, s: Unit, me: str, changed: dict[tuple[str, str, str], dict[str, int]]) -> None:
        """Complaints about this node are rows kept in step by their supervisor; when their
        number changes, regroup them and rewrite the buckets whose count differs."""
        about = complaint_rows.count_about(s, me)
        if about == stat_rows.cursor(s, COMPLAINTS_SEEN):
            return
        facts = [ComplaintFact(date.fromisoformat(day), item or "", dept or "") for day, item, dept in
                 complaint_rows.filed_about(s, me)]
        now_counts = {b: c.get("complaints", 0) for b, c in tally((), facts, self.calendar).items()}
        held = stat_rows.complaint_buckets(s, me)
        for bucket in set(now_counts) | set(held):
            wanted = now_counts.get(bucket, 0)
            row = changed.get(bucket) or stat_rows.own_counters(s, me, bucket)
            if row.get("complaints", 0) != wanted:
                row["complaints"] = wanted
                changed[bucket] = row
        stat_rows.set_cursor(s, COMPLAINTS_SEEN, about)

    def _fact(self, s: Unit, me: str, r: tuple[Any, ...]) -> EventFact | None:
        (_id, origin, superseded, action, detail, happened_at, receipt, item_code, department, accepted_on,
         decided_on, due, paused_days, decision, issuer, version, fees_due) = r
        if origin != me or superseded or action not in COUNTED_ACTIONS:
            return None
        day = local_date(datetime.fromisoformat(happened_at))
        fact = EventFact(action=action, happened_on=day, item_code=item_code, department=department)
        if action == "evaluate":
            return EventFact(action, day, item_code, department, rating=str(json.loads(detail).get("rating", "")))
        if action == "submit":
            told = json.loads(detail)
            return EventFact(action, day, item_code, department, agent=str(told.get("agent", "")),
                             case_type=str(told.get("case_type", "")))
        if action in ("pay", "waive_fee"):
            told = json.loads(detail)
            amount = told.get("amount_fen" if action == "pay" else "waived_fen", 0)
            return EventFact(action, day, item_code, department, fees_fen=amount if isinstance(amount, int) else 0)
        if action in ("approve", "reject"):
            accepted = stat_rows.first_accepted_at(s, receipt, me)
            here = local_date(datetime.fromisoformat(accepted)) if accepted else None
            return EventFact(action, day, item_code, department, accepted_here_on=here)
        if action == "complete":
            return EventFact(action, day, item_code, department, accepted_on=_date(accepted_on),
                             decided_on=_date(decided_on), due=_date(due), paused_days=int(paused_days or 0),
                             decision=decision, fees_fen=int(fees_due or 0))
        return fact

    # --- the node process's loop ---

    async def run(self, clock: Clock, stop: asyncio.Event, after_send: Callable[[], None] = lambda: None) -> None:
        """Flush every ``flush_interval_s`` when something is new (or a heartbeat is due) until ``stop``."""
        interval = self.settings.flush_interval_s
        while not stop.is_set():
            try:
                now = clock.now()
                beat = self.heartbeat_due(now)
                due = beat or await asyncio.to_thread(self.pending)
                if due and await self.store.run_unit(partial(self.flush, now=now, report=beat)):
                    after_send()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next interval tries again; the cursor is durable
                log.exception("statistics flush failed")
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass


# --- what ancestors do with a descendant's rows ---


def apply_stats(s: Unit, message: StatsMessage, origin: str, now: datetime) -> None:
    """Keep a descendant's rows and report where newer than held (highest version wins).

    A node reports only its own counts: rows or a report about another node are refused
    (``ValueError``: the envelope goes to quarantine)."""
    r = message.report
    rows = [VersionedRow(RowKey(p.node, p.day, p.item_code, p.department), p.version, dict(p.counters))
            for p in message.rows]
    try:
        report = Report(r.node, r.version, datetime.fromisoformat(r.as_of), r.children)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"malformed statistics report from {origin}: {exc.__class__.__name__}: {exc}") from None
    strangers = {row.key.node for row in rows if row.key.node != origin} | ({report.node} - {origin})
    if strangers:
        raise ValueError(f"statistics from {origin} about other nodes ({', '.join(sorted(strangers))}): "
                         "a node reports only its own counts")
    for row, part in zip(rows, message.rows):
        stat_rows.keep_row(s, row, part.computed_at)
    stat_rows.keep_report(s, report, now)


RESENT_ROWS = 200  # rows per envelope when every row is sent again (a year of one node: a few thousand)


def resend_all(s: Unit, meta: StoreMeta, now: datetime) -> int:
    """Send every row of this node's own again, with the versions they have, and its report (an
    ancestor was restored from an older backup and lost what it kept of them; every other
    ancestor keeps what it holds: highest version wins). Returns the number of envelopes."""
    me = meta.node_id
    report = stat_rows.report_of(s, me)
    if report is None or parent_id(me) is None:
        return 0  # never counted anything yet: nothing was lost
    part = StatsReportPart(me, report.version, utc_text(report.as_of), report.children)
    rows = stat_rows.columns_of(s, me)
    chunks = [rows[i:i + RESENT_ROWS] for i in range(0, len(rows), RESENT_ROWS)] or [[]]
    for chunk in chunks:
        send(s, meta, target=root_of(me), message=StatsMessage(part, tuple(_row_part(r) for r in chunk)),
             case_key=f"{KIND}:{me}", priority=0, now=now)
    return len(chunks)


# --- answering ---


@dataclass(frozen=True)
class StatsAnswer:
    node: str  # the root of the subtree the figures are about (the answering node, or a node below it)
    by: str
    first_day: str
    last_day: str
    groups: dict[str, dict[str, int]]  # in rank order when ranked, else by key
    total: dict[str, int]
    coverage: Coverage
    answered_at: datetime
    answered_by: str = ""
    rank_by: str = ""  # "" = not ranked
    descending: bool = True


def check_question(by: str, first_day: str, last_day: str) -> tuple[str, str, str]:
    """Validate a question's grouping and dates (``YYYY-MM-DD``; empty: open)."""
    by = by.strip() or "node"
    if by not in GROUPINGS:
        raise StatsQueryError(f"by: {by!r} is not one of {', '.join(GROUPINGS)}")
    days = []
    for name, text in (("from", first_day), ("to", last_day)):
        text = text.strip()
        if text:
            try:
                text = date.fromisoformat(text).isoformat()
            except ValueError:
                raise StatsQueryError(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None
        days.append(text)
    if days[0] and days[1] and days[0] > days[1]:
        raise StatsQueryError(f"from {days[0]} is after to {days[1]}: swap them")
    return by, days[0], days[1]


_BY_COLUMN = {"item": "item_code", "department": "department", "day": "day"}


def check_drill(me: str, subtree: str, rank_by: str) -> tuple[str, str]:
    """The root of the figures asked for (``subtree``: this node or one below it; "": this node)
    and the ranking (``rank_by``: a rate or a counter, ``statistics.RANKINGS``; "": none)."""
    root = subtree.strip() or me
    try:
        level_of(root)
    except ValueError as exc:
        raise StatsQueryError(f"subtree: {root!r} is not a node id ({exc})") from None
    if not in_subtree(root, me):
        raise StatsQueryError(f"subtree: node {root} is not in the subtree of node {me}: ask one of its ancestors")
    rank_by = rank_by.strip()
    if rank_by and rank_by not in RANKINGS:
        raise StatsQueryError(f"rank_by: {rank_by!r} is not one of {', '.join(RANKINGS)}")
    return root, rank_by


def answer(store: Store, by: str, first_day: str, last_day: str, now: datetime, subtree: str = "",
           rank_by: str = "", descending: bool = True) -> StatsAnswer:
    """Totals over this node's subtree (or the subtree of ``subtree``, a node below it: the
    drill-down), grouped ``by``, ranked by ``rank_by`` if given, with their coverage (blocking read).

    A city holds a row per node, day, item and department for years; SQLite sums them
    first (per node, or per item / department / day over the subtree's nodes), and the
    tree's groupings (``federation.rollup.totals``) run over those few sums."""
    by, first_day, last_day = check_question(by, first_day, last_day)
    here = store.meta.node_id
    me, rank_by = check_drill(here, subtree, rank_by)
    column = _BY_COLUMN.get(by)
    days = (first_day or "0000-00-00", last_day or "9999-99-99")
    with store.reading() as s:
        mine = [n for n in stat_rows.nodes_with_rows(s) if in_subtree(n, me)]
        if column is None:
            raw = stat_rows.sums_by_node(s, *days)
            rows = [VersionedRow(RowKey(n, "", "", ""), 0, dict(zip(COUNTERS, c))) for n, *c in raw]
        else:
            raw = stat_rows.sums_by_column(s, column, mine, *days)
            rows = [VersionedRow(RowKey(me, **{"day": "", "item_code": "", "department": "", column: g}), 0,
                                 dict(zip(COUNTERS, c))) for g, *c in raw]
        reports = stat_rows.reports(s)
        # Hellos are heard only from this node's own children: a node below has none to show here.
        heard = stat_rows.children_heard(s) if me == here else {}
    groups = totals(rows, by, me, COUNTERS)
    if rank_by:
        groups = {key: groups[key] for key in rank(groups, rank_by, descending)}
    cover = coverage(me, reports, heard)
    return StatsAnswer(me, by, first_day, last_day, groups, grand_total(groups, COUNTERS), cover, now,
                       answered_by=here, rank_by=rank_by, descending=descending)


def own_rows(store: Store, node: str | None = None) -> Iterable[VersionedRow]:
    """Every row held for ``node`` (default: this node), for tests and tools."""
    with store.reading() as s:
        return stat_rows.rows_of(s, node or store.meta.node_id)
