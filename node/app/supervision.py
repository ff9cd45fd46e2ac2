"""Electronic supervision at a node: alarms, suspensions, evaluations, rectification, appeals.

Every supervision fact about a case is an event in the OWNER's history, written in the
same transaction as any state change it causes and announced like every owner event
(events to the origin, the summary to the ancestors):

``warn`` / ``overdue``   yellow and red cards on the case's deadline;
``step_overdue``         a step timer passed (a lower level holding an escalated case past its
                         review limit, a joint reviewer past its share);
``timeout_agree``        a silent joint reviewer taken as agreeing (items with timeout default);
``deem_accept``          a received case neither accepted nor refused within 5 working days of its
                         arrival, accepted as of that day (art. 32; a yellow ``warn`` comes first);
``suspend`` / ``resume`` the clock stopped for a hearing, testing, inspection or expert review
                         (lifecycle actions; see ``node.domain.lifecycle``);
``evaluate``             the applicant's rating (five levels), one per case, made where they
                         applied; at another node than the owner it travels as a ``request``;
``rectify_open`` / ``rectify_close``  a dissatisfied rating opens a rectification with its own
                         deadline; ``appeal`` / ``appeal_decided`` contest a rating made in bad faith.

Each of these is a step of the lifecycle's table (``lifecycle.decide``): this module reads
what a step needs (the case, the rating record its events hold), lets the table decide,
and writes the verdict through the desk. The reads are store functions
(``node.store.supervision``, ``node.store.case_history``).

The scanner (``Supervisor.scan``) runs on the owner, also while it is offline: the node
process calls it every ``supervision.scan_interval_s``, the simulation calls it directly.
It records each alarm once per case and kind (``node.domain.deadlines`` decides which are due;
the events already recorded say which are done), so a restart or a second scan adds nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from govnet.federation.tree import ancestors, is_ancestor
from govnet.node.app import replication
from govnet.node.app.audit import ALARM as AUDIT_ALARM
from govnet.node.app.desk import CaseDesk, DeskError, ErrorKind, check_allowed, checked
from govnet.node.domain.calendar import CHINA_TZ, WorkCalendar, local_date
from govnet.node.domain.catalog import ServiceItem
from govnet.node.domain.clock import Clock
from govnet.node.domain.deadlines import (
    ACCEPTANCE,
    ALARM_ACTIONS,
    DEEM_ACCEPT,
    OVERDUE,
    STEP_OVERDUE,
    TIMEOUT_AGREE,
    WARN,
    SupervisionSettings,
    Watched,
    acceptance_watched_until,
    accepts_here,
    card_is_current,
    due_alarms,
    is_backfilled,
    recorded_keys,
)
from govnet.node.domain.lifecycle import (
    RATINGS,
    RECTIFY_OPEN,
    RUNNING,
    ActParams,
    CaseState,
    DeemedAcceptance,
    FollowUp,
    Rating,
    Status,
    SystemAction,
    Transition,
    check_rating,
)
from govnet.node.domain.limits import case_budget
from govnet.node.domain.messages import RectificationMessage
from govnet.node.domain.people import Facts, Op, Person
from govnet.node.domain.receipt import Receipt, ReceiptError
from govnet.node.store import audit as audit_chain
from govnet.node.store import links as link_store
from govnet.node.store.case_history import rating_record
from govnet.node.store.cases import load_case_row, read_case_row, record_from_row
from govnet.node.store.engine import Store
from govnet.node.store.models import CaseRow, CaseSummary, Rectification
from govnet.node.store.outbox import send
from govnet.node.store.replicas import events_of
from govnet.node.store.supervision import (
    alarm_rows,
    keep_rectification,
    open_rectifications,
    received_receipts,
    running_receipts,
    running_summaries,
)
from govnet.node.store.unit import StoreMeta, Unit, utc_text

log = logging.getLogger("govnet.supervision")

EVALUATE = SystemAction.EVALUATE.value
APPEAL_DECIDED = SystemAction.APPEAL_DECIDED.value
CARD = {WARN: "yellow", OVERDUE: "red", STEP_OVERDUE: "red", TIMEOUT_AGREE: "note", DEEM_ACCEPT: "red"}
_ONCE = (TIMEOUT_AGREE, DEEM_ACCEPT)  # facts recorded once: never "open" alarms to act on
RECTIFICATION = "rectification"  # the alarm kind of an open rectification (整改), here or below


@dataclass(frozen=True)
class AlarmView:
    """One alarm as ``govnet alarms`` lists it."""

    receipt: str
    kind: str
    card: str  # yellow | red | note
    item_code: str
    owner: str
    status: str
    due: str
    since: str  # when it was raised (RFC 3339)
    open: bool  # the case is still running (not yet decided or closed)
    detail: dict[str, Any]
    backfilled: bool
    provisional: bool = False  # the due date lies in a year whose holiday schedule is not published yet


@dataclass(frozen=True)
class Evaluated:
    receipt: str
    rating: str
    forwarded_to: str  # the owner, when the rating was sent on as a request
    rectification_due: str  # set when this node (the owner) opened a rectification


class Supervisor:
    def __init__(self, store: Store, desk: CaseDesk, calendar: WorkCalendar, clock: Clock,
                 settings: SupervisionSettings) -> None:
        self.store = store
        self.desk = desk
        self.calendar = calendar
        self.clock = clock
        self.settings = settings

    @property
    def here(self) -> str:
        return self.store.meta.node_id

    # --- the scanner ---

    def scan(self) -> int:
        """Record every alarm due now on the cases this node owns; returns how many (blocking).

        Looking is done in a read transaction; only the cases with an alarm due are then
        written, in one unit of work that checks them again (so intake never waits for a
        scan of every running case)."""
        now = self.clock.now()
        with self.store.reading() as s:
            due = self._alarmed(s, now)
        if not due:
            return 0
        with self.store.transaction() as s:
            recorded = self.scan_in(s, now, due)
        if recorded:
            self.desk.after_commit()
        return recorded

    def _alarmed(self, s: Unit, now: datetime) -> list[str]:
        """The running cases this node owns that have an alarm due now."""
        if link_store.catching_up(s):
            # Restored from a backup: a case's later history may still be on its way back from the
            # neighbours, and an alarm written meanwhile would collide with it (see node.store.backup).
            return []
        today = local_date(now)
        out = []
        # A received case arrived after it was submitted: one submitted too recently has no acceptance alarm yet.
        newest = acceptance_watched_until(today, self.settings) + timedelta(days=1)
        before = utc_text(datetime.combine(newest, time(0), tzinfo=CHINA_TZ))
        for receipt in [*received_receipts(s, self.here, before), *running_receipts(s, self.here)]:
            row = read_case_row(s, receipt)  # only read: every running case, every scan
            assert row is not None
            if due_alarms(self._watched(s, row), self.calendar, self.settings, today):
                out.append(receipt)
        return out

    def scan_in(self, s: Unit, now: datetime, receipts: list[str]) -> int:
        """Record the alarms due on ``receipts`` (checked again) as part of the caller's unit of work."""
        today = local_date(now)
        count = 0
        for receipt in receipts:
            row = load_case_row(s, receipt)
            assert row is not None
            watched = self._watched(s, row)
            for alarm in due_alarms(watched, self.calendar, self.settings, today):
                state = record_from_row(row).state
                params: Any = alarm.note
                if alarm.action == DEEM_ACCEPT:
                    assert watched.arrived is not None
                    params = DeemedAcceptance(item=self._item(state), arrived=watched.arrived,
                                              due=date.fromisoformat(alarm.detail["due"]), reason=alarm.reason)
                recorded = self.desk.decide(state, alarm.step, params, now)
                self.desk.write_transition(s, row, recorded, now)
                count += 1
        return count

    def _item(self, state: CaseState) -> ServiceItem:
        return self.desk.item_at(state.catalog_issuer, state.catalog_version, state.item_code)

    def _watched(self, s: Unit, row: CaseRow) -> Watched:
        state = record_from_row(row).state
        item = self._item(state)
        history = [e for e in events_of(s, row.receipt) if not e.superseded]
        events = [(e.action, json.loads(e.detail), e.happened_at) for e in history]
        step_due = None
        if item.authority_level is not self.store.meta.level:
            # A lower level still holding a case it must send up: its review limit, set at review.
            reviews = [d for a, d, _ in events if a == "review"]
            if reviews and "step_due" in reviews[-1]:
                step_due = date.fromisoformat(reviews[-1]["step_due"])
                step_due = recounted_step_due(events) or step_due
        joint_started = None
        starts = [h for a, _, h in events if a == "start_joint"]
        if starts:
            joint_started = local_date(datetime.fromisoformat(starts[-1]))
        arrived = arrival_recorded = None
        if state.status is Status.RECEIVED and accepts_here(self.store.meta.level, item):
            # The acceptance deadline counts from the day the application reached this node: the
            # day it was taken over (carried up by an agent point), or submitted here.
            arrivals = [(e.happened_at, e.recorded_at) for e in history
                        if e.action in (SystemAction.TAKE_OVER.value, "submit")]
            happened, recorded = (datetime.fromisoformat(t) for t in arrivals[-1])
            arrived, arrival_recorded = local_date(happened), local_date(recorded)
        return Watched(
            receipt=row.receipt, status=state.status, department=row.department, due=state.due,
            pause_started=state.pause_started, step_due=step_due, joint=state.joint, joint_started=joint_started,
            timeout_default=item.timeout_default, recorded=recorded_keys((a, d) for a, d, _ in events),
            arrived=arrived, arrival_recorded=arrival_recorded,
        )

    # --- what ops see ---

    def alarms(self) -> list[AlarmView]:
        """Every alarm recorded on a case this node holds, and the case deadlines passed or near
        on the cases its subtree reported up: open ones first, red before yellow."""
        with self.store.reading() as s:
            rows = alarm_rows(s, ALARM_ACTIONS)
            summaries = running_summaries(s)
            broken = audit_chain.broken_chains(s)
            rectifications = open_rectifications(s)
        views = [AlarmView(receipt=r, kind=a, card=CARD[a], item_code=item, owner=owner, status=status, due=due,
                           since=happened, detail=json.loads(d),
                           open=_still_open(a, json.loads(d), status) and card_is_current(a, json.loads(d), due),
                           backfilled=is_backfilled(happened, recorded, self.settings))
                 for r, a, d, happened, recorded, item, owner, status, due in rows]
        views += self._watched_from_summaries(summaries)
        views += self._rectifications(rectifications)
        # A descendant whose audit chain was rewritten (node.app.audit): about a node, not a case.
        views += [AlarmView(receipt="", kind=AUDIT_ALARM, card="red", item_code="", owner=node, status="", due="",
                            since=since, open=True, detail={"node": node, "reason": why}, backfilled=False)
                  for node, why, since in broken]
        views = [dataclasses.replace(v, provisional=self.calendar.is_provisional(date.fromisoformat(v.due)))
                 if v.due else v for v in views]
        order = {"red": 0, "yellow": 1, "note": 2}
        return sorted(views, key=lambda v: (not v.open, order[v.card], v.since, v.receipt))

    def _rectifications(self, rows: list[Rectification]) -> list[AlarmView]:
        """Open rectifications, here and in the whole subtree (their owners send them up): red
        once past their due date, yellow before."""
        today = local_date(self.clock.now()).isoformat()
        return [AlarmView(receipt=r.receipt, kind=RECTIFICATION, card="red" if today > r.due else "yellow",
                          item_code=r.item_code, owner=r.owner, status="", due=r.due, since=r.opened_at, open=True,
                          detail={"rating": r.rating, "department": r.department, "due": r.due}, backfilled=False)
                for r in rows]

    def _watched_from_summaries(self, summaries: list[str]) -> list[AlarmView]:
        """An ancestor holds only summaries of its subtree's cases: it sees their case deadlines
        as of the last state it heard (computed now, not recorded: the owner records its own)."""
        today = local_date(self.clock.now())
        out = []
        for text in summaries:
            st = json.loads(text)
            paused = st.get("pause_started")
            watched = Watched(receipt=st["receipt"], status=Status(st["status"]), department=st["department"],
                              due=date.fromisoformat(st["due"]),
                              pause_started=date.fromisoformat(paused) if paused else None)
            for alarm in due_alarms(watched, self.calendar, self.settings, today):
                out.append(AlarmView(receipt=st["receipt"], kind=alarm.action, card=CARD[alarm.action],
                                     item_code=st["item_code"], owner=st["owner"], status=st["status"], due=st["due"],
                                     since="", open=True, detail={**alarm.detail, "from_summary": True},
                                     backfilled=False))
        return out

    # --- suspensions (lifecycle actions; the resume names the suspension it ends) ---

    async def suspend(self, receipt: str, kind: str, days: int, reason: str, actor: str,
                      person: Person | None = None) -> Any:
        m = "SuspendRequest"
        kind = checked(m, "kind", kind, what="hearing, testing, inspection or expert_review")
        reason = checked(m, "reason", reason, what=f"why the clock stops for {kind}, told to the applicant")
        actor = checked(m, "actor", person.actor if person is not None else actor, what="who suspends the case")
        return await self.desk.act(receipt, "suspend", ActParams(actor=actor, reason=reason, kind=kind, days=days),
                                   person=person)

    async def resume(self, receipt: str, reason: str, actor: str, person: Person | None = None) -> Any:
        reason = checked("ResumeRequest", "reason", reason)
        actor = checked("ResumeRequest", "actor", person.actor if person is not None else actor,
                        what="who resumes the case")
        events = (await asyncio.to_thread(self.desk.get, receipt))[1]
        kinds = [e.detail.get("kind", "") for e in events if e.action == "suspend"]
        return await self.desk.act(receipt, "resume", ActParams(actor=actor, reason=reason,
                                                                kind=kinds[-1] if kinds else ""), person=person)

    # --- evaluation, rectification, appeal ---

    def evaluate(self, receipt: str, rating: str, comment: str, actor: str,
                 use_code: Callable[[Unit], None] | None = None) -> Evaluated:
        """The applicant's rating, given where they applied (here): applied at once if this
        node owns the case, otherwise sent to the owner as a request.

        ``actor``: the terminal's account, or the applicant who entered the receipt's rating code;
        ``use_code``: uses that code up, in the same unit of work (a refused rating keeps it)."""
        key = _receipt(receipt)
        try:
            value = check_rating(checked("EvaluateRequest", "rating", rating, what=", ".join(RATINGS)))
        except ValueError as exc:
            raise DeskError(ErrorKind.INVALID, str(exc), "rating") from None
        comment = checked("EvaluateRequest", "comment", comment)
        actor = checked("EvaluateRequest", "actor", actor)
        params = {"rating": value, "comment": comment, "at": self.here, "actor": actor or "applicant"}
        now = self.clock.now()
        with self.store.transaction() as s:
            if use_code is not None:
                use_code(s)
            done = self._evaluate_here(s, key, params, now)
        self.desk.after_commit()
        return done

    def _evaluate_here(self, s: Unit, receipt: str, params: dict[str, Any], now: datetime) -> Evaluated:
        row = load_case_row(s, receipt)
        if row is None:
            raise DeskError(ErrorKind.NOT_FOUND, f"no case {receipt} on node {self.here}", "receipt")
        if row.origin != self.here and row.owner != self.here:
            raise DeskError(ErrorKind.PRECONDITION,
                            f"case {receipt} was applied for at node {row.origin}: the applicant rates it there")
        rated = self._rated(s, row, params, now)  # where the case is not owned, checked here before it travels
        if row.owner != self.here:
            replication.request(s, self.store.meta, row, EVALUATE, params, now)
            return Evaluated(receipt, params["rating"], row.owner, "")
        self.desk.write_transition(s, row, rated, now, budget=case_budget(EVALUATE))
        self._publish_rectification(s, row, rated, now)
        opened = [e for e in rated.events if e.action == RECTIFY_OPEN]
        return Evaluated(receipt, params["rating"], "", opened[0].detail["due"] if opened else "")

    def _rated(self, s: Unit, row: CaseRow, params: dict[str, Any], now: datetime) -> Transition:
        """The lifecycle's verdict on a rating (``params`` as a request carries it)."""
        rating = Rating(rating=params["rating"], comment=params.get("comment", ""), at=params.get("at", self.here),
                        actor=params.get("actor") or "applicant", rectification_days=self.settings.rectification_days,
                        record=rating_record(s, row.receipt))
        # At the window where it was applied for, a delivery made here counts before the owner records it.
        state = self.desk.seen_here(s, record_from_row(row)).state
        return self.desk.decide(state, SystemAction.EVALUATE, rating, now)

    def evaluate_request(self, s: Unit, row: CaseRow, params: dict[str, Any], now: datetime) -> None:
        """A rating made at the origin, arriving at the owner (refusals go on the record): the
        replicator hands the desk this handler for ``evaluate`` requests."""
        try:
            params = {**params, "rating": check_rating(str(params.get("rating", "")))}
        except ValueError as exc:
            raise DeskError(ErrorKind.INVALID, str(exc), "rating") from None
        rated = self._rated(s, row, params, now)
        self.desk.write_transition(s, row, rated, now, budget=case_budget(EVALUATE))
        self._publish_rectification(s, row, rated, now)

    def rectify(self, receipt: str, note: str, actor: str, person: Person | None = None) -> dict[str, Any]:
        """Close the rectification a dissatisfied rating opened (at the owner)."""
        key = _receipt(receipt)
        note = checked("RectifyRequest", "note", note, what="say what was rectified (--note)")
        actor = checked("RectifyRequest", "actor", person.actor if person is not None else actor,
                        what="who closes the rectification?")
        done = self._follow_up(key, SystemAction.RECTIFY_CLOSE, note, actor, person=person, op=Op.RECTIFY)
        return dict(done.event.detail)

    def appeal(self, receipt: str, reason: str, actor: str, person: Person | None = None) -> None:
        """The owner contests a rating it holds to be made in bad faith."""
        key = _receipt(receipt)
        reason = checked("AppealRequest", "reason", reason, what="why was the rating made in bad faith?")
        actor = checked("AppealRequest", "actor", person.actor if person is not None else actor, what="who appeals?")
        self._follow_up(key, SystemAction.APPEAL, reason, actor, person=person, op=Op.APPEAL)

    def decide_appeal(self, receipt: str, upheld: bool, reason: str, actor: str,
                      person: Person | None = None) -> str:
        """The outcome of an appeal: upheld (the rating was in bad faith) or rejected.

        With ``person`` (a supervisor, authenticated here): never about its own node, so it is
        decided at a node above the owner (the rated node) and sent to the owner as a request
        (returns the owner it went to). Without ``person`` (the simulation, trusted callers):
        recorded here at the owner."""
        key = _receipt(receipt)
        reason = checked("DecideAppealRequest", "reason", reason, what="give the reason for the appeal's outcome")
        actor = checked("DecideAppealRequest", "actor", person.actor if person is not None else actor,
                        what="who decides the appeal?")
        if person is None:
            self._follow_up(key, SystemAction.APPEAL_DECIDED, reason, actor, upheld=upheld)
            return ""
        now = self.clock.now()
        with self.store.transaction() as s:
            row = load_case_row(s, key)
            summary = s.get(CaseSummary, key) if row is None else None
            owner = row.owner if row is not None else summary.owner if summary is not None else ""
            if not owner:
                raise DeskError(ErrorKind.NOT_FOUND, f"no case {key} on node {self.here}", "receipt")
            check_allowed(person, Op.DECIDE_APPEAL, Facts(node=owner))
            replication.request_to(s, self.store.meta, key, owner, APPEAL_DECIDED,
                                   {"upheld": upheld, "reason": reason, "actor": f"{person.actor}@{self.here}"},
                                   now)
        self.desk.after_commit()
        return owner

    def decide_appeal_request(self, s: Unit, row: CaseRow, params: dict[str, Any], now: datetime) -> None:
        """An appeal's outcome decided by a supervisor above (``params["node"]``: the node that sent
        it, as its envelope says), applied at the owner; refused on the record from anywhere else."""
        node = str(params.get("node", ""))
        if not node or node == self.here or not is_ancestor(node, self.here):
            raise DeskError(ErrorKind.DENIED, f"an appeal about node {self.here} is decided above it, not at "
                            f"{node or 'an unknown node'}")
        followed = FollowUp(reason=str(params.get("reason", "")), actor=str(params.get("actor", "")),
                            record=rating_record(s, row.receipt), upheld=bool(params.get("upheld")))
        self.desk.write_transition(s, row, self.desk.decide(record_from_row(row).state, SystemAction.APPEAL_DECIDED,
                                                            followed, now), now)

    def _follow_up(self, receipt: str, step: SystemAction, reason: str, actor: str, upheld: bool = False,
                   person: Person | None = None, op: str = "") -> Transition:
        """A step after a rating, at the owner, in one unit of work: the lifecycle decides, this writes
        (``person``: checked for ``op`` against the case's department, and recorded as the actor)."""
        if person is not None:
            actor = person.actor

        def work(s: Unit) -> Transition:
            row = self._owned(s, receipt)
            if person is not None:
                check_allowed(person, op, Facts(department=row.department))
            now = self.clock.now()
            params = FollowUp(reason=reason.strip(), actor=actor.strip(), record=rating_record(s, receipt),
                              upheld=upheld)
            done = self.desk.decide(record_from_row(row).state, step, params, now)
            self.desk.write_transition(s, row, done, now, budget=case_budget(step))
            self._publish_rectification(s, row, done, now)
            return done

        with self.store.transaction() as s:
            done = work(s)
        self.desk.after_commit()
        return done

    def _publish_rectification(self, s: Unit, row: CaseRow, done: Transition, now: datetime) -> None:
        """A rectification opened or closed here (the owner): kept here and sent to every ancestor,
        which hold no events and so could not see it otherwise (the city watches the whole tree)."""
        for e in done.events:
            if e.action == RECTIFY_OPEN:
                values = {"rating": rating_record(s, row.receipt).rating, "opened_at": utc_text(now),
                          "due": str(e.detail["due"]), "closed_on": ""}
            elif e.action == SystemAction.RECTIFY_CLOSE.value:
                held = s.get(Rectification, row.receipt)
                record = rating_record(s, row.receipt)
                values = {"rating": record.rating, "opened_at": held.opened_at if held else "",
                          "due": record.rectification_due, "closed_on": local_date(now).isoformat()}
            else:
                continue
            message = RectificationMessage(receipt=row.receipt, owner=self.here, item_code=row.item_code,
                                           department=row.department, updated_at=utc_text(now), **values)
            keep_rectification(s, message.to_dict())
            for ancestor in ancestors(self.here):
                send(s, self.store.meta, target=ancestor, message=message, case_key=f"rectification:{row.receipt}",
                     priority=replication.URGENT, now=now)

    def _owned(self, s: Unit, receipt: str) -> CaseRow:
        row = load_case_row(s, receipt)
        if row is None:
            raise DeskError(ErrorKind.NOT_FOUND, f"no case {receipt} on node {self.here}", "receipt")
        if row.owner != self.here:
            raise DeskError(ErrorKind.PRECONDITION, f"case {receipt} is handled by node {row.owner}: do this there")
        return row


