"""A year of applications and the work on them: how many arrive each day, where, for what,
and what clerks, applicants and supervisors do next.

Everything is drawn from one seeded generator, so the same seed gives the same caseload.
The rhythm comes from the working-day calendar (``node.domain.calendar``): windows are open on
working days only (adjusted working weekends included, statutory holidays not), Mondays and
the days after a holiday are busier, and the months have a seasonal shape (quiet around the
Spring Festival and in August, busy in March and before the year's end). The rates a planner
may want to change are the fields of ``Rates``.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from govnet.federation.tree import Level, level_of
from govnet.node.domain.calendar import WorkCalendar
from govnet.node.domain.catalog import Catalog, ServiceItem
from govnet.node.domain.lifecycle import RATINGS, CaseState, Status, allowed_actions

# Month (1-12) -> how busy it is against an average month: the Spring Festival falls in
# January or February, August is the holiday month, March and the last quarter are busy.
SEASON = (0.85, 0.8, 1.15, 1.05, 1.0, 1.0, 0.95, 0.85, 1.05, 1.0, 1.1, 1.15)
# Weekday (Monday 0) -> how busy a working day is (a working weekend counts as a Friday).
WEEKDAY = (1.25, 1.05, 1.0, 0.95, 0.85, 0.85, 0.85)


@dataclass(frozen=True)
class Rates:
    """What happens, and how often: the caseload's parameters, one per line."""

    at_village: float = 0.55
    """Share of applications a village agent carries (the rest go to township, county and city windows)."""
    at_township: float = 0.30
    """Share taken at a township window; the rest is split between county (3/4) and city windows."""
    resent: float = 0.01
    """Chance a window sends an application again with the same idempotency key (its answer was
    lost): the node must give back the same receipt, not a second case."""
    missing_material: float = 0.06
    """Chance an application lacks a core material: returned with one notice listing every missing one."""
    after_holiday: float = 1.3
    """How much busier the first working day after a break of three days or more is."""
    step_days: float = 1.2
    """Mean calendar days between two steps on a case that waits for a clerk (0 for same-day items)."""
    supplement_requested: float = 0.10
    """Chance a reviewer asks for more materials instead of deciding."""
    supplement_days: float = 3.0
    """Mean days an applicant takes to bring what was asked for."""
    rejected: float = 0.04
    """Chance a decision is a rejection."""
    extended: float = 0.02
    """Chance a reviewer extends the limit once (with an approver) before deciding."""
    withdrawn: float = 0.01
    """Chance an applicant withdraws a case while it waits."""
    rated: float = 0.6
    """Chance an applicant rates a delivered case at the window."""
    complaint: float = 0.003
    """Chance an application ends in a complaint about the case."""
    forgotten: float = 0.01
    """Chance a case is left lying at a step (so the deadline alarms have something to raise)."""
    weights: dict[str, float] = field(default_factory=lambda: {
        "accept": 10, "review": 10, "start_joint": 10, "opinion": 10, "approve": 10, "escalate": 10,
        "complete": 10, "deliver": 10, "resume": 10, "supplement": 10, "return": 0.2})
    """How likely a clerk takes each legal step when several are open (the rates above win for theirs)."""


@dataclass(frozen=True)
class Application:
    """One application as it arrives at a window."""

    node: str
    item: str
    materials: tuple[str, ...]
    agent: str  # a village agent's name when carried from a village ("" at a window)


def day_weight(calendar: WorkCalendar, day: date, rates: Rates) -> float:
    """How busy ``day`` is against an average working day (0: windows closed)."""
    if not calendar.is_working_day(day):
        return 0.0
    weight = SEASON[day.month - 1] * WEEKDAY[day.weekday()]
    closed = 0
    d = day - timedelta(days=1)
    while closed < 10 and not calendar.is_working_day(d):
        closed += 1
        d -= timedelta(days=1)
    return weight * (rates.after_holiday if closed >= 3 else 1.0)


def daily_counts(calendar: WorkCalendar, first: date, days: int, cases: int, rng: random.Random,
                 rates: Rates) -> list[int]:
    """How many applications arrive on each of ``days`` days from ``first``: ``cases`` in all,
    shared by the days' weights (the remainders go to the busiest days)."""
    weights = [day_weight(calendar, first + timedelta(days=i), rates) for i in range(days)]
    total = sum(weights)
    if total == 0:
        return [0] * days
    exact = [cases * w / total for w in weights]
    counts = [int(x) for x in exact]
    order = sorted(range(days), key=lambda i: (counts[i] - exact[i], rng.random()))
    for i in order[:cases - sum(counts)]:
        counts[i] += 1
    return counts


