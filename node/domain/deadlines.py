"""Deadline rules of electronic supervision (电子监察): which alarms a case has earned today.

The supervision office warns before a case's deadline (a yellow card), raises an alarm
once it has passed (a red card), and watches the steps inside a case too: a lower level
holding an escalated case past its review limit before forwarding it, or a department of
a joint review silent past its share. For items that allow it, a silent department is
taken as agreeing (timeout default, 超时默认).

Everything here is pure: the owner's scanner hands in what it knows of one case
(``Watched``), the working-day calendar, the settings and today's date, and gets back
the alarms to record. Nothing reads a clock or a store, so the same rules run in the
node, in the simulation and in tests.

The clock stops while the case waits for the applicant (a supplement) or for a hearing,
test, inspection or expert review (a suspension): both set ``pause_started``. Counting
from the day the pause began keeps the working days left constant while it lasts; when
the case resumes, the lifecycle pushes the due date back by the paused working days.

This module only decides which alarms are due. Recording one (and taking a silent reviewer
as agreeing) is a step of the lifecycle's table (``lifecycle.decide`` with ``Alarm.step`` and
``Alarm.note``), so it changes the case the way every other step does.

Each alarm is recorded once per case and per kind (per step and department for step
timers): ``Alarm.key`` names it, and the scanner passes the keys already recorded.

The acceptance deadline (Administrative Licensing Law art. 32): a window has 5 working days
(``lifecycle.ACCEPTANCE_DAYS``) from the day an application reaches it to accept it or to
refuse it with its one-time notice. A received case is watched by the node that must accept
it (``accepts_here``: not a village agent point, which forwards an item decided above it at
once), counting from the day it arrived there (``Watched.arrived``: the day it was taken over,
or submitted). A yellow card comes ``warn_working_days`` before the 5 days run out (by default
1: on the 4th working day after arrival); past them, the case is deemed accepted as of its
arrival (``deem_accept``, a step of the lifecycle's table): its deadlines count from that day.
An arrival entered later than it happened (a back-filled paper application) counts its 5 days
from the day it was entered, so the window can enter the acceptance it gave on paper.

Provisional due dates, and counting them again. A due date in a year whose official holiday
schedule is not loaded was counted Monday–Friday (``WorkCalendar.is_provisional``). When the
year is published, the owner counts every open case's due dates again from what the case
records (``recomputed_dues``: the acceptance day, the limit, the working days paused, the
extension; the decision day for the licence's issue date; the review day for a lower level's
step limit) and records each move as a ``due_recomputed`` step. The cards follow the due date:
an alarm's key names the due date it is about, so a moved due date earns its own cards and a
card raised on the old one no longer counts as open (``card_is_current``) — it stays in the
history, as everything does, but a case that is not late under the official calendar is not
shown or counted as late.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from govnet.federation.tree import Level
from govnet.node.domain.calendar import WorkCalendar
from govnet.node.domain.catalog import ServiceItem
from govnet.node.domain.lifecycle import (
    ACCEPTANCE_DAYS,
    ESCALATED_REVIEW_DAYS,
    ISSUE_DAYS,
    RUNNING,
    TOLERANCE_SUPPLEMENT_DAYS,
    CaseState,
    Note,
    Status,
    SystemAction,
)

# The alarms are steps of the lifecycle's table (recording one changes the case's history):
# these are their names as events carry them.
WARN, OVERDUE = SystemAction.WARN.value, SystemAction.OVERDUE.value
STEP_OVERDUE, TIMEOUT_AGREE = SystemAction.STEP_OVERDUE.value, SystemAction.TIMEOUT_AGREE.value
DEEM_ACCEPT = SystemAction.DEEM_ACCEPT.value
ALARM_ACTIONS = (WARN, OVERDUE, STEP_OVERDUE, TIMEOUT_AGREE, DEEM_ACCEPT)
ESCALATION_REVIEW, JOINT_OPINION = "escalation_review", "joint_opinion"
ACCEPTANCE = "acceptance"  # the step a yellow card on a received case is about


@dataclass(frozen=True)
class SupervisionSettings:
    """The ``[supervision]`` section of a node's configuration."""

    warn_working_days: int = 1  # a yellow card this many working days before the due date
    scan_interval_s: float = 60.0  # how often the owner looks for alarms
    rectification_days: int = 15  # time to rectify after a dissatisfied rating
    complaint_days: int = 10  # time the supervising level has to resolve a complaint
    joint_opinion_days: int = 5  # each joint reviewer's share, from the start of the joint review
    backfill_after_s: float = 3600.0  # an event recorded later than this after it happened is back-filled


