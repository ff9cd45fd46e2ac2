"""The case lifecycle: every status, every action, every rule — in one place.

A case (办件) is received at a window, then accepted or returned with a one-time notice;
accepted cases are reviewed (alone, or jointly by several departments in parallel),
may stop the clock while the applicant supplies materials, are escalated when the
authority sits higher up, and end approved or rejected, completed (the licence or the
decision document is issued) and delivered at the window where the applicant applied.

This module is pure: it takes the case as it is, the action with its parameters, and a
``Context`` (the catalog item, this node's level, the current time and the working-day
calendar) and returns the new case and the event that records the change. It never
touches a store, a socket or a clock, so the same rules run in the node, in tests and
in simulations. An illegal action raises ``IllegalAction`` naming the current status
and the actions it allows; a legal action with bad parameters raises ``ActionRefused``.
Both leave the case untouched (it is a frozen value).

The case kinds (``CaseType``) follow from the item and the intake: ``returned`` when
materials were missing, ``escalated`` when the item's authority sits above the accepting
node, otherwise the item's own type (``immediate``, ``promised``, ``joint``). Whether a
village agent carried it (代办) is another fact, kept apart (``CaseState.agent``,
``carried``): a joint item an agent carries is a joint case, carried. ``proxy`` survives
only as a value older nodes may still send (migration 0016 re-kinds the stored ones).

Fees (``node.domain.fees``): approving a case assesses what it owes; ``pay`` records a
payment at the collection point and ``waive_fee`` what the signing officer waives, and
``deliver`` is refused while anything is due (``fees_outstanding``, the one guard every
window that hands over a result calls). The green channel (绿色通道): ``green_channel``
flags a case for priority handling (a chief representative or a supervisor, with a reason);
the item's ``green_channel_days`` then shortens its promised limit.

Rule 1 (after h11): everything that changes a case lives here. ``TABLE`` says, for every
status, which steps may happen and the status each leads to. A step is a clerk's
``Action`` (offered at the window, listed by ``allowed_actions``) or a ``SystemAction`` the
node takes itself or that supervision records: handing the case to the level with
authority and taking it over there, the scanner's alarms, a received case deemed accepted
as of its arrival once the 5 working days to accept or refuse it ran out (art. 32), a silent
joint reviewer taken as agreeing (超时默认), the applicant's rating with the rectification it may open, an
appeal and its decision, a request from another node refused on the record. Every step
goes through ``decide`` (clerks' strings through ``act``): the case and its step in, the
new case and its event draft(s) out. The units of work (desk, supervision, replication's
take-over) read what a step needs, call ``decide``, and write its verdict; none of them
changes a case by hand.

One-time notice (一次性告知): a return and a supplement request list every missing material
at once (``node.domain.notice`` renders the notice); a case gets one supplement request, another
only for a changed application (``ActParams.changed_application``, with what changed). What a
rule needs of the case's history beyond its state comes in ``Context.past``.

The status groups (``RUNNING``, ``TERMINAL``, ``FINISHED``) are defined here, next to the
table they describe; every other module imports them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from govnet.federation.tree import Level
from govnet.node.domain.calendar import WorkCalendar, local_date
from govnet.node.domain.catalog import ItemType, ServiceItem
from govnet.node.domain.fees import assess, check_method, yuan
from govnet.node.domain.limits import excerpt, excerpts
from govnet.node.domain.notice import NoticeKind, facts_for, render_text

# Default limits of the Administrative Licensing Law (行政许可法), in working days.
DECISION_DAYS = 20  # art. 42: decide within 20 days
DECISION_EXTENSION_DAYS = 10  # art. 42: extendable once by 10 with the head's approval
JOINT_DAYS = 45  # art. 42: joint handling within 45 days
JOINT_EXTENSION_DAYS = 15  # art. 42: extendable once by 15
ESCALATED_REVIEW_DAYS = 20  # art. 43: a lower level's review of an escalated case
ISSUE_DAYS = 10  # art. 44: issue the licence within 10 days after the decision
TOLERANCE_SUPPLEMENT_DAYS = 10  # our default time to supply a material owed under 容缺受理
ACCEPTANCE_DAYS = 5  # art. 32: accept or refuse within 5 working days, else accepted from the day it arrived


class Status(StrEnum):
    RECEIVED = "received"
    RETURNED = "returned"
    ACCEPTED = "accepted"
    UNDER_REVIEW = "under_review"
    AWAITING_SUPPLEMENT = "awaiting_supplement"
    JOINT_REVIEW = "joint_review"
    ESCALATED = "escalated"
    APPROVED = "approved"
    REJECTED = "rejected"
    COMPLETED = "completed"
    DELIVERED = "delivered"
    WITHDRAWN = "withdrawn"


class Action(StrEnum):
    ACCEPT = "accept"
    RETURN = "return"
    REVIEW = "review"
    REQUEST_SUPPLEMENT = "request_supplement"
    SUPPLEMENT = "supplement"
    START_JOINT = "start_joint"
    OPINION = "opinion"
    APPROVE = "approve"
    REJECT = "reject"
    ESCALATE = "escalate"
    EXTEND = "extend"
    COMPLETE = "complete"
    DELIVER = "deliver"
    WITHDRAW = "withdraw"
    SUSPEND = "suspend"  # the clock stops for a hearing, testing, inspection or expert review
    RESUME = "resume"
    PAY = "pay"  # a payment of the case's fees at the collection point (统一收费)
    WAIVE_FEE = "waive_fee"  # what is still due, waived by the signing officer with its reason
    GREEN_CHANNEL = "green_channel"  # flagged for priority handling (绿色通道), with its reason


class CaseType(StrEnum):
    IMMEDIATE = "immediate"
    PROMISED = "promised"
    JOINT = "joint"
    ESCALATED = "escalated"
    RETURNED = "returned"
    PROXY = "proxy"  # deprecated: older nodes' kind for a carried case; never given now (see ``carried``)


class SystemAction(StrEnum):
    """Steps no clerk takes at the window: the node takes them itself, or supervision records them."""

    HAND_OVER = "hand_over"  # ownership passes to the level with authority (new epoch)
    TAKE_OVER = "take_over"  # this node now owns the case it was handed
    WARN = "warn"  # yellow card: the deadline is near
    OVERDUE = "overdue"  # red card: the deadline has passed
    STEP_OVERDUE = "step_overdue"  # a step timer passed (escalation review, a joint reviewer's share)
    TIMEOUT_AGREE = "timeout_agree"  # a silent joint reviewer taken as agreeing (超时默认)
    EVALUATE = "evaluate"  # the applicant's rating (one case, one evaluation)
    RECTIFY_CLOSE = "rectify_close"  # the rectification a dissatisfied rating opened is done
    APPEAL = "appeal"  # the owner contests a rating made in bad faith
    APPEAL_DECIDED = "appeal_decided"
    REQUEST_REFUSED = "request_refused"  # a request from another node, refused on the record
    DEEM_ACCEPT = "deem_accept"  # art. 32: not accepted or refused within 5 working days, so accepted from arrival
    DUE_RECOMPUTED = "due_recomputed"  # a year's official calendar arrived: the due dates counted again


Step = Action | SystemAction
RECTIFY_OPEN = "rectify_open"  # the event a dissatisfied rating adds after its own (not a step)
SYSTEM_ACTOR = "govnet"  # who acts when the node itself does

S, A, SA = Status, Action, SystemAction

# The status groups, defined once.
# The case's own deadline runs: set at acceptance, met by the decision (alarms are raised only here).
RUNNING: frozenset[Status] = frozenset({S.ACCEPTED, S.UNDER_REVIEW, S.AWAITING_SUPPLEMENT, S.JOINT_REVIEW,
                                        S.ESCALATED})
# Deadline records: the cards, and the due dates counted again when a year's calendar arrives.
_ALARMS = (SA.WARN, SA.OVERDUE, SA.STEP_OVERDUE, SA.DUE_RECOMPUTED)
_ANYTIME = (SA.TAKE_OVER, SA.REQUEST_REFUSED)
_AFTER_DELIVERY = (SA.EVALUATE, SA.RECTIFY_CLOSE, SA.APPEAL, SA.APPEAL_DECIDED)
_FEES = (A.PAY, A.WAIVE_FEE)  # once approved, until the result is handed over


def _stay(status: Status, *steps: Step) -> dict[Step, Status]:
    """Steps that record something about a case and leave its status as it is."""
    return {step: status for step in steps}


# Rule 1: every (status, step) pair that may happen, and the status it leads to. Guards on
# parameters and on the item (authority, tolerance, joint opinions) are in the rules below;
# anything not in this table is illegal.
TABLE: Mapping[Status, Mapping[Step, Status]] = {
    S.RECEIVED: {
        A.ACCEPT: S.ACCEPTED, A.RETURN: S.RETURNED, A.WITHDRAW: S.WITHDRAWN,
        **_stay(S.RECEIVED, SA.HAND_OVER, A.GREEN_CHANNEL, *_ANYTIME),  # a village agent point forwards it at once (代办)
        SA.DEEM_ACCEPT: S.ACCEPTED, **_stay(S.RECEIVED, SA.WARN),  # the acceptance deadline (art. 32)
    },
    S.ACCEPTED: {
        A.REVIEW: S.UNDER_REVIEW,
        A.APPROVE: S.APPROVED,  # immediate items: one review, one approval at the window
        A.REJECT: S.REJECTED,
        A.ESCALATE: S.ESCALATED,
        A.SUPPLEMENT: S.ACCEPTED,  # a material owed under tolerance acceptance arrives
        A.WITHDRAW: S.WITHDRAWN,
        **_stay(S.ACCEPTED, A.GREEN_CHANNEL, *_ALARMS, *_ANYTIME),
    },
    S.UNDER_REVIEW: {
        A.REQUEST_SUPPLEMENT: S.AWAITING_SUPPLEMENT,
        A.SUPPLEMENT: S.UNDER_REVIEW,
        A.START_JOINT: S.JOINT_REVIEW,
        A.APPROVE: S.APPROVED,
        A.REJECT: S.REJECTED,
        A.ESCALATE: S.ESCALATED,
        A.EXTEND: S.UNDER_REVIEW,
        A.SUSPEND: S.UNDER_REVIEW,
        A.RESUME: S.UNDER_REVIEW,
        A.WITHDRAW: S.WITHDRAWN,
        **_stay(S.UNDER_REVIEW, A.GREEN_CHANNEL, *_ALARMS, *_ANYTIME),
    },
    S.AWAITING_SUPPLEMENT: {
        A.SUPPLEMENT: S.UNDER_REVIEW,  # stays waiting while requested materials are still owed
        A.REJECT: S.REJECTED,
        A.WITHDRAW: S.WITHDRAWN,
        **_stay(S.AWAITING_SUPPLEMENT, A.GREEN_CHANNEL, *_ALARMS, *_ANYTIME),
    },
    S.JOINT_REVIEW: {
        A.OPINION: S.JOINT_REVIEW,
        A.SUPPLEMENT: S.JOINT_REVIEW,
        A.APPROVE: S.APPROVED,
        A.REJECT: S.REJECTED,
        A.EXTEND: S.JOINT_REVIEW,
        A.SUSPEND: S.JOINT_REVIEW,
        A.RESUME: S.JOINT_REVIEW,
        A.WITHDRAW: S.WITHDRAWN,
        **_stay(S.JOINT_REVIEW, A.GREEN_CHANNEL, *_ALARMS, SA.TIMEOUT_AGREE, *_ANYTIME),
    },
    S.ESCALATED: {
        A.REVIEW: S.UNDER_REVIEW, A.WITHDRAW: S.WITHDRAWN,
        **_stay(S.ESCALATED, SA.HAND_OVER, A.GREEN_CHANNEL, *_ALARMS, *_ANYTIME),  # escalating hands the case over
    },
    S.APPROVED: {A.COMPLETE: S.COMPLETED, A.SUPPLEMENT: S.APPROVED,
                 **_stay(S.APPROVED, SA.DUE_RECOMPUTED, *_FEES, *_ANYTIME)},  # the licence's issue_due
    S.REJECTED: {A.COMPLETE: S.COMPLETED, **_stay(S.REJECTED, SA.DUE_RECOMPUTED, *_ANYTIME)},
    S.COMPLETED: {A.DELIVER: S.DELIVERED, **_stay(S.COMPLETED, *_FEES, *_ANYTIME)},
    S.RETURNED: _stay(S.RETURNED, *_ANYTIME),
    S.DELIVERED: _stay(S.DELIVERED, *_AFTER_DELIVERY, *_ANYTIME),  # rated where the applicant applied
    S.WITHDRAWN: _stay(S.WITHDRAWN, *_ANYTIME),
}

# The clerk's view of the table: the actions a window may take in each status.
TRANSITIONS: Mapping[Status, Mapping[Action, Status]] = {
    status: {step: to for step, to in moves.items() if isinstance(step, Action)} for status, moves in TABLE.items()
}
# Closed: no clerk may do anything more with the case.
TERMINAL: frozenset[Status] = frozenset(s for s, moves in TRANSITIONS.items() if not moves)
# Waits for nobody, so it cannot be overdue (the node's overdue count): closed, or rejected or
# completed. An approved case still owes the licence it was approved for.
FINISHED: frozenset[Status] = TERMINAL | {S.REJECTED, S.COMPLETED}


def statuses_named(names: Iterable[str]) -> frozenset[Status]:
    """The statuses a filter names (each entry may be a comma list; blanks are ignored).

    ``ValueError`` names the first unknown one and lists the valid statuses."""
    out: set[Status] = set()
    for entry in names:
        for name in (part.strip() for part in entry.split(",")):
            if not name:
                continue
            try:
                out.add(Status(name))
            except ValueError:
                raise ValueError(f"unknown status {name!r}: choose from {', '.join(s.value for s in Status)}") from None
    return frozenset(out)

class LifecycleError(Exception):
    """A refused step; the case is unchanged. ``str()`` is one line for the clerk."""


# What a refusal of a supervision step says when the status does not allow it: told the way
# the person asking understands it (a case not yet delivered has no rating to appeal against).
_NOT_NOW: Mapping[Step, str] = {
    SA.EVALUATE: "case {receipt} is {status}: it can be rated once it has been delivered",
    SA.RECTIFY_CLOSE: "case {receipt} has no rectification: only a dissatisfied rating opens one",
    SA.APPEAL: "case {receipt} has no dissatisfied rating to appeal against",
    SA.APPEAL_DECIDED: "case {receipt} has no appeal to decide",
}


class IllegalAction(LifecycleError):
    """The table has no such step from the case's status."""

    def __init__(self, case: CaseState, action: Step) -> None:
        template = _NOT_NOW.get(action)
        if template is not None:
            message = template.format(receipt=case.receipt, status=case.status)
        else:
            allowed = ", ".join(allowed_actions(case)) or "none (the case is closed)"
            message = f"cannot {action} a case that is {case.status}; allowed now: {allowed}"
        super().__init__(message)
        self.status = case.status
        self.action = action


