"""Case statistics (办件统计): what each node counts, and the rates derived from the counts.

Who counts what. Every fact is counted exactly once, by the node that originated it:
an event is counted by the node that wrote it (``case_event.origin``), in its own store,
on the day it happened (China local date of ``happened_at``); a complaint is counted by
the node it is about (``complaint.about_node``), on the day it was filed. That is the
node that *did* the work: the window where the applicant applied has the ``submit``, the
owner at that moment has the acceptance, the decision, the alarm, the evaluation (an
evaluation made at the applicant's window travels to the owner and is recorded there,
so "it counts for the owner"). Events a node merely holds as a copy (the history that
came with a transfer, the owner's events mirrored back to the origin) are counted by
their origin, never by the holder; events written under a superseded ownership epoch
are flagged at the new owner and never counted there. So summing every node's own
counts over the tree gives each fact once: that is what ``federation.rollup`` does.

Each fact lands in one bucket: (day, item code, department) of the case.

The counters (all whole numbers; one bucket row has each of them):

``received``             ``submit`` events: applications taken at this window or agent point.
``accepted``             ``accept`` events, and ``deem_accept`` (accepted by the law's deadline).
``immediate``            ``approve``/``reject`` events decided the same day as the case was
                         accepted, by the node that accepted it (即办: decided at the window).
``completed``            ``complete`` events (the licence or the decision document issued).
``on_time``              ``complete`` events of cases decided on or before their due date.
``overdue``              ``overdue`` events: red cards raised by the supervision scanner.
``warnings``             ``warn`` events: yellow cards.
``returned``             ``return`` events (one-time notice).
``escalated``            ``escalate`` events.
``supplement_requests``  ``request_supplement`` events (补正).
``eval_<rating>``        ``evaluate`` events, per level of the five-level scale.
``complaints``           complaints about this node, by the day they were filed.
``fees_fen``             fees due: on each ``complete`` of an approved case, what approval assessed it
                         owes (fen; ``fees.assess``: a fee's free units are not charged).
``processing_days``      on each ``complete``: working days from acceptance to decision
                         (``working_days_between(accepted_on, decided_on)``) minus the
                         working days the clock was stopped (``paused_days``), never below 0.
``carried``              ``submit`` events of cases a village agent carried (代办), whatever their kind.
``kind_<kind>``          ``submit`` events by the kind the case has at intake (immediate, promised,
                         joint, escalated; returned cases are ``returned``). Carriage and kind are
                         two facts: a joint case an agent carried counts in ``carried`` and ``kind_joint``.
``fees_collected_fen``   ``pay`` events: the amount paid (fen), counted by the node that recorded the
                         payment (the collection point), on the day it was paid.
``fees_waived_fen``      ``waive_fee`` events: the amount waived (fen).
``green_channel``        ``green_channel`` events: cases flagged for the green channel (绿色通道).

Derived (``Rates``; None when the denominator is 0): on-time rate = on_time / completed;
immediate rate = immediate / accepted; satisfaction rate = (very satisfied + satisfied +
basically satisfied) / evaluations; average processing days = processing_days / completed.

This module is pure: facts and the calendar in, counts out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from govnet.node.domain.calendar import WorkCalendar
from govnet.node.domain.lifecycle import RATINGS

SATISFIED = RATINGS[:3]
INTAKE_KINDS = ("immediate", "promised", "joint", "escalated")  # a case's kind when it is received
COUNTERS: tuple[str, ...] = (
    "received", "accepted", "immediate", "completed", "on_time", "overdue", "warnings", "returned",
    "escalated", "supplement_requests", *(f"eval_{r}" for r in RATINGS), "complaints", "fees_fen",
    "processing_days", "carried", *(f"kind_{k}" for k in INTAKE_KINDS), "fees_collected_fen", "fees_waived_fen",
    "green_channel",
)
# Events counted one for one, by action name.
SIMPLE = {"submit": "received", "accept": "accepted", "complete": "completed", "overdue": "overdue",
          "warn": "warnings", "return": "returned", "escalate": "escalated",
          "request_supplement": "supplement_requests", "green_channel": "green_channel",
          "deem_accept": "accepted"}  # art. 32: not accepted or refused in 5 working days, so accepted
DECISIONS = ("approve", "reject")
COUNTED_ACTIONS = frozenset({*SIMPLE, *DECISIONS, "evaluate", "pay", "waive_fee"})

Bucket = tuple[str, str, str]  # (day ISO, item code, department)


@dataclass(frozen=True)
class StatsSettings:
    """``[statistics]`` in govnet.toml."""

    flush_interval_s: float = 0.5  # how often new facts are counted and sent up
    heartbeat_s: float = 60.0  # with nothing new, how often a node still reports (coverage)


@dataclass(frozen=True)
class EventFact:
    """One event this node originated, with what its counting needs from the case."""

    action: str
    happened_on: date
    item_code: str
    department: str
    rating: str = ""  # evaluate: the detail's rating
    accepted_here_on: date | None = None  # decisions: the day THIS node accepted the case, if it did
    accepted_on: date | None = None  # complete: the case as it is now
    decided_on: date | None = None
    due: date | None = None
    paused_days: int = 0
    decision: str = ""
    fees_fen: int = 0  # complete: the fees due (assessed at approval); pay / waive_fee: the amount
    agent: str = ""  # submit: the village agent who carried the case, if any
    case_type: str = ""  # submit: the case's kind at intake


@dataclass(frozen=True)
class ComplaintFact:
    filed_on: date
    item_code: str
    department: str


def contributions(fact: EventFact, calendar: WorkCalendar) -> dict[str, int]:
    """What one event adds to its bucket (empty for an event that is not counted)."""
    out: dict[str, int] = {}
    name = SIMPLE.get(fact.action)
    if name:
        out[name] = 1
    if fact.action in DECISIONS and fact.accepted_here_on == fact.happened_on:
        out["immediate"] = 1
    if fact.action == "submit":
        if fact.agent:
            out["carried"] = 1
        if fact.case_type in INTAKE_KINDS:
            out[f"kind_{fact.case_type}"] = 1
    if fact.action == "pay" and fact.fees_fen > 0:
        out["fees_collected_fen"] = fact.fees_fen
    if fact.action == "waive_fee" and fact.fees_fen > 0:
        out["fees_waived_fen"] = fact.fees_fen
    if fact.action == "evaluate" and fact.rating in RATINGS:
        out[f"eval_{fact.rating}"] = 1
    if fact.action == "complete":
        if fact.due is not None and fact.decided_on is not None and fact.decided_on <= fact.due:
            out["on_time"] = 1
        if fact.accepted_on is not None and fact.decided_on is not None:
            worked = calendar.working_days_between(fact.accepted_on, fact.decided_on)
            out["processing_days"] = max(0, worked - fact.paused_days)
        if fact.decision == "approved" and fact.fees_fen:
            out["fees_fen"] = fact.fees_fen
    return out


def bucket_of(fact: EventFact | ComplaintFact) -> Bucket:
    day = fact.happened_on if isinstance(fact, EventFact) else fact.filed_on
    return (day.isoformat(), fact.item_code, fact.department)


def tally(events: Iterable[EventFact], complaints: Iterable[ComplaintFact],
          calendar: WorkCalendar) -> dict[Bucket, dict[str, int]]:
    """Counts per bucket (only counters that are not zero)."""
    out: dict[Bucket, dict[str, int]] = {}
    for fact in events:
        adds = contributions(fact, calendar)
        if adds:
            add_to(out.setdefault(bucket_of(fact), {}), adds)
    for c in complaints:
        add_to(out.setdefault(bucket_of(c), {}), {"complaints": 1})
    return out


def add_to(counts: dict[str, int], adds: Mapping[str, int]) -> None:
    for k, v in adds.items():
        counts[k] = counts.get(k, 0) + v


@dataclass(frozen=True)
class Rates:
    on_time: float | None
    immediate: float | None
    satisfaction: float | None
    average_processing_days: float | None


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def rates(counts: Mapping[str, int]) -> Rates:
    evaluations = sum(counts.get(f"eval_{r}", 0) for r in RATINGS)
    satisfied = sum(counts.get(f"eval_{r}", 0) for r in SATISFIED)
    completed = counts.get("completed", 0)
    return Rates(
        on_time=_ratio(counts.get("on_time", 0), completed),
        immediate=_ratio(counts.get("immediate", 0), counts.get("accepted", 0)),
        satisfaction=_ratio(satisfied, evaluations),
        average_processing_days=_ratio(counts.get("processing_days", 0), completed),
    )


RATES: tuple[str, ...] = ("on_time", "immediate", "satisfaction", "average_processing_days")
# What groups can be ranked by: a derived rate, or any counter (the number of complaints, of red cards…).
RANKINGS: tuple[str, ...] = (*RATES, *(c for c in COUNTERS if c not in RATES))


def measure(counts: Mapping[str, int], name: str) -> float | None:
    """The value ranked by ``name``: a rate (None when its denominator is 0) or a counter."""
    if name in RATES:
        value: float | None = getattr(rates(counts), name)
        return value
    if name in COUNTERS:
        return float(counts.get(name, 0))
    raise ValueError(f"cannot rank by {name!r}; choose one of {', '.join(RANKINGS)}")


def rank(groups: Mapping[str, Mapping[str, int]], name: str, descending: bool = True) -> list[str]:
    """The group keys ordered by ``name`` (highest first unless ``descending`` is False).

    Ties keep the groups' own order (the keys sorted), whichever the direction; a group whose rate
    is unknown (nothing to divide by) comes last either way: "no case" is neither best nor worst."""
    known = [(key, v) for key, v in ((k, measure(c, name)) for k, c in sorted(groups.items())) if v is not None]
    unknown = [k for k in sorted(groups) if measure(groups[k], name) is None]
    # sorted() is stable, also with reverse=True: equal values stay in key order.
    ordered = sorted(known, key=lambda kv: kv[1], reverse=descending)
    return [k for k, _ in ordered] + unknown