@dataclass(frozen=True)
class Watched:
    """What the deadline rules need to know of one case held by its owner."""

    receipt: str
    status: Status
    department: str
    due: date | None
    pause_started: date | None = None
    step_due: date | None = None  # a lower level's review limit for an escalated case it still holds
    joint: tuple[tuple[str, str, str], ...] = ()
    joint_started: date | None = None
    timeout_default: bool = False
    recorded: frozenset[str] = frozenset()  # ``Alarm.key`` of every alarm already recorded
    arrived: date | None = None  # a received case this node must accept: the day it arrived here
    arrival_recorded: date | None = None  # the day its arrival was recorded (later, when back-filled)


@dataclass(frozen=True)
class Alarm:
    action: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return alarm_key(self.action, self.detail)

    @property
    def step(self) -> SystemAction:
        return SystemAction(self.action)

    @property
    def note(self) -> Note:
        """The alarm as the lifecycle records it (``decide(case, alarm.step, alarm.note, …)``)."""
        return Note(reason=self.reason, detail=dict(self.detail))

    @property
    def reason(self) -> str:
        d = self.detail
        if self.action == WARN and d.get("step") == ACCEPTANCE:
            return f"not yet accepted: accept or refuse by {d['due']} ({d['working_days_left']} working day(s) left)"
        if self.action == DEEM_ACCEPT:
            return (f"neither accepted nor refused by {d['due']} (5 working days): accepted as of its arrival "
                    f"{d['arrived']} (Administrative Licensing Law art. 32)")
        if self.action == WARN:
            return f"due {d['due']}: {d['working_days_left']} working day(s) left"
        if self.action == OVERDUE:
            return f"past its due date {d['due']}"
        if self.action == TIMEOUT_AGREE:
            return f"{d['department']} gave no opinion by {d['due']}: taken as agreeing"
        return f"{d.get('step', '')} by {d.get('department', '')} past {d.get('due', '')}"


def alarm_key(action: str, detail: dict[str, Any]) -> str:
    """What makes an alarm the same alarm: the kind and the due date it is about (a due date
    moved by an extension or a suspension earns its own cards), and for step timers the step
    and department."""
    if action == STEP_OVERDUE:
        return f"{action}:{detail.get('step', '')}:{detail.get('department', '')}"
    if action == TIMEOUT_AGREE:
        return f"{action}:{detail.get('department', '')}"
    if action == DEEM_ACCEPT:
        return action
    if action == WARN and detail.get("step") == ACCEPTANCE:
        return f"{action}:{ACCEPTANCE}:{detail.get('due', '')}"
    return f"{action}:{detail.get('due', '')}"


def recorded_keys(events: Iterable[tuple[str, dict[str, Any]]]) -> frozenset[str]:
    """The keys of the alarms among ``(action, detail)`` events."""
    return frozenset(alarm_key(a, d) for a, d in events if a in ALARM_ACTIONS)


def counting_day(today: date, pause_started: date | None) -> date:
    """The day the clock reads: the day it stopped while it is stopped."""
    return min(today, pause_started) if pause_started is not None else today


def working_days_left(calendar: WorkCalendar, due: date, today: date, pause_started: date | None = None) -> int:
    """Working days from today (or from when the clock stopped) to the due date; 0 on the due day."""
    return calendar.working_days_between(counting_day(today, pause_started), due)


def is_overdue(due: date, today: date, pause_started: date | None = None) -> bool:
    return counting_day(today, pause_started) > due


def due_alarms(case: Watched, calendar: WorkCalendar, settings: SupervisionSettings, today: date) -> list[Alarm]:
    """Every alarm ``case`` has earned by ``today`` and not yet recorded, in a stable order."""
    out: list[Alarm] = []
    if case.status is Status.RECEIVED and case.arrived is not None:
        out += _acceptance_alarms(case.arrived, case.arrival_recorded, calendar, settings, today)
    if case.status in RUNNING and case.due is not None:
        if is_overdue(case.due, today, case.pause_started):
            out.append(Alarm(OVERDUE, {"due": case.due.isoformat()}))
        else:
            left = working_days_left(calendar, case.due, today, case.pause_started)
            # A case already past this due date gets its red card only: a late yellow one would say nothing.
            if left <= settings.warn_working_days and alarm_key(OVERDUE, {"due": case.due.isoformat()}) not in case.recorded:
                out.append(Alarm(WARN, {"due": case.due.isoformat(), "working_days_left": left}))
    if case.step_due is not None and case.status in RUNNING and is_overdue(case.step_due, today, case.pause_started):
        out.append(Alarm(STEP_OVERDUE, {"step": ESCALATION_REVIEW, "department": case.department,
                                        "due": case.step_due.isoformat()}))
    if case.status is Status.JOINT_REVIEW and case.joint_started is not None:
        share_due = calendar.add_working_days(case.joint_started, settings.joint_opinion_days)
        if is_overdue(share_due, today, case.pause_started):
            for department, opinion, _ in case.joint:
                if opinion != "pending":
                    continue
                out.append(Alarm(STEP_OVERDUE, {"step": JOINT_OPINION, "department": department,
                                                "due": share_due.isoformat()}))
                if case.timeout_default:
                    out.append(Alarm(TIMEOUT_AGREE, {"department": department, "due": share_due.isoformat()}))
    return [a for a in out if a.key not in case.recorded]