class ActionRefused(LifecycleError):
    """The step is legal in this status but the case or its item forbid it now."""


class InvalidParams(LifecycleError):
    """The action's parameters are wrong or incomplete (a missing reason, an unknown material)."""


@dataclass(frozen=True)
class ActParams:
    """A clerk's action's parameters (as the window sends them, and as a request carries them)."""

    actor: str
    reason: str = ""
    materials: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    department: str = ""
    agree: bool = False
    approver: str = ""
    kind: str = ""  # suspend: hearing | testing | inspection | expert_review
    days: int = 0  # suspend: the planned duration in working days
    at: str = ""  # deliver: the window (node) where the result was handed over, when not the owner's
    # request_supplement: the applicant changed what they apply for, so the one-time notice
    # (一次性告知) may be given again for the changed application (``reason`` says what changed).
    changed_application: bool = False
    amount_fen: int = 0  # pay: the amount paid, in fen
    method: str = ""  # pay: a ``fees.PaymentMethod`` value
    number: str = ""  # pay: the payment's number (the receipt of the collection point or the transaction)


SUSPEND_KINDS = ("hearing", "testing", "inspection", "expert_review")
RATINGS = ("very_satisfied", "satisfied", "basically_satisfied", "dissatisfied", "very_dissatisfied")
DISSATISFIED = frozenset({"dissatisfied", "very_dissatisfied"})