class Caseload:
    """Where applications arrive and for which item (``arrivals``), and the next step a clerk
    takes on a case (``next_step``)."""

    def __init__(self, catalog: Catalog, nodes: Sequence[str], rates: Rates, rng: random.Random) -> None:
        self.rates = rates
        self.rng = rng
        self.catalog = catalog
        items = sorted(catalog.items, key=lambda i: i.code)
        self.proxy_items = [i for i in items if i.proxy]
        self.window_items = items
        by_level: dict[Level, list[str]] = {lvl: [] for lvl in Level}
        for n in nodes:
            by_level[level_of(n)].append(n)
        self.by_level = {lvl: sorted(ids) for lvl, ids in by_level.items()}

    def _where(self) -> tuple[str, bool]:
        r, rates = self.rng.random(), self.rates
        order: list[tuple[Level, float]] = [
            (Level.VILLAGE, rates.at_village), (Level.TOWNSHIP, rates.at_township),
            (Level.COUNTY, (1 - rates.at_village - rates.at_township) * 0.75)]
        for level, share in order:
            if r < share and self.by_level[level]:
                return self.rng.choice(self.by_level[level]), level is Level.VILLAGE
            r -= share
        for level in (Level.CITY, Level.COUNTY, Level.TOWNSHIP, Level.VILLAGE):  # a small tree lacks some levels
            if self.by_level[level]:
                return self.rng.choice(self.by_level[level]), level is Level.VILLAGE
        raise ValueError("no nodes")

    def application(self) -> Application:
        node, village = self._where()
        level = level_of(node)
        # A window takes the items decided at its level or above (lower ones are applied for lower down).
        offered = [i for i in (self.proxy_items if village else self.window_items)
                   if i.authority_level.rank <= level.rank]
        item = self.rng.choice(offered)
        materials = [m.name for m in item.materials]
        if self.rng.random() < self.rates.missing_material:
            core = [m.name for m in item.materials if m.core]
            if core:
                materials.remove(self.rng.choice(core))
        return Application(node, item.code, tuple(materials), "代办员" if village else "")

    def delay_days(self, item: ServiceItem | None, status: Status) -> int:
        """Days until the next step on a case now in ``status``."""
        if status is Status.AWAITING_SUPPLEMENT:
            mean = self.rates.supplement_days
        elif item is not None and item.promised_days == 0:
            return 0
        else:
            mean = self.rates.step_days
        if self.rng.random() < self.rates.forgotten:
            mean *= 20
        return int(self.rng.expovariate(1 / mean)) if mean > 0 else 0

    def next_step(self, case: CaseState, authority_here: bool = True, item: ServiceItem | None = None,
                  exclude: Collection[str] = ()) -> str | None:
        """The step a clerk (or the applicant) takes next on ``case`` (None: nothing);
        ``authority_here``: whether the owner's level decides the case's item (if not, it reviews
        and sends it up instead of deciding). Only the steps its state lets through are
        considered (``lifecycle.allowed_actions``: no resuming a running clock, no second
        extension), the applicant supplements only what was asked for, and a clerk who sees a core
        material missing (``item``) returns the application with the one-time notice instead of
        accepting it. The item's other rules are the desk's to say: a
        step it refused is passed back in ``exclude``, and another is chosen."""
        # Fees are paid when owed (the simulation asks the case), and the green channel is a
        # supervisor's flag, not a clerk's next step.
        moves = [a for a in allowed_actions(case) if a not in ("pay", "waive_fee", "green_channel", *exclude)]
        if not (case.requested_materials or case.pending_materials):
            moves = [m for m in moves if m != "supplement"]
        if item is not None and "accept" in moves and "return" not in exclude and item.missing(case.materials)[0]:
            return "return"
        if authority_here:
            moves = [m for m in moves if m != "escalate"]
        else:
            moves = [m for m in moves if m not in ("approve", "reject", "start_joint", "complete", "deliver")]
        if not moves:
            return None
        rates, r = self.rates, self.rng.random()
        if "withdraw" in moves and r < rates.withdrawn:
            return "withdraw"
        r = self.rng.random()
        if "request_supplement" in moves and r < rates.supplement_requested:
            return "request_supplement"
        if "extend" in moves and r < rates.supplement_requested + rates.extended:
            return "extend"
        if "reject" in moves and "approve" in moves and self.rng.random() < rates.rejected:
            return "reject"
        usual = [m for m in moves if m not in ("withdraw", "request_supplement", "extend", "reject", "suspend")]
        if not usual:
            return None
        return self.rng.choices(usual, [rates.weights.get(m, 1.0) for m in usual])[0]

    def rating(self) -> str:
        return self.rng.choices(RATINGS, (40, 40, 12, 5, 3))[0]