def acceptance_due(calendar: WorkCalendar, arrived: date) -> date:
    """The last day to accept or refuse an application that arrived on ``arrived`` (art. 32)."""
    return calendar.add_working_days(arrived, ACCEPTANCE_DAYS)


def acceptance_watched_until(today: date, settings: SupervisionSettings) -> date:
    """The latest day a case may have arrived and already earn an acceptance alarm today: a yellow
    card needs ``ACCEPTANCE_DAYS - warn_working_days`` working days gone, so at least as many
    calendar days (the scanner looks no further than this among the received cases)."""
    return today - timedelta(days=max(ACCEPTANCE_DAYS - settings.warn_working_days, 0))


def accepts_here(node_level: Level, item: ServiceItem) -> bool:
    """Whether a node holding a received case is the one to accept it: every node but a village
    agent point, which forwards an item decided above it at once (代办) instead."""
    return node_level is not Level.VILLAGE or item.authority_level is Level.VILLAGE


def _acceptance_alarms(arrived: date, recorded: date | None, calendar: WorkCalendar, settings: SupervisionSettings,
                       today: date) -> list[Alarm]:
    # A paper application entered later is about to have its paper acceptance (or return) entered
    # too: its window gets its 5 working days from the entry, while a deemed acceptance still
    # dates from the real arrival.
    due = acceptance_due(calendar, max(arrived, recorded or arrived))
    if today > due:
        return [Alarm(DEEM_ACCEPT, {"arrived": arrived.isoformat(), "due": due.isoformat()})]
    left = working_days_left(calendar, due, today)
    if left <= settings.warn_working_days:
        return [Alarm(WARN, {"step": ACCEPTANCE, "due": due.isoformat(), "working_days_left": left})]
    return []


@dataclass(frozen=True)
class DueBasis:
    """What a case's events say its due dates were counted from (the state holds the results)."""

    promised_days: int  # the accept event's limit
    statutory_days: int  # the item's legal limit, in the release the case was accepted under
    extension_days: int = 0  # the extension's working days, once granted
    review_started: date | None = None  # a lower level's review of an escalated case began
    step_due: date | None = None  # and the review limit it was given


def recomputed_dues(case: CaseState, basis: DueBasis, calendar: WorkCalendar) -> dict[str, tuple[date | None, date]]:
    """Each due date of ``case`` counted again on ``calendar``, where it moved: name -> (old, new).

    The arithmetic is the lifecycle's: a limit in working days after the acceptance day, pushed
    out by the working days the clock stood (closed pauses; an open one shifts the dates when it
    ends) and by an extension. Counting from the start rather than shifting the old date keeps
    the result the same whatever calendar the old date was counted on."""
    out: dict[str, tuple[date | None, date]] = {}

    def check(name: str, old: date | None, new: date) -> None:
        if old != new:
            out[name] = (old, new)

    if case.accepted_on is not None:
        shift = case.paused_days + basis.extension_days
        if case.due is not None:
            check("due", case.due, calendar.add_working_days(case.accepted_on, basis.promised_days + shift))
        if case.statutory_due is not None:
            check("statutory_due", case.statutory_due,
                  calendar.add_working_days(case.accepted_on, basis.statutory_days + shift))
        if case.supplement_due is not None:
            check("supplement_due", case.supplement_due,
                  calendar.add_working_days(case.accepted_on, TOLERANCE_SUPPLEMENT_DAYS))
    if case.decided_on is not None and case.issue_due is not None:
        check("issue_due", case.issue_due, calendar.add_working_days(case.decided_on, ISSUE_DAYS))
    if basis.review_started is not None and basis.step_due is not None:
        check("step_due", basis.step_due, calendar.add_working_days(basis.review_started, ESCALATED_REVIEW_DAYS))
    return out


def card_is_current(action: str, detail: dict[str, Any], current_due: str) -> bool:
    """Whether a recorded card still speaks of the case's due date (``current_due``, ISO): a
    yellow or red card raised on a due date that was counted again is history, not an open alarm.
    A card about a step (the acceptance deadline) speaks of that step's own date: always current."""
    if action not in (WARN, OVERDUE) or detail.get("step"):
        return True
    return str(detail.get("due", "")) == current_due


def complaint_due(calendar: WorkCalendar, filed_on: date, settings: SupervisionSettings) -> date:
    return calendar.add_working_days(filed_on, settings.complaint_days)


def is_backfilled(happened_at: str, recorded_at: str, settings: SupervisionSettings) -> bool:
    """An event the network recorded long after it happened (a paper application entered later)."""
    gap = datetime.fromisoformat(recorded_at) - datetime.fromisoformat(happened_at)
    return gap.total_seconds() > settings.backfill_after_s
