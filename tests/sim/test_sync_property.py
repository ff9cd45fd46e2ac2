"""Property: whatever the network does, a federation ends in the state of the fault-free run.

(c) Random fault schedules (lost requests, lost answers, duplicated calls, copies held
    back and delivered late, partitioned links, batch sizes) and caseloads (three seeded
    ones, 12 to 36 cases, so each fault-free reference is computed once) on a 15-node tree
    always end — once the network heals and settles — in exactly the state the same
    caseload reaches with no faults and no interleaved exchanges at all.
(d) Negative control: with deduplication disabled (no link-cursor check, no end-to-end
    identity check), the same comparison fails for a schedule with duplicates. So the
    property can fail, and it is the dedupe that makes it hold.

The scenario (``run_scenario``) is deterministic given its seeds: the caseload seed
decides every domain operation and their order; the fault seed decides only the
network. Domain operations never depend on what the network has delivered: each phase
acts only on cases whose owner is settled, an owner never acts on a case while a
request for it is in flight, and each applicant is distinct.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from govnet.federation.routing import deciding_node
from govnet.federation.tree import Level, level_of
from govnet.node.app.links import SyncSettings
from govnet.node.app.replication import Replicator
from govnet.node.domain.catalog import ItemType, load_catalog_file, sample_catalog_path
from govnet.node.domain.fees import assess
from govnet.ops.simulation.harness import Federation, applicant
from govnet.sync.cursor import Cursor
from govnet.sync.transport.memory import Faults

CATALOG = load_catalog_file(sample_catalog_path())
CITY = "371100"
COUNTIES = ["371102", "371103"]
TOWNSHIPS = [f"{c}{t}" for c in COUNTIES for t in ("001", "002")]
VILLAGES = [f"{t}{v}" for t in TOWNSHIPS for v in ("201", "202")]
NODES = [CITY, *COUNTIES, *TOWNSHIPS, *VILLAGES]
LINKS = [*VILLAGES, *TOWNSHIPS, *COUNTIES]
assert len(NODES) == 15
# The property is about ordering and dedupe, not crash durability (tests/test_crash.py covers
# that): skipping fsync keeps the run CPU-bound and its time steady on a busy machine.
DURABLE = False

# Items a village agent point carries (all proxy-able), by the level that decides them.
VILLAGE_ITEMS = {
    Level.VILLAGE: ["MZ-0005", "WJ-0004", "YB-0001"],
    Level.TOWNSHIP: ["SJ-0002", "RS-0002", "MZ-0001", "MZ-0002", "ZR-0002"],
    Level.COUNTY: ["HB-0003", "SJ-0001", "HB-0002", "ZJ-0001", "MZ-0003", "WJ-0003", "RS-0003"],
    Level.CITY: ["HB-0001", "WJ-0001", "SJ-0004"],
}
# Items a township window receives itself: its own, and higher ones it escalates.
TOWNSHIP_ITEMS = {
    Level.TOWNSHIP: ["SJ-0002", "MZ-0001", "MZ-0002", "ZR-0002"],
    Level.COUNTY: ["HB-0002", "SJ-0001", "ZJ-0001", "WJ-0003", "GA-0002"],
    Level.CITY: ["HB-0004", "ZR-0001"],
}


@dataclass
class CaseSpec:
    node: str
    item: str
    variant: str  # full | tolerant | missing
    agent: str = ""
    receipt: str = ""


@dataclass
class Scenario:
    specs: list[CaseSpec]
    order_seed: int


def caseload(seed: int, n: int) -> Scenario:
    """``n`` submissions at villages (by agents) and townships; several authority levels."""
    rng = random.Random(seed)
    specs = []
    for _ in range(n):
        if rng.random() < 0.65:
            node = rng.choice(VILLAGES)
            level = rng.choice([Level.VILLAGE, Level.TOWNSHIP, Level.COUNTY, Level.COUNTY, Level.CITY])
            code = rng.choice(VILLAGE_ITEMS[level])
            agent = f"agent@{node}"
        else:
            node = rng.choice(TOWNSHIPS)
            level = rng.choice([Level.TOWNSHIP, Level.COUNTY, Level.COUNTY, Level.CITY])
            code = rng.choice(TOWNSHIP_ITEMS[level])
            agent = ""
        item = CATALOG.get(code)
        assert item is not None
        variants = ["full", "full", "full", "missing"]
        if item.tolerance and item.noncore_materials:
            variants += ["tolerant", "tolerant"]
        specs.append(CaseSpec(node, code, rng.choice(variants), agent))
    return Scenario(specs, rng.randrange(2**32))


def materials_for(spec: CaseSpec) -> list[str]:
    item = CATALOG.get(spec.item)
    assert item is not None
    names = [m.name for m in item.materials]
    if spec.variant == "tolerant":
        return list(item.core_materials)
    if spec.variant == "missing":
        return [m for m in names if m != item.core_materials[0]]
    return names


Op = tuple[str, str, dict[str, Any]]  # (node, action, params)


def decision_path(item_code: str, from_status: str) -> list[tuple[str, dict[str, Any]]]:
    """Actions that take an owned case from ``accepted`` or ``under_review`` to delivered."""
    item = CATALOG.get(item_code)
    assert item is not None
    steps: list[tuple[str, dict[str, Any]]] = []
    if from_status == "accepted" and item.item_type is not ItemType.IMMEDIATE:
        steps.append(("review", {}))
    if item.item_type is ItemType.JOINT:
        steps.append(("start_joint", {}))
        steps += [("opinion", {"department": d, "agree": True}) for d in item.joint_departments]
    steps += [("approve", {}), ("complete", {})]
    owed = assess(item).total_fen
    if owed:  # paid at the collection point before the result is handed over
        steps.append(("pay", {"amount_fen": owed, "method": "cash", "number": f"SF-{item_code}"}))
    steps.append(("deliver", {}))
    return steps


def plans(spec: CaseSpec) -> tuple[list[Op], list[Op]]:
    """Stage 1 (after intake has settled) and stage 2 (after stage 1 has settled) for one case.

    Chosen from the receipt. Stage 1 runs at the owner; stage 2 runs at the new owner of an
    escalated case, or sends requests from the origin to an owner that does nothing else
    to that case in that stage (so a request's outcome cannot depend on timing).
    """
    item = CATALOG.get(spec.item)
    assert item is not None
    origin = spec.node
    if level_of(origin) is Level.VILLAGE and item.authority_level is not Level.VILLAGE:
        owner = deciding_node(origin, item.authority_level)
    else:
        owner = origin
    has_authority = level_of(owner) is item.authority_level
    r = zlib.crc32(spec.receipt.encode()) % 100
    s1: list[Op] = []
    s2: list[Op] = []

    def at(node: str, steps: list[tuple[str, dict[str, Any]]]) -> list[Op]:
        return [(node, a, p) for a, p in steps]

    def by_origin_or_owner(action: str, params: dict[str, Any]) -> Op:
        # From the origin this becomes a request to the owner; at the owner it is applied at once.
        return (origin if origin != owner else owner, action, {**params, "actor": f"applicant-desk@{origin}"})

    if spec.variant == "missing":
        s1 = at(owner, [("return", {"reason": "材料不全"})])
        if origin != owner and r % 2:
            s2 = [by_origin_or_owner("withdraw", {})]  # refused by the owner: a returned case is closed
        return s1, s2
    if not has_authority:
        # A township escalates what it may not decide; the deciding node takes it from there.
        s1 = at(owner, [("accept", {}), ("review", {}), ("escalate", {"reason": "上级审批"})])
        decider = deciding_node(owner, item.authority_level)
        steps: list[tuple[str, dict[str, Any]]] = [("review", {})]
        if spec.variant == "tolerant":
            steps.append(("supplement", {"materials": list(item.noncore_materials)}))
        steps += decision_path(spec.item, "under_review")
        s2 = at(decider, steps)
        return s1, s2
    if spec.variant == "tolerant":
        s1 = at(owner, [("accept", {})])
        s2 = [by_origin_or_owner("supplement", {"materials": list(item.noncore_materials)})]
        return s1, s2
    if r < 15:
        s2 = [by_origin_or_owner("withdraw", {"reason": "申请人撤回"})]
    elif r < 30:
        steps = [("accept", {})]
        if item.item_type is not ItemType.IMMEDIATE:
            steps.append(("review", {}))
        steps += [("reject", {"reason": "不符合条件"}), ("complete", {})]
        s1 = at(owner, steps)
    elif r < 45 and item.item_type is ItemType.PROMISED:
        # The owner stops the clock for a material (补正); the applicant brings it at the origin.
        wanted = item.core_materials[-1]
        steps = [("accept", {}), ("review", {})]
        if r % 2:
            steps.append(("extend", {"approver": "局长", "reason": "情况复杂"}))
        s1 = at(owner, [*steps, ("request_supplement", {"materials": [wanted]})])
        s2 = [by_origin_or_owner("supplement", {"materials": [wanted]})]
    else:
        s1 = at(owner, [("accept", {}), *decision_path(spec.item, "accepted")])
        if origin != owner and r % 4 == 0:
            s2 = [by_origin_or_owner("withdraw", {})]  # too late: recorded as a refused request
    return s1, s2


@dataclass
class Network:
    """The fault side of a run: what the links do, and when exchanges happen."""

    seed: int
    faults: Faults
    partitions: list[tuple[str, int, int]] = field(default_factory=list)  # (link, first op, op count)
    churn_chance: float = 0.6
    churn_width: int = 5  # at most this many links exchange per churn round
    batch_max: int = 200  # envelopes per batch: small ones split cases across batches


def _partitioned(net: Network, op: int) -> set[str]:
    return {link for link, start, length in net.partitions if start <= op < start + length}


async def _run_ops(fed: Federation, queues: list[list[Op]], order: random.Random, net: Network | None,
                   net_rng: random.Random | None) -> None:
    """Run per-case op queues interleaved in a seeded order, with churn between ops when ``net``."""
    queues = [list(q) for q in queues if q]
    while queues:
        i = order.randrange(len(queues))
        node, action, params = queues[i].pop(0)
        if not queues[i]:
            queues.pop(i)
        fed.act(node, params["_receipt"], action, **{k: v for k, v in params.items() if k != "_receipt"})
        await _maybe_churn(fed, net, net_rng)


async def _maybe_churn(fed: Federation, net: Network | None, rng: random.Random | None) -> None:
    if net is None or rng is None:
        return
    cut = _partitioned(net, fed.ops)
    for link in LINKS:
        fed.partition(link, link in cut)
    if rng.random() < net.churn_chance:
        await fed.churn(rng.randint(1, 2), rng, most=net.churn_width)


@dataclass
class Outcome:
    snapshot: dict[str, Any]
    problems: list[str]
    fed_counts: Any = None


async def run_scenario(base: Path, scenario: Scenario, net: Network | None,
                       prepare: Callable[[Federation], None] | None = None) -> Outcome:
    """Publish, submit, settle, act, settle, act again, settle; then the state and the invariant breaks."""
    fed = Federation(base, NODES, seed=net.seed if net else 0, faults=net.faults if net else None,
                     settings=SyncSettings(batch_max=net.batch_max) if net else None, durable=DURABLE)
    if prepare is not None:
        prepare(fed)
    try:
        net_rng = random.Random(net.seed) if net else None
        order = random.Random(scenario.order_seed)
        fed.publish(CITY, CATALOG)
        await fed.settle()
        if net:
            fed.resume_faults()
        # Phase A: the caseload arrives, with the network misbehaving in between.
        specs = [CaseSpec(s.node, s.item, s.variant, s.agent) for s in scenario.specs]
        for i, spec in enumerate(specs):
            done = fed.submit(spec.node, spec.item, f"key-{i}", **applicant(i), materials=materials_for(spec),
                              agent=spec.agent)
            spec.receipt = done.record.state.receipt
            await _maybe_churn(fed, net, net_rng)
        # Phase B.
        await fed.settle()
        stage1, stage2 = [], []
        for spec in specs:
            a, b = plans(spec)
            stage1.append([(n, act, {**p, "_receipt": spec.receipt}) for n, act, p in a])
            stage2.append([(n, act, {**p, "_receipt": spec.receipt}) for n, act, p in b])
        # Phase C: owners act (township escalations hand cases over).
        if net:
            fed.resume_faults()
        await _run_ops(fed, stage1, order, net, net_rng)
        await fed.settle()
        # Phase C': the new owners act; origins send requests to owners elsewhere.
        if net:
            fed.resume_faults()
        await _run_ops(fed, stage2, order, net, net_rng)
        # Phase D.
        await fed.settle()
        problems = await invariants(fed, [s.receipt for s in specs])
        return Outcome(fed.snapshot(), problems, fed.counts)
    finally:
        fed.close()


async def invariants(fed: Federation, receipts: list[str]) -> list[str]:
    problems: list[str] = []
    views = {n: fed.owner_view(n) for n in NODES}
    snap = fed.snapshot()
    for receipt in receipts:
        owners = [n for n in NODES if receipt in views[n] and views[n][receipt][0] == n]
        if len(owners) != 1:
            problems.append(f"{receipt}: {len(owners)} nodes own it ({owners})")
            continue
        owner = owners[0]
        origin = next(c[5] for c in snap[owner]["cases"] if c[0] == receipt)
        if views[origin].get(receipt, (None, None, -1))[1:] != views[owner][receipt][1:]:
            problems.append(f"{receipt}: origin {origin} has {views[origin].get(receipt)}, "
                            f"owner {owner} has {views[owner][receipt]}")
        if owner != CITY:
            summary = next((x for x in snap[CITY]["summaries"] if x[0] == receipt), None)
            if summary is None or (summary[1], summary[3]) != (views[owner][receipt][1], views[owner][receipt][2]):
                problems.append(f"{receipt}: city summary {summary} lags owner {owner} {views[owner][receipt]}")
    for n in NODES:
        if snap[n]["quarantined"]:
            problems.append(f"{n}: {snap[n]['quarantined']} envelope(s) quarantined")
        if any(e[7] for e in snap[n]["events"]):
            problems.append(f"{n}: superseded events")
        if snap[n]["catalog_version"] != 1:
            problems.append(f"{n}: catalog version {snap[n]['catalog_version']}")
    divergent = await fed.compare_digests()
    if divergent:
        problems.append(f"digests differ after settling: {divergent}")
    return problems


# Caseloads the property draws from: (seed, size). Few, so each fault-free reference runs once.
CASELOADS = [(0, 12), (1, 24), (2, 36)]
_FAULT_FREE: dict[tuple[int, int], Outcome] = {}


def fault_free(base: Path, seed: int, n: int) -> Outcome:
    key = (seed, n)
    if key not in _FAULT_FREE:
        _FAULT_FREE[key] = asyncio.run(run_scenario(base / f"clean-{seed}-{n}", caseload(seed, n), None))
        shutil.rmtree(base / f"clean-{seed}-{n}", ignore_errors=True)
    return _FAULT_FREE[key]


def differences(clean: Outcome, faulty: Outcome) -> list[str]:
    """Everything in ``faulty`` that differs from the fault-free run, or breaks an invariant."""
    problems = list(faulty.problems)
    for node in NODES:
        for part, value in clean.snapshot[node].items():
            if faulty.snapshot[node][part] != value:
                problems.append(f"{node}: {part} differ from the fault-free run")
    return problems


probability = st.floats(0.0, 0.3, allow_nan=False)


@st.composite
def networks(draw: st.DrawFn) -> Network:
    faults = Faults(drop_request=draw(probability), drop_reply=draw(probability),
                    duplicate=draw(probability), delay=draw(probability))
    windows = draw(st.lists(st.tuples(st.sampled_from(LINKS), st.integers(0, 120), st.integers(1, 60)), max_size=5))
    return Network(draw(st.integers(0, 2**32 - 1)), faults, windows, batch_max=draw(st.sampled_from([2, 5, 200])))


HEAVY = Network(7, Faults(0.3, 0.3, 0.3, 0.3), [("371102", 5, 40), ("371102001", 30, 50), ("371103002201", 0, 200)],
                batch_max=3)


@settings(max_examples=4, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(load=st.sampled_from(CASELOADS), net=networks())
@example(load=CASELOADS[1], net=HEAVY)
def test_any_fault_schedule_ends_in_the_fault_free_state(tmp_path_factory: pytest.TempPathFactory,
                                                         load: tuple[int, int], net: Network) -> None:
    base = tmp_path_factory.mktemp("prop")
    clean = fault_free(base, *load)
    assert clean.problems == [], clean.problems  # the reference itself is sound
    try:
        faulty = asyncio.run(run_scenario(base / "faulty", caseload(*load), net))
    finally:
        shutil.rmtree(base / "faulty", ignore_errors=True)
    problems = differences(clean, faulty)
    assert problems == [], "\n".join(problems[:20])
    assert faulty.fed_counts.exchanges > 0


def test_without_dedupe_the_property_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: no link-cursor check and no identity check, duplicates on: the run diverges.

    The same comparison as above, with the same kind of schedule; only the dedupe is gone.
    """
    load = CASELOADS[1]
    clean = fault_free(tmp_path, *load)
    assert clean.problems == []

    def no_link_dedupe(fed: Federation) -> None:
        # Each inbox starts every batch from an empty cursor, so a resent or duplicated batch
        # is applied again (the stored cursor then holds that batch's positions, so the
        # acknowledgements still drain the outboxes) ...
        for core in fed.cores.values():
            core.inbox.cursor = lambda s, link, incarnation: Cursor()  # type: ignore[method-assign]

    # ... and the final target forgets every identity it applied.
    monkeypatch.setattr(Replicator, "_first_time", lambda self, s, env, now: True)
    net = Network(11, Faults(drop_reply=0.2, duplicate=0.3), [])
    faulty = asyncio.run(run_scenario(tmp_path / "faulty", caseload(*load), net, prepare=no_link_dedupe))
    problems = differences(clean, faulty)
    assert problems, "with dedupe disabled the faulty run should diverge from the fault-free one"
    # And it is the duplicates that do it: the same patched code without faults converges.
    calm = asyncio.run(run_scenario(tmp_path / "calm", caseload(*load), Network(11, Faults(), []),
                                    prepare=no_link_dedupe))
    assert differences(clean, calm) == []