def check_rating(rating: str) -> str:
    """The rating as stored, or ValueError naming the five levels."""
    value = rating.strip().lower().replace(" ", "_").replace("-", "_")
    if value not in RATINGS:
        raise ValueError(f"rating {excerpt(rating)} is not one of {', '.join(RATINGS)}")
    return value


# --- the parameters of system steps (actor and reason go on the event as given) ---


@dataclass(frozen=True)
class HandOver:
    to: str  # the node that becomes the owner
    actor: str = SYSTEM_ACTOR  # the clerk or agent whose step sent it, if any
    reason: str = ""


@dataclass(frozen=True)
class TakeOver:
    previous_owner: str
    actor: str = SYSTEM_ACTOR
    reason: str = ""


@dataclass(frozen=True)
class Note:
    """A fact the node records itself: an alarm (its detail as ``deadlines`` computed it), a
    timeout agreement (``detail`` names the department and its share's due date), or a
    refused request (``detail`` names the request)."""

    reason: str
    detail: Mapping[str, Any]
    actor: str = SYSTEM_ACTOR


@dataclass(frozen=True)
class DeemedAcceptance:
    """The acceptance deadline (art. 32) ran out with the case still received: it counts as
    accepted from the day it arrived, and its deadlines count from that day (``deadlines``
    decides when; the scanner records it)."""

    item: ServiceItem  # the case's item, in the release the case was received under
    arrived: date  # the day the application reached the node that must accept it
    due: date  # the last day it had to be accepted or refused (``deadlines.acceptance_due``)
    reason: str = ""
    actor: str = SYSTEM_ACTOR


@dataclass(frozen=True)
class Redated:
    """Due dates counted again on a calendar that now has the official schedule of ``years``
    (``deadlines.recomputed_dues``): field -> (old, new) for every date that moved. ``step_due``
    (a lower level's review limit) is not a field of the case: only its event records it."""

    years: tuple[int, ...]
    moved: Mapping[str, tuple[date | None, date]]
    actor: str = SYSTEM_ACTOR

    @property
    def reason(self) -> str:
        published = ", ".join(str(y) for y in self.years)
        return "; ".join([f"calendar {published} published"]
                         + [f"{name} {old.isoformat() if old else '-'} -> {new.isoformat()}"
                            for name, (old, new) in self.moved.items()])


@dataclass(frozen=True)
class RatingRecord:
    """What a case's history holds of its rating and what followed it (read from its events)."""

    rating: str = ""  # the applicant's rating; "" before one is made
    rectification_due: str = ""  # set when a dissatisfied rating opened a rectification
    rectified: bool = False
    appealed: bool = False
    appeal_decided: bool = False


@dataclass(frozen=True)
class Rating:
    rating: str  # one of RATINGS (``check_rating`` at the edge)
    comment: str
    at: str  # the node where the applicant rated (where they applied)
    actor: str
    rectification_days: int  # time to rectify after a dissatisfied rating (supervision settings)
    record: RatingRecord = RatingRecord()

    @property
    def reason(self) -> str:
        return self.comment


