"""What goes wrong, and when: a fault schedule drawn up front from a seed.

A profile (``PROFILES``: none, default, harsh) gives rates per link or node and year; the
schedule turns them into dated events (``Fault``), so a run's faults do not depend on what
the caseload did, and the same seed gives the same faults. Kinds:

* ``outage``: a link between a node and its parent is down for hours to weeks (the length is
  log-uniform between the profile's bounds);
* ``crash``: a node stops and starts again on its store, losing everything it held only in
  memory (held-back copies on its link, anything not committed);
* ``restore``: a node below the city is stopped and brought back from the backup taken
  ``days`` before, as a new incarnation (what it did since is what its neighbours must give back);
* ``skew``: a node's clock runs ahead or behind by up to the profile's minutes from then on.

Batch faults (dropped, duplicated, delayed and reordered batches) are rates on every link
(``sync.transport.memory.Faults``), drawn by each link's own seeded generator.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from govnet.federation.tree import parent_id
from govnet.sync.transport.memory import Faults


@dataclass(frozen=True)
class FaultProfile:
    """Rates of each kind of fault, per link or node and year of simulated time."""

    outages: float = 0.0
    """Outages per link and year."""
    outage_hours: tuple[float, float] = (2.0, 14 * 24.0)
    """Shortest and longest outage, in hours."""
    crashes: float = 0.0
    """Crashes per node and year."""
    restores: float = 0.0
    """Restores from an older backup per node and year."""
    backup_age_days: int = 3
    """How old the backup is that a restore brings back."""
    skew_minutes: float = 0.0
    """Largest clock skew between a node and the others, in minutes (a share of nodes gets one)."""
    skewed_share: float = 0.0
    """Share of nodes whose clock is skewed."""
    batches: Faults = field(default_factory=Faults)
    """Dropped requests and answers, duplicated and held-back (late, out-of-order) batches on every link."""


PROFILES: dict[str, FaultProfile] = {
    "none": FaultProfile(),
    "default": FaultProfile(outages=2.0, crashes=1.0, restores=0.1, skew_minutes=5.0, skewed_share=0.05,
                            batches=Faults(drop_request=0.02, drop_reply=0.02, duplicate=0.02, delay=0.02)),
    "harsh": FaultProfile(outages=8.0, outage_hours=(1.0, 30 * 24.0), crashes=6.0, restores=1.0,
                          skew_minutes=30.0, skewed_share=0.2,
                          batches=Faults(drop_request=0.1, drop_reply=0.1, duplicate=0.15, delay=0.15)),
    # For short campaigns on small trees (CI): harsh, with restores frequent enough that a week
    # on four nodes meets some (at harsh's one a node and year, most such runs would have none).
    "chaos": FaultProfile(outages=8.0, outage_hours=(1.0, 30 * 24.0), crashes=6.0, restores=40.0,
                          backup_age_days=2, skew_minutes=30.0, skewed_share=0.2,
                          batches=Faults(drop_request=0.1, drop_reply=0.1, duplicate=0.15, delay=0.15)),
}


@dataclass(frozen=True, order=True)
class Fault:
    """One scheduled fault: from ``start`` (hours since the run's start) on ``node`` (its link
    to its parent for an outage), for ``hours`` (outage) or ``minutes`` of skew."""

    start: float
    kind: str  # outage | crash | restore | skew
    node: str
    hours: float = 0.0
    minutes: float = 0.0


def _poisson_times(rng: random.Random, per_year: float, span_hours: float) -> list[float]:
    """Moments (hours) of a Poisson process of ``per_year`` events a year over ``span_hours``."""
    if per_year <= 0:
        return []
    rate = per_year / (365 * 24)
    out, t = [], rng.expovariate(rate)
    while t < span_hours:
        out.append(t)
        t += rng.expovariate(rate)
    return out


def schedule(profile: FaultProfile, nodes: Sequence[str], days: int, rng: random.Random) -> list[Fault]:
    """Every fault of a run of ``days`` days over ``nodes``, in time order (ties by kind, node)."""
    span = days * 24.0
    low, high = profile.outage_hours
    out: list[Fault] = []
    for node in sorted(nodes):
        has_parent = parent_id(node) is not None
        if has_parent:
            for t in _poisson_times(rng, profile.outages, span):
                hours = math.exp(rng.uniform(math.log(low), math.log(high)))
                out.append(Fault(t, "outage", node, hours=hours))
        for t in _poisson_times(rng, profile.crashes, span):
            out.append(Fault(t, "crash", node))
        for t in _poisson_times(rng, profile.restores, span):
            # A backup that old must exist. And the city is not restored from an older backup:
            # with no parent above it, what it took in at its own windows since would be lost in
            # any design; its store is protected by a standby copy, not by going back in time.
            if t > profile.backup_age_days * 24 and has_parent:
                out.append(Fault(t, "restore", node))
        if rng.random() < profile.skewed_share:
            out.append(Fault(rng.uniform(0, span), "skew", node,
                             minutes=rng.uniform(-profile.skew_minutes, profile.skew_minutes)))
    return sorted(out)
