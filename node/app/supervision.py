"""Electronic supervision at a node: alarms, suspensions, evaluations, rectification, appeals.

Every supervision fact about a case is an event in the OWNER's history, written in the
same transaction as any state change it causes and announced like every owner event
(events to the origin, the summary to the ancestors):

``warn`` / ``overdue``   yellow and red cards on the case's deadline;
``step_overdue``         a step timer passed (a lower level holding an escalated case past its
                         review limit, a joint reviewer past its share);
``timeout_agree``        a silent joint reviewer taken as agreeing (items with timeout default);
``suspend`` / ``resume`` the clock stopped for a hearing, testing, inspection or expert review
                         (lifecycle actions; see ``node.lifecycle``);
``evaluate``             the applicant's rating (five levels), one per case, made where they
                         applied; at another node than the owner it travels as a ``request``;
``rectify_open`` / ``rectify_close``  a dissatisfied rating opens a rectification with its own
                         deadline; ``appeal`` / ``appeal_decided`` contest a rating made in bad faith.

The scanner (``Supervisor.scan``) runs on the owner, also while it is offline: the node
process calls it every ``supervision.scan_interval_s``, the simulation calls it directly.
It records each alarm once per case and kind (``node.deadlines`` decides which are due;
the events already recorded say which are done), so a restart or a second scan adds nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from govnet.node.app import replication
from govnet.node.app.complaints import KIND as COMPLAINT
from govnet.node.app.complaints import ComplaintDesk, apply_complaint
from govnet.node.app.desk import CaseDesk, DeskError, ErrorKind
from govnet.node.domain.calendar import WorkCalendar, local_date
from govnet.node.domain.clock import Clock
from govnet.node.domain.deadlines import (
    ALARM_ACTIONS,
    DISSATISFIED,
    OVERDUE,
    RUNNING,
    STEP_OVERDUE,
    TIMEOUT_AGREE,
    WARN,
    SupervisionSettings,
    Watched,
    check_rating,
    due_alarms,
    is_backfilled,
    recorded_keys,
    rectification_due,
    timeout_agree,
)
from govnet.node.domain.lifecycle import ActParams, EventDraft, Status
from govnet.node.domain.receipt import Receipt, ReceiptError
from govnet.node.process.assembly import NodeCore
from govnet.node.store.engine import Store, query, record_from_row
from govnet.node.store.models import CaseRow
from govnet.node.store.replicas import events_of

log = logging.getLogger("govnet.supervision")

EVALUATE = "evaluate"
RECTIFY_OPEN, RECTIFY_CLOSE = "rectify_open", "rectify_close"
APPEAL, APPEAL_DECIDED = "appeal", "appeal_decided"
CARD = {WARN: "yellow", OVERDUE: "red", STEP_OVERDUE: "red", TIMEOUT_AGREE: "note"}
_RUNNING_SQL = ", ".join(f"'{s.value}'" for s in sorted(RUNNING))


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
        desk.request_handlers[EVALUATE] = self._evaluate_request

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
        recorded = self.store.run_unit(lambda s: self.scan_in(s, now, due))
        if recorded:
            self.desk.after_commit()
        return recorded

    async def scan_async(self) -> int:
        return await asyncio.to_thread(self.scan)

    def _alarmed(self, s: Session, now: datetime) -> list[str]:
        """The running cases this node owns that have an alarm due now."""
        today = local_date(now)
        out = []
        for receipt in self._running(s):
            row = s.get(CaseRow, receipt)
            assert row is not None
            if due_alarms(self._watched(s, row), self.calendar, self.settings, today):
                out.append(receipt)
        return out

    def _running(self, s: Session) -> list[str]:
        return [r for (r,) in query(
            s, f"SELECT receipt FROM case_record WHERE owner = ? AND due IS NOT NULL AND status IN ({_RUNNING_SQL}) "
               "ORDER BY receipt", (self.here,))]

    def scan_in(self, s: Session, now: datetime, receipts: list[str]) -> int:
        """Record the alarms due on ``receipts`` (checked again) as part of the caller's unit of work."""
        today = local_date(now)
        count = 0
        for receipt in receipts:
            row = s.get(CaseRow, receipt)
            assert row is not None
            for alarm in due_alarms(self._watched(s, row), self.calendar, self.settings, today):
                state = record_from_row(row).state
                if alarm.action == TIMEOUT_AGREE:
                    self.desk.write_transition(s, row, timeout_agree(state, alarm), now)
                else:
                    self.desk.record_fact(s, row, EventDraft(
                        action=alarm.action, from_status=row.status, to_status=row.status, actor="govnet",
                        reason=_alarm_reason(alarm.action, alarm.detail), detail=alarm.detail), now)
                count += 1
        return count

    def _watched(self, s: Session, row: CaseRow) -> Watched:
        state = record_from_row(row).state
        item = self.desk.item_at(state.catalog_issuer, state.catalog_version, state.item_code)
        events = [(e.action, json.loads(e.detail), e.happened_at) for e in events_of(s, row.receipt)
                  if not e.superseded]
        step_due = None
        if item.authority_level is not self.store.meta.level:
            # A lower level still holding a case it must send up: its review limit, set at review.
            reviews = [d for a, d, _ in events if a == "review"]
            if reviews and "step_due" in reviews[-1]:
                step_due = date.fromisoformat(reviews[-1]["step_due"])
        joint_started = None
        starts = [h for a, _, h in events if a == "start_joint"]
        if starts:
            joint_started = local_date(datetime.fromisoformat(starts[-1]))
        return Watched(
            receipt=row.receipt, status=state.status, department=row.department, due=state.due,
            pause_started=state.pause_started, step_due=step_due, joint=state.joint, joint_started=joint_started,
            timeout_default=item.timeout_default, recorded=recorded_keys((a, d) for a, d, _ in events),
        )

    # --- what ops see ---

    def alarms(self) -> list[AlarmView]:
        """Every alarm recorded on a case this node holds, and the case deadlines passed or near
        on the cases its subtree reported up: open ones first, red before yellow."""
        with self.store.reading() as s:
            rows = query(s, f"""
                SELECT e.receipt, e.action, e.detail, e.happened_at, e.recorded_at, c.item_code, c.owner,
                       c.status, coalesce(c.due, '')
                FROM case_event e JOIN case_record c ON c.receipt = e.receipt
                WHERE e.action IN ({', '.join('?' for _ in ALARM_ACTIONS)}) AND NOT e.superseded""",
                ALARM_ACTIONS)
            summaries = query(s, f"""
                SELECT state FROM case_summary
                WHERE status IN ({_RUNNING_SQL}) AND due IS NOT NULL
                  AND receipt NOT IN (SELECT receipt FROM case_record)""")
        views = [AlarmView(receipt=r, kind=a, card=CARD[a], item_code=item, owner=owner, status=status, due=due,
                           since=happened, open=status in RUNNING and a != TIMEOUT_AGREE, detail=json.loads(d),
                           backfilled=is_backfilled(happened, recorded, self.settings))
                 for r, a, d, happened, recorded, item, owner, status, due in rows]
        views += self._watched_from_summaries(summaries)
        order = {"red": 0, "yellow": 1, "note": 2}
        return sorted(views, key=lambda v: (not v.open, order[v.card], v.since, v.receipt))

    def _watched_from_summaries(self, summaries: list[tuple[str]]) -> list[AlarmView]:
        """An ancestor holds only summaries of its subtree's cases: it sees their case deadlines
        as of the last state it heard (computed now, not recorded: the owner records its own)."""
        today = local_date(self.clock.now())
        out = []
        for (text,) in summaries:
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

    def suspend(self, receipt: str, kind: str, days: int, reason: str, actor: str) -> Any:
        return self.desk.act(receipt, "suspend", ActParams(actor=actor, reason=reason, kind=kind.strip(), days=days))

    def resume(self, receipt: str, reason: str, actor: str) -> Any:
        events = self.desk.get(receipt)[1]
        kinds = [e.detail.get("kind", "") for e in events if e.action == "suspend"]
        return self.desk.act(receipt, "resume", ActParams(actor=actor, reason=reason, kind=kinds[-1] if kinds else ""))

    # --- evaluation, rectification, appeal ---

    def evaluate(self, receipt: str, rating: str, comment: str, actor: str) -> Evaluated:
        """The applicant's rating, given where they applied (here): applied at once if this
        node owns the case, otherwise sent to the owner as a request."""
        key = _receipt(receipt)
        try:
            value = check_rating(rating)
        except ValueError as exc:
            raise DeskError(ErrorKind.INVALID, str(exc), "rating") from None
        if len(comment) > 500:
            raise DeskError(ErrorKind.INVALID, "comment is longer than 500 characters", "comment")
        params = {"rating": value, "comment": comment.strip(), "at": self.here, "actor": actor.strip() or "applicant"}
        now = self.clock.now()
        done = self.store.run_unit(lambda s: self._evaluate_here(s, key, params, now))
        self.desk.after_commit()
        return done

    def _evaluate_here(self, s: Session, receipt: str, params: dict[str, Any], now: datetime) -> Evaluated:
        row = s.get(CaseRow, receipt)
        if row is None:
            raise DeskError(ErrorKind.NOT_FOUND, f"no case {receipt} on node {self.here}", "receipt")
        if row.origin != self.here and row.owner != self.here:
            raise DeskError(ErrorKind.PRECONDITION,
                            f"case {receipt} was applied for at node {row.origin}: the applicant rates it there")
        self._check_ratable(s, row)
        if row.owner != self.here:
            replication.request(s, self.store.meta, row, EVALUATE, params, now)
            return Evaluated(receipt, params["rating"], row.owner, "")
        due = self._record_rating(s, row, params, now)
        return Evaluated(receipt, params["rating"], "", due)

    def _check_ratable(self, s: Session, row: CaseRow) -> None:
        if row.status != Status.DELIVERED:
            raise DeskError(ErrorKind.PRECONDITION,
                            f"case {row.receipt} is {row.status}: it can be rated once it has been delivered")
        earlier = _facts(s, row.receipt, EVALUATE)
        if earlier:
            raise DeskError(ErrorKind.PRECONDITION,
                            f"case {row.receipt} was already rated {earlier[0]['rating']}: one rating per case")

    def _evaluate_request(self, s: Session, row: CaseRow, params: dict[str, Any], now: datetime) -> None:
        """A rating made at the origin, arriving at the owner (refusals go on the record)."""
        try:
            params = {**params, "rating": check_rating(str(params.get("rating", "")))}
        except ValueError as exc:
            raise DeskError(ErrorKind.INVALID, str(exc), "rating") from None
        self._check_ratable(s, row)
        self._record_rating(s, row, params, now)

    def _record_rating(self, s: Session, row: CaseRow, params: dict[str, Any], now: datetime) -> str:
        rating = params["rating"]
        self.desk.record_fact(s, row, EventDraft(
            action=EVALUATE, from_status=row.status, to_status=row.status, actor=params.get("actor") or "applicant",
            reason=params.get("comment", ""),
            detail={"rating": rating, "comment": params.get("comment", ""), "at": params.get("at", self.here)}), now)
        if rating not in DISSATISFIED:
            return ""
        due = rectification_due(self.calendar, local_date(now), self.settings).isoformat()
        self.desk.record_fact(s, row, EventDraft(
            action=RECTIFY_OPEN, from_status=row.status, to_status=row.status, actor="govnet",
            reason=f"rated {rating}: rectify by {due}",
            detail={"due": due, "working_days": self.settings.rectification_days}), now)
        return due

    def rectify(self, receipt: str, note: str, actor: str) -> dict[str, Any]:
        """Close the rectification a dissatisfied rating opened (at the owner)."""
        key = _receipt(receipt)
        if not note.strip():
            raise DeskError(ErrorKind.INVALID, "say what was rectified (--note)", "note")
        if not actor.strip():
            raise DeskError(ErrorKind.INVALID, "who closes the rectification? give the actor", "actor")

        def work(s: Session) -> dict[str, Any]:
            row = self._owned(s, key)
            opened = _facts(s, key, RECTIFY_OPEN)
            if not opened:
                raise DeskError(ErrorKind.PRECONDITION, f"case {key} has no rectification: only a dissatisfied "
                                                        "rating opens one")
            if _facts(s, key, RECTIFY_CLOSE):
                raise DeskError(ErrorKind.PRECONDITION, f"the rectification of case {key} is already closed")
            today = local_date(self.clock.now())
            detail = {"due": opened[0]["due"], "on_time": today.isoformat() <= opened[0]["due"], "note": note.strip()}
            self.desk.record_fact(s, row, EventDraft(action=RECTIFY_CLOSE, from_status=row.status,
                                                     to_status=row.status, actor=actor.strip(), reason=note.strip(),
                                                     detail=detail), self.clock.now())
            return detail

        done = self.store.run_unit(work)
        self.desk.after_commit()
        return done

    def appeal(self, receipt: str, reason: str, actor: str) -> None:
        """The owner contests a rating it holds to be made in bad faith."""
        key = _receipt(receipt)
        if not reason.strip():
            raise DeskError(ErrorKind.INVALID, "an appeal needs its reason: why was the rating made in bad faith?",
                            "reason")
        if not actor.strip():
            raise DeskError(ErrorKind.INVALID, "who appeals? give the actor", "actor")

        def work(s: Session) -> None:
            row = self._owned(s, key)
            rated = _facts(s, key, EVALUATE)
            if not rated or rated[0]["rating"] not in DISSATISFIED:
                raise DeskError(ErrorKind.PRECONDITION, f"case {key} has no dissatisfied rating to appeal against")
            if _facts(s, key, APPEAL):
                raise DeskError(ErrorKind.PRECONDITION, f"the rating of case {key} has already been appealed")
            self.desk.record_fact(s, row, EventDraft(action=APPEAL, from_status=row.status, to_status=row.status,
                                                     actor=actor.strip(), reason=reason.strip(),
                                                     detail={"reason": reason.strip(), "rating": rated[0]["rating"]}),
                                  self.clock.now())

        self.store.run_unit(work)
        self.desk.after_commit()

    def decide_appeal(self, receipt: str, upheld: bool, reason: str, actor: str) -> None:
        """The outcome of an appeal: upheld (the rating was in bad faith) or rejected."""
        key = _receipt(receipt)
        if not reason.strip():
            raise DeskError(ErrorKind.INVALID, "give the reason for the appeal's outcome", "reason")
        if not actor.strip():
            raise DeskError(ErrorKind.INVALID, "who decides the appeal? give the actor", "actor")

        def work(s: Session) -> None:
            row = self._owned(s, key)
            if not _facts(s, key, APPEAL):
                raise DeskError(ErrorKind.PRECONDITION, f"case {key} has no appeal to decide")
            if _facts(s, key, APPEAL_DECIDED):
                raise DeskError(ErrorKind.PRECONDITION, f"the appeal on case {key} has already been decided")
            self.desk.record_fact(s, row, EventDraft(action=APPEAL_DECIDED, from_status=row.status,
                                                     to_status=row.status, actor=actor.strip(), reason=reason.strip(),
                                                     detail={"upheld": upheld, "reason": reason.strip()}),
                                  self.clock.now())

        self.store.run_unit(work)
        self.desk.after_commit()

    def _owned(self, s: Session, receipt: str) -> CaseRow:
        row = s.get(CaseRow, receipt)
        if row is None:
            raise DeskError(ErrorKind.NOT_FOUND, f"no case {receipt} on node {self.here}", "receipt")
        if row.owner != self.here:
            raise DeskError(ErrorKind.PRECONDITION, f"case {receipt} is handled by node {row.owner}: do this there")
        return row