@dataclass(frozen=True)
class FollowUp:
    """Closing a rectification (``reason``: what was rectified), an appeal (why the rating was in
    bad faith) or an appeal's decision (``upheld``, and why)."""

    reason: str
    actor: str
    record: RatingRecord
    upheld: bool = False


@dataclass(frozen=True)
class Moment:
    """Where and when a step happens: this node, its level, the time and the working-day calendar."""

    node_id: str
    node_level: Level
    now: datetime  # aware
    calendar: WorkCalendar

    @property
    def today(self) -> date:
        return local_date(self.now)


@dataclass(frozen=True)
class Context(Moment):
    """A clerk's action needs the case's catalog item too (its release, not today's)."""

    item: ServiceItem
    # The case's earlier steps as its history holds them, (action, happened_at), oldest first: what
    # a rule needs that the state does not keep (a one-time notice already given).
    past: tuple[tuple[str, datetime], ...] = ()

    @property
    def has_authority(self) -> bool:
        return self.node_level == self.item.authority_level


@dataclass(frozen=True)
class CaseState:
    """Everything the lifecycle needs to know about one case."""

    receipt: str
    item_code: str
    case_type: CaseType
    status: Status
    origin: str  # node where the applicant applied
    owner: str
    owner_epoch: int
    submitted_at: datetime
    catalog_version: int
    materials: tuple[str, ...]
    catalog_issuer: str = ""  # whose catalog release ``catalog_version`` counts
    agent: str = ""
    missing_core: tuple[str, ...] = ()
    pending_materials: tuple[str, ...] = ()  # owed under tolerance acceptance
    requested_materials: tuple[str, ...] = ()  # asked for by a supplement request (补正)
    joint: tuple[tuple[str, str, str], ...] = ()  # (department, opinion, reason)
    due: date | None = None
    statutory_due: date | None = None
    supplement_due: date | None = None
    issue_due: date | None = None
    pause_started: date | None = None
    paused_days: int = 0
    extended: bool = False
    decision: str = ""
    decision_reason: str = ""
    notice: str = ""
    accepted_on: date | None = None
    decided_on: date | None = None
    event_count: int = 0
    fees_due_fen: int = 0  # assessed at approval (``fees.assess``)
    fees_paid_fen: int = 0  # the sum of its payments
    fees_waived: bool = False  # what was still due has been waived
    green_channel: bool = False  # 绿色通道: handled first

    @property
    def carried(self) -> bool:
        """Carried by a village agent (代办): a fact apart from the case's kind."""
        return bool(self.agent)


@dataclass(frozen=True)
class EventDraft:
    """The record of one change, to be stored in the same transaction as the new state."""

    action: str
    from_status: str
    to_status: str
    actor: str
    reason: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    """The verdict of one step: the new case and the events that record it, in order (a
    dissatisfied rating records the rectification it opens after itself)."""

    case: CaseState
    events: tuple[EventDraft, ...]

    @property
    def event(self) -> EventDraft:
        """The step's own event (the first)."""
        return self.events[0]


def allowed_actions(case: CaseState | Status) -> list[str]:
    """What a clerk may do now: the table's actions from the status and, given the case, only
    those its cheap guards let through (a stopped clock, an extension already used, no
    suspension to end). Item rules (authority, joint opinions) are checked when acting."""
    if isinstance(case, Status):
        return [a.value for a in TRANSITIONS[case]]
    return [a.value for a in TRANSITIONS[case.status] if _case_guard(case, a) is None]


def classify(item: ServiceItem, node_level: Level, via_agent: bool = False) -> CaseType:
    """The kind a new case has at intake (it becomes ``returned`` if returned later).

    How a case is decided, whoever carries it: a case a village agent carries (代办) is
    immediate, promised, joint or escalated like any other, and records its agent apart
    (``CaseState.carried``). ``via_agent`` is kept for callers that still pass it; it no
    longer changes the kind.
    """
    if node_level.rank > item.authority_level.rank:
        return CaseType.ESCALATED
    return CaseType(item.item_type.value)


def intake(
    *,
    receipt: str,
    item: ServiceItem,
    node_id: str,
    node_level: Level,
    now: datetime,
    catalog_version: int,
    materials: Sequence[str],
    catalog_issuer: str = "",
    agent: str,
    actor: str,
    note: str = "",
) -> Transition:
    """A new case as the window receives it, before it is accepted or returned."""
    if not actor.strip():
        raise InvalidParams("who is receiving the case? give the clerk or agent as actor")
    if node_level.rank < item.authority_level.rank:
        raise ActionRefused(
            f"item {item.code} is decided at {item.authority_level} level; "
            f"a {node_level} node does not receive it — apply at a {item.authority_level} center"
        )
    if agent and not item.proxy:
        raise ActionRefused(f"item {item.code} cannot be carried by a village agent (代办)")
    provided = _dedupe(materials)
    _check_known(item, provided)
    missing_core, _ = item.missing(provided)
    case = CaseState(
        receipt=receipt,
        item_code=item.code,
        case_type=classify(item, node_level, bool(agent)),
        status=Status.RECEIVED,
        origin=node_id,
        owner=node_id,
        owner_epoch=1,
        submitted_at=now,
        catalog_version=catalog_version,
        catalog_issuer=catalog_issuer,
        materials=provided,
        agent=agent,
        missing_core=missing_core,
        event_count=1,
    )
    event = EventDraft(
        action="submit",
        from_status="",
        to_status=Status.RECEIVED,
        actor=actor,
        reason="",
        detail={"materials": list(provided), "agent": agent, "case_type": case.case_type.value,
                "catalog_version": catalog_version,
                "catalog_issuer": catalog_issuer,
                **({"note": note.strip()} if note.strip() else {})},
    )
    return Transition(case, (event,))


def act(case: CaseState, action: str, params: ActParams, ctx: Context) -> Transition:
    """A clerk's action (as its name arrives from the window): ``decide`` for ``Action``s only."""
    try:
        chosen = Action(action)
    except ValueError:
        raise InvalidParams(
            f"unknown action {excerpt(action)}; actions are: {', '.join(a.value for a in Action)}"
        ) from None
    return decide(case, chosen, params, ctx)