def apply_rectification(s: Unit, meta: StoreMeta, message: RectificationMessage) -> None:
    """A rectification's news arriving at an ancestor of the node that must rectify (a closed one
    stays closed, whatever arrives after)."""
    if not is_ancestor(meta.node_id, message.owner):
        raise ValueError(f"rectification of case {message.receipt} at node {message.owner} does not concern "
                         f"node {meta.node_id}: it goes to that node's ancestors")
    keep_rectification(s, message.to_dict())


def _still_open(action: str, detail: dict[str, Any], status: str) -> bool:
    """Whether an alarm still asks for action: a warning on the acceptance deadline while the case
    waits to be accepted, any other card while the case's own deadline runs; a fact recorded once
    (a timeout agreement, a deemed acceptance) never."""
    if action in _ONCE:
        return False
    if detail.get("step") == ACCEPTANCE:
        return status == Status.RECEIVED
    return status in RUNNING


def recounted_step_due(events: list[tuple[str, dict[str, Any], str]]) -> date | None:
    """The step limit as the last recount of the case's due dates set it (None: never recounted)."""
    for action, detail, _ in reversed(events):
        if action == SystemAction.DUE_RECOMPUTED.value and "step_due" in detail.get("dues", {}):
            return date.fromisoformat(detail["dues"]["step_due"]["new"])
        if action == "review":
            return None
    return None


def _receipt(text: str) -> str:
    checked("EvaluateRequest", "receipt", text, what="the case's receipt number")
    try:
        return str(Receipt.parse(text))
    except ReceiptError as exc:
        raise DeskError(ErrorKind.INVALID, str(exc), "receipt") from None




async def run_scanner(supervisor: Supervisor, stop: asyncio.Event, interval_s: float) -> None:
    """The node's scanner: at start, then every ``interval_s`` until ``stop`` (no link needed:
    deadlines run on the owner even while it is offline). A failed scan is logged; the next retries."""
    while not stop.is_set():
        try:
            recorded = await asyncio.to_thread(supervisor.scan)
            if recorded:
                log.info("alarms recorded", extra={"recorded": recorded})
        except Exception:
            log.exception("supervision scan failed")
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except TimeoutError:
            pass