def _facts(s: Session, receipt: str, action: str) -> list[dict[str, Any]]:
    """The details of the events of ``action`` on a case, oldest first."""
    rows = query(s, "SELECT detail FROM case_event WHERE receipt = ? AND action = ? AND NOT superseded ORDER BY seq",
                 (receipt, action))
    return [json.loads(d) for (d,) in rows]


def _receipt(text: str) -> str:
    try:
        return str(Receipt.parse(text))
    except ReceiptError as exc:
        raise DeskError(ErrorKind.INVALID, str(exc), "receipt") from None


def _alarm_reason(action: str, detail: dict[str, Any]) -> str:
    if action == WARN:
        return f"due {detail['due']}: {detail['working_days_left']} working day(s) left"
    if action == OVERDUE:
        return f"past its due date {detail['due']}"
    return f"{detail.get('step', '')} by {detail.get('department', '')} past {detail.get('due', '')}"



def attach(core: NodeCore, settings: SupervisionSettings) -> tuple[Supervisor, ComplaintDesk]:
    """Give an assembled node its supervision: the scanner and evaluations on the desk, and
    complaints with their envelope kind on the replicator."""
    desk = core.desk
    desk.backfill_after = timedelta(seconds=settings.backfill_after_s)
    supervisor = Supervisor(core.store, desk, desk.calendar, desk.clock, settings)
    # Looked up at call time: the node process wires ``after_commit`` to its link driver later.
    complaints = ComplaintDesk(core.store, desk.calendar, desk.clock, settings, after_commit=lambda: desk.after_commit())
    meta = core.store.meta
    core.replicator.kinds[COMPLAINT] = lambda s, payload: apply_complaint(s, meta, payload)
    return supervisor, complaints


async def run_scanner(supervisor: Supervisor, stop: asyncio.Event, interval_s: float) -> None:
    """The node's scanner: at start, then every ``interval_s`` until ``stop`` (no link needed:
    deadlines run on the owner even while it is offline). A failed scan is logged; the next retries."""
    while not stop.is_set():
        try:
            recorded = await supervisor.scan_async()
            if recorded:
                log.info("alarms recorded", extra={"recorded": recorded})
        except Exception:
            log.exception("supervision scan failed")
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except TimeoutError:
            pass