def decide(case: CaseState, step: Step, params: Any, ctx: Moment) -> Transition:
    """Apply one step to a case: the new case and its event(s), or a ``LifecycleError`` and nothing changed.

    ``params`` is the step's own parameter type (``ActParams`` for a clerk's action, ``HandOver``,
    ``TakeOver``, ``Note``, ``Rating``, ``FollowUp``); ``ctx`` is a ``Context`` (with the item)
    for a clerk's action, a ``Moment`` is enough for a system step."""
    rule = _RULES[step]
    if not isinstance(params, rule.params):
        raise TypeError(f"{step} takes {rule.params.__name__}, not {type(params).__name__}")
    target = TABLE[case.status].get(step)
    if target is None:
        raise IllegalAction(case, step)
    if isinstance(step, Action):
        if not isinstance(ctx, Context):
            raise TypeError(f"{step} needs a Context with the case's item")
        actor, reason = params.actor.strip(), params.reason.strip()
        if not actor:
            raise InvalidParams(f"who does this {step}? give the actor (clerk's name or id)")
        stopped = _clock_stopped(case, step)
        if stopped is not None:
            raise ActionRefused(stopped)
    else:
        actor, reason = params.actor, params.reason
    try:
        refusal = _case_guard(case, step)
        if refusal is not None:
            raise ActionRefused(refusal)
        changes, detail = rule.decide(case, params, ctx)
    except ActionRefused as exc:
        if isinstance(step, SystemAction):
            raise
        # Say where the case is and what can be done instead, not only why not.
        raise ActionRefused(
            f"cannot {step} a case that is {case.status}: {exc}; "
            f"allowed now: {', '.join(allowed_actions(case))}"
        ) from None
    new_status = changes.pop("status", target)
    event = EventDraft(action=step, from_status=case.status, to_status=new_status, actor=actor, reason=reason,
                       detail=detail)
    events = (event, *rule.then(case, params, ctx))
    new = dataclasses.replace(case, status=new_status, event_count=case.event_count + len(events), **changes)
    return Transition(new, events)


def _clock_stopped(case: CaseState, action: Action) -> str | None:
    # Flagging for the green channel changes no date the pause holds, so it may happen meanwhile.
    if is_suspended(case) and action not in (A.RESUME, A.WITHDRAW, A.GREEN_CHANNEL):
        return (f"cannot {action} a case whose clock is stopped (suspended since "
                f"{case.pause_started}); resume it first")
    return None


def _case_guard(case: CaseState, step: Step) -> str | None:
    """Why the case itself forbids ``step`` now (what ``allowed_actions`` also leaves out), or None."""
    if isinstance(step, Action) and _clock_stopped(case, step) is not None:
        return _clock_stopped(case, step)
    if step is A.RESUME and not is_suspended(case):
        return "the clock is running; there is no suspension to end"
    if step is A.EXTEND and case.extended:
        return "the time limit has already been extended once; it cannot be extended again"
    if step is A.DELIVER and case.status is Status.COMPLETED:
        return may_deliver(case)  # fees still due hold the result back
    if step in _FEES and not fees_outstanding(case):
        return "no fees are due on this case" if not case.fees_due_fen else "the case's fees are settled"
    if step is A.GREEN_CHANNEL and case.green_channel:
        return "the case is already in the green channel"
    return None


def fees_outstanding(case: CaseState) -> int:
    """What the case still owes, in fen (0 when free, paid or waived): while it is above 0 the
    result is not handed over. Every window that delivers asks this one function."""
    if case.fees_waived:
        return 0
    return max(0, case.fees_due_fen - case.fees_paid_fen)


# --- handlers: each returns (field changes, event detail) or raises ActionRefused ---

Changes = tuple[dict[str, Any], dict[str, Any]]


