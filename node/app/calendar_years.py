"""Calendar years published down the tree, and the due dates counted again when one arrives.

The State Council publishes next year's holiday schedule each November or December; until a
node has it, a due date in that year is counted Monday–Friday and is *provisional*
(``WorkCalendar.is_provisional``). The city publishes the year once (``govnet calendar publish
FILE``, the shipped data files' TOML format): it is checked (one year, dates in that year, no
duplicates), stored, added to the city's calendar, and sent to every registered child as a
``calendar`` envelope, addressed to the link like a catalog release. Each child checks it again
(``federation.authority.check_calendar``: only the city above it issues one, and it arrives only
from the parent), keeps it, adds it to its own calendar and sends it on to its own children; a
child that registers later is sent every year held (``send_held``). A year is published once:
the same schedule again changes nothing (an envelope repeated in transit, a second publication
of the same file); a different one for a year held is refused (at the city with a one-line
error; below it, the envelope is quarantined with the reason).

On arrival, in the same unit of work, the node counts again the due dates of every case it owns
that has one running (``deadlines.recomputed_dues`` decides, from what the case records) and
records each move as a ``due_recomputed`` step (the old and the new dates in its detail), which
reaches the origin and the ancestors like every owner event. Only owners write cases: a node
holding a copy hears of the move from the owner. The cards follow (see ``node.domain.deadlines``):
the next scan raises the cards the new due dates have earned; a card on an old due date stays
in the history but is no longer an open alarm.

The calendar in memory is updated before the unit commits (the recount needs it); if the unit
is undone the store does not hold the year and the next copy of the envelope applies it again,
which is harmless: the year's dates are the official ones either way.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from govnet.federation.authority import check_calendar
from govnet.node.app.desk import CaseDesk, DeskError
from govnet.node.app.replication import URGENT, Unauthorized
from govnet.node.domain.calendar import CalendarError, WorkCalendar, YearSchedule, local_date, missing_next_year
from govnet.node.domain.deadlines import DueBasis, recomputed_dues
from govnet.node.domain.lifecycle import FINISHED, RUNNING, Redated, Status, SystemAction
from govnet.node.domain.messages import CalendarMessage
from govnet.node.store import calendar_years as years_store
from govnet.node.store import replicas
from govnet.node.store.cases import load_case_row, record_from_row
from govnet.node.store.engine import Store
from govnet.node.store.models import CaseRow
from govnet.node.store.outbox import send
from govnet.node.store.unit import Conflict, StoreMeta, Unit, utc_text

log = logging.getLogger("govnet.calendar")

# The statuses in which a case still has a due date that matters: its own deadline runs, or
# it was decided and the licence is still to be issued.
WITH_DUES: tuple[str, ...] = tuple(sorted({*RUNNING, Status.APPROVED, Status.REJECTED}))
FINISHED_STATUSES: tuple[str, ...] = tuple(sorted(FINISHED))


@dataclass(frozen=True)
class Published:
    year: int
    new: bool  # False: the same schedule was held already (nothing changed)
    recounted: int  # cases owned here whose due dates moved


class CalendarYears:
    """The years published down the tree, held here: applying them and counting dues again."""

    def __init__(self, store: Store, calendar: WorkCalendar, desk: CaseDesk) -> None:
        self.store = store
        self.calendar = calendar
        self.desk = desk
        with store.reading() as s:
            for row in years_store.published_years(s):
                try:
                    self.calendar.learn(YearSchedule.from_text(row.schedule, f"published year {row.year}"))
                except CalendarError as exc:  # checked when stored; a later release may be stricter
                    log.warning("published calendar year not usable", extra={"year": row.year, "error": str(exc)})

    @property
    def here(self) -> str:
        return self.store.meta.node_id

    def publish(self, s: Unit, text: str, where: str, now: datetime) -> Published:
        """A year published at this node (the city): checked, kept, counted, sent down.
        Raises ``CalendarError`` (a bad file), ``Unauthorized`` (not the city) or ``Conflict``
        (another schedule for a year already published)."""
        refusal = check_calendar(self.here, self.here, local=True)
        if refusal is not None:
            raise Unauthorized(refusal)
        schedule = YearSchedule.from_text(text, where)
        return self._take(s, CalendarMessage(schedule.year, self.here, text, utc_text(now)), schedule, now)

    def apply(self, s: Unit, message: CalendarMessage, now: datetime) -> None:
        """A year from the parent: checked, kept if new, counted, sent on. Quarantined: one not
        issued by this node's city (``Unauthorized``, counted), a bad or conflicting one (``ValueError``)."""
        refusal = check_calendar(self.here, message.issuer, local=False)
        if refusal is not None:
            raise Unauthorized(refusal)  # quarantined and counted (govnet_sync_refused_total)
        try:
            schedule = YearSchedule.from_text(message.schedule, f"calendar year from {message.issuer}")
        except CalendarError as exc:
            raise ValueError(str(exc)) from None
        if schedule.year != message.year:
            raise ValueError(f"the envelope says year {message.year}, its schedule is for {schedule.year}")
        try:
            self._take(s, message, schedule, now)
        except Conflict as exc:
            raise ValueError(str(exc)) from None

    def _take(self, s: Unit, message: CalendarMessage, schedule: YearSchedule, now: datetime) -> Published:
        held = years_store.published_year(s, schedule.year)
        if held is not None:
            before = YearSchedule.from_text(held.schedule, f"published year {held.year}")
            if (before.holidays, before.workdays) == (schedule.holidays, schedule.workdays):
                return Published(schedule.year, new=False, recounted=0)
            raise Conflict(f"calendar year {schedule.year} was published already ({held.published_at}) with "
                           "another schedule: a year is published once")
        years_store.keep_year(s, schedule.year, message.issuer, message.schedule, message.published_at, now)
        self.calendar.learn(schedule)
        recounted = self.recount(s, (schedule.year,), now)
        for child in replicas.child_ids(s):
            send_to(s, self.store.meta, child, message, now)
        log.info("calendar year published", extra={"year": schedule.year, "issuer": message.issuer,
                                                   "recounted": recounted})
        return Published(schedule.year, new=True, recounted=recounted)

    def send_held(self, s: Unit, child: str, now: datetime) -> None:
        """Every year held here, to a child that just registered (it may have joined after them)."""
        for row in years_store.published_years(s):
            send_to(s, self.store.meta, child,
                    CalendarMessage(row.year, row.issuer, row.schedule, row.published_at), now)

    def recount(self, s: Unit, years: tuple[int, ...], now: datetime) -> int:
        """Count again the due dates of every case owned here that has some; record each move.

        A date is counted by walking the days from its start to it, so one before 1 January of
        the first year published cannot move: only cases with a date on or after it are read,
        and the cases under review (a lower level's review limit is kept in their history, not
        in a column)."""
        moved = 0
        reaching = date(min(years), 1, 1).isoformat()
        for receipt in years_store.owned_receipts(s, self.here, WITH_DUES, reaching, Status.UNDER_REVIEW.value):
            row = load_case_row(s, receipt)
            assert row is not None
            state = record_from_row(row).state
            try:
                changes = recomputed_dues(state, self._basis(s, row), self.calendar)
                if not changes:
                    continue
                transition = self.desk.decide(state, SystemAction.DUE_RECOMPUTED, Redated(years, changes), now)
            except DeskError as exc:
                # One case that cannot be counted (its catalog release missing here) must not keep
                # the year from every other case and every node below: it keeps its dates, said here.
                log.warning("due dates not counted again", extra={"receipt": receipt, "error": str(exc)})
                continue
            self.desk.write_transition(s, row, transition, now)
            moved += 1
        return moved

    def _basis(self, s: Unit, row: CaseRow) -> DueBasis:
        """What the case's events say its dues were counted from."""
        state = record_from_row(row).state
        item = self.desk.item_at(state.catalog_issuer, state.catalog_version, state.item_code)
        promised, extension = item.promised_days, 0
        review_started: date | None = None
        step_due: date | None = None
        for e in replicas.events_of(s, row.receipt):
            if e.superseded:
                continue
            detail = json.loads(e.detail)
            if e.action == "accept" and "promised_days" in detail:
                promised = int(detail["promised_days"])
            elif e.action == "extend":
                extension += int(detail.get("days", 0))
            elif e.action == "review" and "step_due" in detail:
                review_started = local_date(datetime.fromisoformat(e.happened_at))
                step_due = date.fromisoformat(detail["step_due"])
            elif e.action == SystemAction.DUE_RECOMPUTED.value and "step_due" in detail.get("dues", {}):
                step_due = date.fromisoformat(detail["dues"]["step_due"]["new"])
        if item.authority_level is self.store.meta.level:
            review_started = step_due = None  # the step limit binds only a lower level still holding it
        return DueBasis(promised_days=promised, statutory_days=item.statutory_days, extension_days=extension,
                        review_started=review_started, step_due=step_due)

    def provisional_open(self) -> int:
        """Cases owned here, not finished, whose due date lies in a year without an official schedule."""
        with self.store.reading() as s:
            return years_store.count_due_outside(s, self.here, self.calendar.covered_years, FINISHED_STATUSES)

    @property
    def last_year(self) -> int:
        """The last year with an official schedule (0: none)."""
        return max(self.calendar.covered_years, default=0)

    def status(self, today: date) -> dict[str, Any]:
        """What ``/status`` says of the calendar: the last year held, the coming year if it is
        missing (from 1 November), and the open cases with a provisional due date."""
        return {"last_year": self.last_year, "next_year_missing": missing_next_year(self.calendar, today),
                "provisional_cases": self.provisional_open()}


def startup_warning(calendar: WorkCalendar, today: date) -> str | None:
    """The line a node logs at start from 1 November while the coming year is not published."""
    year = missing_next_year(calendar, today)
    if year is None:
        return None
    return (f"calendar: the holiday schedule of {year} is not published yet; due dates in {year} are "
            f"provisional (counted Monday-Friday) until the city runs 'govnet calendar publish {year}.toml'")


def send_to(s: Unit, meta: StoreMeta, child: str, message: CalendarMessage, now: datetime) -> None:
    send(s, meta, target="", message=message, case_key=f"calendar:{message.year}", priority=URGENT, now=now,
         link=child)
