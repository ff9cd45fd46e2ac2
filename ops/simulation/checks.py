"""The simulation checks itself: after the network healed and settled, what every node holds
must agree with what was done.

* every application is one case, however often its window sent it (the idempotency key);
* every case submitted is owned by exactly one node (none lost, none doubled) and no node
  owns a case nobody submitted;
* every decision reached its point of application: the applicant's window holds the case
  with the owner's status and decision;
* the city's statistics for every node equal that node's own count of its facts, and the
  city's total of received cases equals the number submitted;
* every deadline alarm was recorded exactly once (no alarm key twice in a case's history at
  its owner) and none is still due (a scan now records nothing);
* no write from a superseded owner was applied: in a case's history at its owner, a node that
  handed the case on originates nothing after that hand-over except what it may still do
  (a rating or an applicant's request is applied by the owner, and alarms are raised by it);
* nothing sits in a quarantine without a reason.

The first problem found names the case (or node) where things diverged; ``ok`` is False when
there is any problem.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from govnet.node.app.statistics_ledger import own_rows
from govnet.node.domain.deadlines import ALARM_ACTIONS, alarm_key
from govnet.node.store import quarantine
from govnet.ops.simulation.harness import Federation

HAND_OVER = "hand_over"  # the step by which ownership passes to the level with authority (a new epoch)


@dataclass
class CheckResult:
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> str:
        return self.problems[0] if self.problems else ""

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "first": self.first, "problems": self.problems[:100],
                "problem_count": len(self.problems), "counts": self.counts}


def _nonzero(counters: Mapping[str, int] | None) -> dict[str, int]:
    return {k: v for k, v in (counters or {}).items() if v}


def self_check(fed: Federation, submitted: Sequence[tuple[str, str]],
               applications: Mapping[str, Sequence[str]] | None = None) -> CheckResult:
    """Check ``fed`` (settled) against the cases ``submitted`` as (receipt, origin) and the
    ``applications`` (idempotency key -> the receipts the windows were given for it)."""
    out = CheckResult()
    problems = out.problems
    for key, receipts in sorted((applications or {}).items()):
        if len(receipts) > 1:
            problems.append(f"application {key} became {len(receipts)} cases: {', '.join(receipts)} "
                            "(a resent application taken twice)")
    held: dict[str, dict[str, Any]] = defaultdict(dict)  # receipt -> node -> state
    for n in fed.nodes:
        for record in fed.cases(n):
            held[record.state.receipt][n] = record.state
    owners = {r: [n for n, st in by_node.items() if st.owner == n] for r, by_node in held.items()}
    origins = dict(submitted)

    # 1. owned exactly once
    for receipt, origin in submitted:
        found = owners.get(receipt, [])
        if not found:
            problems.append(f"case {receipt} (submitted at {origin}) is owned by no node: lost")
        elif len(found) > 1:
            problems.append(f"case {receipt} (submitted at {origin}) is owned by {len(found)} nodes: "
                            f"{', '.join(sorted(found))}")
    for receipt in sorted(set(owners) - set(origins)):
        if owners[receipt]:
            problems.append(f"case {receipt} is owned by {owners[receipt][0]} but was never submitted")

    # 2. decisions back at the point of application
    delivered = 0
    for receipt, origin in submitted:
        found = owners.get(receipt, [])
        if len(found) != 1:
            continue
        mine = held[receipt][found[0]]
        there = held[receipt].get(origin)
        if there is None:
            problems.append(f"case {receipt}: its window {origin} holds no copy")
        elif (there.status, there.decision) != (mine.status, mine.decision):
            problems.append(f"case {receipt}: its window {origin} shows {there.status.value}/{there.decision or '-'}, "
                            f"its owner {found[0]} {mine.status.value}/{mine.decision or '-'}")
        elif mine.decision:
            delivered += 1

    # 3. the city's rollup against every node's own count
    city = fed.nodes[0]
    city_store = fed.core(city).store
    received = 0
    for n in fed.nodes:
        own = {r.key: r.counters for r in own_rows(fed.core(n).store, n)}
        at_city = {r.key: r.counters for r in own_rows(city_store, n)}
        received += sum(c.get("received", 0) for c in at_city.values())
        nonzero = {k: v for k, v in own.items() if any(v.values())}
        if nonzero != {k: v for k, v in at_city.items() if any(v.values())}:
            wrong = sorted(set(nonzero) ^ set(at_city) | {k for k in nonzero if at_city.get(k) != nonzero[k]})
            k = wrong[0]
            problems.append(f"the city's statistics for node {n} differ from its own count: row {k.day} {k.item_code} "
                            f"{k.department}: node {_nonzero(own.get(k))}, city {_nonzero(at_city.get(k))}")
    if received != len(submitted):
        problems.append(f"the city counts {received} cases received, {len(submitted)} were submitted")

    # 4. deadline alarms exactly once; 5. no write from a superseded owner
    alarms = superseded = 0
    for receipt, found in sorted(owners.items()):
        if len(found) != 1:
            continue
        owner = found[0]
        events = fed.events(owner, receipt)
        superseded += sum(1 for e in events if e.seq < 0)
        live = [e for e in events if e.seq > 0]
        keys = Counter(alarm_key(e.action, e.detail) for e in live if e.action in ALARM_ACTIONS)
        alarms += sum(keys.values())
        twice = [k for k, c in keys.items() if c > 1]
        if twice:
            problems.append(f"case {receipt}: alarm {twice[0]} recorded {keys[twice[0]]} times")
        handed: set[str] = set()
        for e in live:
            if e.origin in handed and e.action not in ("evaluate",):
                problems.append(f"case {receipt}: event {e.seq} ({e.action}) from {e.origin}, "
                                "which had already handed the case on")
                break
            if e.action == HAND_OVER:
                handed.add(e.origin)
    late = {n: fed.scan(n) for n in fed.nodes}
    for n, count in sorted(late.items()):
        if count:
            problems.append(f"node {n}: {count} deadline alarms were still due after the last scan")

    # 6. nothing quarantined without a reason
    quarantined = 0
    for n in fed.nodes:
        with fed.core(n).store.reading() as s:
            for (side, reason), count in quarantine.counts(s).items():
                quarantined += count
                if not reason:
                    problems.append(f"node {n}: {count} envelopes quarantined ({side}) without a reason")

    out.counts = {"cases": len(submitted), "owned_once": sum(1 for r, _ in submitted if len(owners.get(r, [])) == 1),
                  "decisions_at_window": delivered, "cases_counted_at_city": received, "alarms": alarms,
                  "superseded_writes_kept_apart": superseded, "quarantined": quarantined}
    return out