def _accept(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    materials = _dedupe(case.materials + p.materials)
    _check_known(ctx.item, p.materials)
    missing_core, missing_other = ctx.item.missing(materials)
    if missing_core:
        raise ActionRefused(
            "cannot accept: core material(s) missing: "
            + ", ".join(missing_core)
            + " — return the case with a one-time notice instead"
        )
    if missing_other and not ctx.item.tolerance:
        raise ActionRefused(
            f"cannot accept: item {ctx.item.code} does not allow tolerance acceptance (容缺受理) "
            f"and material(s) are missing: {', '.join(missing_other)}"
        )
    today = ctx.today
    promised = _promised_days(case, ctx.item)
    changes: dict[str, Any] = {
        "materials": materials,
        "missing_core": (),
        "accepted_on": today,
        "due": ctx.calendar.due_date(today, promised),
        "statutory_due": ctx.calendar.due_date(today, ctx.item.statutory_days),
    }
    detail: dict[str, Any] = {"due": changes["due"].isoformat(), "promised_days": promised}
    if promised != ctx.item.promised_days:
        detail["green_channel"] = True
    if missing_other:
        changes["pending_materials"] = missing_other
        changes["supplement_due"] = ctx.calendar.add_working_days(today, TOLERANCE_SUPPLEMENT_DAYS)
        detail["tolerance"] = list(missing_other)
        detail["supplement_due"] = changes["supplement_due"].isoformat()
    return changes, detail


def _return(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    missing_core, missing_other = ctx.item.missing(case.materials)
    if not missing_core and not missing_other and not p.reason.strip():
        raise InvalidParams(
            "nothing is missing: to return the case, give the reason it does not meet the legal conditions"
        )
    # One-time notice (一次性告知): every missing material at once, so the applicant never has to come twice.
    notice = render_text(facts_for(NoticeKind.RETURN, receipt=case.receipt, item=ctx.item,
                                   missing=missing_core + missing_other, reason=p.reason, issued_at=ctx.now,
                                   node=ctx.node_id))
    return (
        {"case_type": CaseType.RETURNED, "notice": notice, "missing_core": missing_core},
        {"missing_core": list(missing_core), "missing_other": list(missing_other), "notice": notice},
    )


def _review(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    if case.status is Status.ESCALATED and not ctx.has_authority:
        raise ActionRefused(
            f"this {ctx.node_level} node has no authority for item {ctx.item.code} "
            f"(decided at {ctx.item.authority_level} level); the case waits there"
        )
    detail: dict[str, Any] = {}
    if case.status is Status.ACCEPTED and not ctx.has_authority:
        # First review at the lower level before it goes up: its own step limit (art. 43).
        detail["step_due"] = ctx.calendar.add_working_days(ctx.today, ESCALATED_REVIEW_DAYS).isoformat()
    return {}, detail


def _request_supplement(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    wanted = _dedupe(p.materials)
    if not wanted:
        raise InvalidParams("name the material(s) the applicant must supply (补正), all at once")
    _check_known(ctx.item, wanted)
    earlier = [at for action, at in ctx.past if action == A.REQUEST_SUPPLEMENT]
    if earlier and not p.changed_application:
        raise ActionRefused(
            f"the one-time notice (一次性告知) was already given on {local_date(earlier[-1])}: a case gets one "
            "supplement request listing everything at once; only a changed application (the applicant changed "
            "what they apply for) may get another — say so (changed_application) and what changed (reason)"
        )
    if p.changed_application and not p.reason.strip():
        raise InvalidParams("a changed application: say what the applicant changed (reason)")
    # The event holds the notice's facts (what is asked for, why, when, where: ``notice.latest_notice``
    # renders it from them), not its text: a case stays within its size with up to every material asked.
    detail: dict[str, Any] = {"requested": list(wanted)}
    if p.changed_application:
        detail["changed_application"] = True
    # The clock stops from today until the materials arrive.
    return {"requested_materials": wanted, "pause_started": ctx.today}, detail


def _supplement(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    given = _dedupe(p.materials)
    if not given:
        raise InvalidParams("name the material(s) the applicant has supplied")
    owed = case.requested_materials + case.pending_materials
    unexpected = [m for m in given if m not in owed]
    if unexpected:
        raise ActionRefused(
            f"material(s) not owed: {excerpts(unexpected)}; owed: {', '.join(owed) or 'nothing'}"
        )
    requested = tuple(m for m in case.requested_materials if m not in given)
    pending = tuple(m for m in case.pending_materials if m not in given)
    changes: dict[str, Any] = {
        "materials": _dedupe(case.materials + given),
        "requested_materials": requested,
        "pending_materials": pending,
    }
    if not pending:
        changes["supplement_due"] = None
    detail: dict[str, Any] = {"supplied": list(given)}
    if case.status is Status.AWAITING_SUPPLEMENT:
        if requested:
            changes["status"] = Status.AWAITING_SUPPLEMENT  # the clock stays stopped
        else:
            assert case.pause_started is not None
            paused = ctx.calendar.working_days_between(case.pause_started, ctx.today)
            changes["paused_days"] = case.paused_days + paused
            changes["pause_started"] = None
            changes.update(_shifted_dues(case, paused, ctx))
            detail["paused_working_days"] = paused
    return changes, detail


def _start_joint(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    if ctx.item.item_type is not ItemType.JOINT:
        raise ActionRefused(f"item {ctx.item.code} is not a joint item; review it alone")
    departments = _dedupe(p.departments) or ctx.item.joint_departments
    if ctx.item.department in departments:
        raise InvalidParams(f"{ctx.item.department} leads this case; list only the other departments")
    joint = tuple((d, "pending", "") for d in departments)
    return {"joint": joint}, {"departments": list(departments)}


def _opinion(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    dept = p.department.strip()
    opinions = {d: (o, r) for d, o, r in case.joint}
    if dept not in opinions:
        raise ActionRefused(
            f"department {excerpt(dept) if dept else '(none)'} is not in this joint review; "
            f"reviewers: {', '.join(opinions)}"
        )
    if opinions[dept][0] != "pending":
        raise ActionRefused(f"{dept} has already given its opinion ({opinions[dept][0]})")
    if not p.agree and not p.reason.strip():
        raise InvalidParams(f"{dept} disagrees: give the reason")
    opinion = "agree" if p.agree else "disagree"
    joint = tuple((d, opinion, p.reason.strip()) if d == dept else (d, o, r) for d, o, r in case.joint)
    return {"joint": joint}, {"department": dept, "opinion": opinion}


def _decide(case: CaseState, p: ActParams, ctx: Context, decision: str) -> Changes:
    if not ctx.has_authority:
        raise ActionRefused(
            f"this {ctx.node_level} node has no authority to {decision[:-1] if decision.endswith('ed') else decision} "
            f"item {ctx.item.code} (decided at {ctx.item.authority_level} level): escalate it"
        )
    today = ctx.today
    changes: dict[str, Any] = {
        "decision": decision,
        "decision_reason": p.reason.strip(),
        "decided_on": today,
        "issue_due": ctx.calendar.add_working_days(today, ISSUE_DAYS),
    }
    detail: dict[str, Any] = {"decision": decision}
    if decision == "approved":
        # Approval assesses what the case owes (its item's fees, first units free); a rejection owes nothing.
        changes["fees_due_fen"] = fees_due = assess(ctx.item).total_fen
        if fees_due:
            detail["fees_due_fen"] = fees_due
    return changes, detail


def _approve(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    if case.status is Status.ACCEPTED and ctx.item.item_type is not ItemType.IMMEDIATE:
        raise ActionRefused(f"item {ctx.item.code} is {ctx.item.item_type}: review it before approving")
    if ctx.item.item_type is ItemType.JOINT and case.status is not Status.JOINT_REVIEW:
        raise ActionRefused(f"item {ctx.item.code} is a joint item: start the joint review first")
    if case.status is Status.JOINT_REVIEW:
        waiting = [d for d, o, _ in case.joint if o == "pending"]
        against = [d for d, o, _ in case.joint if o == "disagree"]
        if waiting:
            raise ActionRefused("joint review still waiting for: " + ", ".join(waiting))
        if against:
            raise ActionRefused("cannot approve: disagreed by " + ", ".join(against) + " — reject it")
    return _decide(case, p, ctx, "approved")


def _reject(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    if not p.reason.strip():
        raise InvalidParams("a rejection needs its reason, in writing for the applicant")
    return _decide(case, p, ctx, "rejected")


def _escalate(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    if ctx.has_authority:
        raise ActionRefused(f"this node has authority for item {ctx.item.code}: decide it here")
    return {}, {"to_level": ctx.item.authority_level.value}


def _extend(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    approver = p.approver.strip()
    if not approver:
        raise InvalidParams("an extension needs the approver (the head who approved it)")
    if not p.reason.strip():
        raise InvalidParams("an extension needs its reason, told to the applicant")
    days = JOINT_EXTENSION_DAYS if ctx.item.item_type is ItemType.JOINT else DECISION_EXTENSION_DAYS
    changes: dict[str, Any] = {"extended": True, **_shifted_dues(case, days, ctx)}
    return changes, {"days": days, "approver": approver}


def is_suspended(case: CaseState) -> bool:
    """The clock stopped for a hearing, test, inspection or expert review (a supplement
    stops it too, but then the case waits in its own status, and a case rejected while it
    waited keeps the day its clock stopped)."""
    return case.pause_started is not None and case.status in (Status.UNDER_REVIEW, Status.JOINT_REVIEW)


def _suspend(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    if p.kind not in SUSPEND_KINDS:
        raise InvalidParams(f"suspend for what? kind {excerpt(p.kind)} is not one of {', '.join(SUSPEND_KINDS)}")
    if not p.reason.strip():
        raise InvalidParams(f"a suspension for {p.kind} needs its reason, told to the applicant")
    if isinstance(p.days, bool) or not isinstance(p.days, int) or not 1 <= p.days <= 250:
        raise InvalidParams(f"a suspension needs its planned duration: days {p.days!r} is not from 1 to 250 working days")
    return {"pause_started": ctx.today}, {"kind": p.kind, "reason": p.reason.strip(), "working_days": p.days}


def _resume(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    assert case.pause_started is not None
    paused = ctx.calendar.working_days_between(case.pause_started, ctx.today)
    changes: dict[str, Any] = {"pause_started": None, "paused_days": case.paused_days + paused,
                               **_shifted_dues(case, paused, ctx)}
    # ``kind``: the suspension's, filled in by the caller from the suspend event (the state keeps no copy).
    return changes, {"kind": p.kind, "reason": p.reason.strip(), "working_days": paused}


def _complete(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    return {}, {"decision": case.decision}


def may_deliver(case: CaseState) -> str | None:
    """Why ``case`` may not be handed over to the applicant now, or None: the one place the rule
    sits, checked by the owner (its ``deliver`` step) and by the window where the applicant applied
    (before it records a delivery of a case owned elsewhere). Rules that hold delivery back until
    something else is done (fees unpaid) belong here."""
    if case.status is not Status.COMPLETED:
        return f"case {case.receipt} is {case.status}: only a completed case (its result issued) can be delivered"
    if fees_outstanding(case):
        return (f"fees of {yuan(fees_outstanding(case))} yuan are due: record the payment (pay) or waive them "
                "(waive_fee) before the result is handed over")
    return None


def _deliver(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    refusal = may_deliver(case)
    if refusal is not None:
        raise ActionRefused(refusal)
    return {}, ({"at": p.at} if p.at else {})


def _pay(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    try:
        method = check_method(p.method)
    except ValueError as exc:
        raise InvalidParams(str(exc)) from None
    amount = p.amount_fen
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidParams(f"amount {amount!r}: a payment is a whole number of fen above 0")
    if not p.number.strip():
        raise InvalidParams("a payment needs its number (the collection point's receipt or the transaction number)")
    owed = fees_outstanding(case)
    if amount > owed:
        raise ActionRefused(f"{yuan(amount)} yuan is more than the {yuan(owed)} yuan still due")
    paid = case.fees_paid_fen + amount
    return {"fees_paid_fen": paid}, {"amount_fen": amount, "method": method.value, "number": p.number.strip(),
                                     "outstanding_fen": case.fees_due_fen - paid}


def _waive_fee(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    if not p.reason.strip():
        raise InvalidParams("a waiver needs its reason (the exemption and its basis), on the record")
    return {"fees_waived": True}, {"waived_fen": fees_outstanding(case)}


def _promised_days(case: CaseState, item: ServiceItem) -> int:
    """The case's promised limit: the item's, or its shorter green-channel limit when flagged."""
    if case.green_channel and item.green_channel_days:
        return min(item.green_channel_days, item.promised_days)
    return item.promised_days


def _green_channel(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    if not p.reason.strip():
        raise InvalidParams("the green channel needs its reason (the major project it serves), on the record")
    changes: dict[str, Any] = {"green_channel": True}
    detail: dict[str, Any] = {}
    flagged = dataclasses.replace(case, green_channel=True)
    if case.accepted_on is not None and case.due is not None:
        # Already running: the shorter limit counts from acceptance, plus any days the clock stood still.
        due = ctx.calendar.due_date(case.accepted_on, _promised_days(flagged, ctx.item), case.paused_days)
        if case.extended:
            due = ctx.calendar.add_working_days(
                due, JOINT_EXTENSION_DAYS if ctx.item.item_type is ItemType.JOINT else DECISION_EXTENSION_DAYS)
        if due < case.due:
            changes["due"] = due
            detail["due"] = due.isoformat()
            detail["was_due"] = case.due.isoformat()
    return changes, detail


def _withdraw(case: CaseState, p: ActParams, ctx: Context) -> Changes:
    return {}, {}


# --- system steps ---


def _hand_over(case: CaseState, p: HandOver, ctx: Moment) -> Changes:
    # One owner at a time, even in transit: the sender gives the case up in the same step.
    epoch = case.owner_epoch + 1
    return {"owner": p.to, "owner_epoch": epoch}, {"to": p.to, "epoch": epoch}


def _take_over(case: CaseState, p: TakeOver, ctx: Moment) -> Changes:
    return {"owner": ctx.node_id}, {"from": p.previous_owner, "epoch": case.owner_epoch}


def _noted(case: CaseState, p: Note, ctx: Moment) -> Changes:
    return {}, dict(p.detail)


REDATED_FIELDS = ("due", "statutory_due", "supplement_due", "issue_due")


def _due_recomputed(case: CaseState, p: Redated, ctx: Moment) -> Changes:
    if not p.moved:
        raise ActionRefused("no due date moved: nothing to record")
    changes = {name: new for name, (_, new) in p.moved.items() if name in REDATED_FIELDS}
    detail = {"years": list(p.years),
              "dues": {name: {"old": old.isoformat() if old else "", "new": new.isoformat()}
                       for name, (old, new) in p.moved.items()}}
    return changes, detail


def _timeout_agree(case: CaseState, p: Note, ctx: Moment) -> Changes:
    """A silent joint reviewer taken as agreeing: its opinion changes, with the event that says why."""
    department = p.detail["department"]
    joint = tuple((d, "agree", "timeout default: no opinion within its share") if d == department and o == "pending"
                  else (d, o, r) for d, o, r in case.joint)
    return {"joint": joint}, dict(p.detail)


def _deem_accept(case: CaseState, p: DeemedAcceptance, ctx: Moment) -> Changes:
    """Accepted as of its arrival, whatever is missing (art. 32: a window that did not give its
    one-time notice in time cannot refuse for it any more); what is missing is said on the event,
    for the review to ask for (a supplement request)."""
    promised = p.item.promised_days
    missing_core, missing_other = p.item.missing(case.materials)
    due = ctx.calendar.due_date(p.arrived, promised)
    changes: dict[str, Any] = {
        "missing_core": (),
        "accepted_on": p.arrived,
        "due": due,
        "statutory_due": ctx.calendar.due_date(p.arrived, p.item.statutory_days),
    }
    detail: dict[str, Any] = {"accepted_on": p.arrived.isoformat(), "due": due.isoformat(), "promised_days": promised,
                              "acceptance_due": p.due.isoformat()}
    if missing_core or missing_other:
        detail["missing"] = [*missing_core, *missing_other]
    return changes, detail


def _evaluate(case: CaseState, p: Rating, ctx: Moment) -> Changes:
    if p.record.rating:
        raise ActionRefused(f"case {case.receipt} was already rated {p.record.rating}: one rating per case")
    return {}, {"rating": p.rating, "comment": p.comment, "at": p.at}


def _rectification_opened(case: CaseState, p: Rating, ctx: Moment) -> tuple[EventDraft, ...]:
    """A dissatisfied rating opens a rectification with its own deadline."""
    if p.rating not in DISSATISFIED:
        return ()
    due = ctx.calendar.add_working_days(ctx.today, p.rectification_days).isoformat()
    return (EventDraft(action=RECTIFY_OPEN, from_status=case.status, to_status=case.status, actor=SYSTEM_ACTOR,
                       reason=f"rated {p.rating}: rectify by {due}",
                       detail={"due": due, "working_days": p.rectification_days}),)


def _rectify_close(case: CaseState, p: FollowUp, ctx: Moment) -> Changes:
    due = p.record.rectification_due
    if not due:
        raise ActionRefused(_NOT_NOW[SA.RECTIFY_CLOSE].format(receipt=case.receipt, status=case.status))
    if p.record.rectified:
        raise ActionRefused(f"the rectification of case {case.receipt} is already closed")
    return {}, {"due": due, "on_time": ctx.today.isoformat() <= due, "note": p.reason}


def _appeal(case: CaseState, p: FollowUp, ctx: Moment) -> Changes:
    if p.record.rating not in DISSATISFIED:
        raise ActionRefused(_NOT_NOW[SA.APPEAL].format(receipt=case.receipt, status=case.status))
    if p.record.appealed:
        raise ActionRefused(f"the rating of case {case.receipt} has already been appealed")
    return {}, {"reason": p.reason, "rating": p.record.rating}


def _decide_appeal(case: CaseState, p: FollowUp, ctx: Moment) -> Changes:
    if not p.record.appealed:
        raise ActionRefused(_NOT_NOW[SA.APPEAL_DECIDED].format(receipt=case.receipt, status=case.status))
    if p.record.appeal_decided:
        raise ActionRefused(f"the appeal on case {case.receipt} has already been decided")
    return {}, {"upheld": p.upheld, "reason": p.reason}


def _nothing_more(case: CaseState, p: Any, ctx: Any) -> tuple[EventDraft, ...]:
    return ()


@dataclass(frozen=True)
class _Rule:
    """How one step decides, once the table has allowed it from the case's status."""

    params: type[Any]
    decide: Callable[[CaseState, Any, Any], Changes]  # (case, params, ctx) -> (changes, event detail)
    then: Callable[[CaseState, Any, Any], tuple[EventDraft, ...]] = _nothing_more  # events that follow


_RULES: Mapping[Step, _Rule] = {
    A.ACCEPT: _Rule(ActParams, _accept),
    A.RETURN: _Rule(ActParams, _return),
    A.REVIEW: _Rule(ActParams, _review),
    A.REQUEST_SUPPLEMENT: _Rule(ActParams, _request_supplement),
    A.SUPPLEMENT: _Rule(ActParams, _supplement),
    A.START_JOINT: _Rule(ActParams, _start_joint),
    A.OPINION: _Rule(ActParams, _opinion),
    A.APPROVE: _Rule(ActParams, _approve),
    A.REJECT: _Rule(ActParams, _reject),
    A.ESCALATE: _Rule(ActParams, _escalate),
    A.EXTEND: _Rule(ActParams, _extend),
    A.COMPLETE: _Rule(ActParams, _complete),
    A.DELIVER: _Rule(ActParams, _deliver),
    A.WITHDRAW: _Rule(ActParams, _withdraw),
    A.SUSPEND: _Rule(ActParams, _suspend),
    A.RESUME: _Rule(ActParams, _resume),
    A.PAY: _Rule(ActParams, _pay),
    A.WAIVE_FEE: _Rule(ActParams, _waive_fee),
    A.GREEN_CHANNEL: _Rule(ActParams, _green_channel),
    SA.HAND_OVER: _Rule(HandOver, _hand_over),
    SA.TAKE_OVER: _Rule(TakeOver, _take_over),
    SA.WARN: _Rule(Note, _noted),
    SA.OVERDUE: _Rule(Note, _noted),
    SA.STEP_OVERDUE: _Rule(Note, _noted),
    SA.TIMEOUT_AGREE: _Rule(Note, _timeout_agree),
    SA.EVALUATE: _Rule(Rating, _evaluate, then=_rectification_opened),
    SA.RECTIFY_CLOSE: _Rule(FollowUp, _rectify_close),
    SA.APPEAL: _Rule(FollowUp, _appeal),
    SA.APPEAL_DECIDED: _Rule(FollowUp, _decide_appeal),
    SA.REQUEST_REFUSED: _Rule(Note, _noted),
    SA.DEEM_ACCEPT: _Rule(DeemedAcceptance, _deem_accept),
    SA.DUE_RECOMPUTED: _Rule(Redated, _due_recomputed),
}
assert set(_RULES) == {*Action, *SystemAction}, "every step needs its rule"
assert all(set(moves) <= set(_RULES) for moves in TABLE.values())


def _shifted_dues(case: CaseState, days: int, ctx: Context) -> dict[str, Any]:
    """Push the promised and statutory due dates back by ``days`` working days."""
    out: dict[str, Any] = {}
    if case.due is not None:
        out["due"] = ctx.calendar.add_working_days(case.due, days)
    if case.statutory_due is not None:
        out["statutory_due"] = ctx.calendar.add_working_days(case.statutory_due, days)
    return out


def _check_known(item: ServiceItem, materials: Sequence[str]) -> None:
    known = {m.name for m in item.materials}
    unknown = [m for m in materials if m not in known]
    if unknown:
        raise InvalidParams(
            f"item {item.code} does not list material(s) {excerpts(unknown)}; "
            f"its materials are: {', '.join(m.name for m in item.materials)}"
        )


def _dedupe(values: Sequence[str]) -> tuple[str, ...]:
    """Strip, drop empties and repeats, keep the first order."""
    seen: dict[str, None] = {}
    for v in values:
        v = v.strip()
        if v:
            seen.setdefault(v, None)
    return tuple(seen)
