"""``govnet simulate``: a whole city of real node cores over simulated time, with a caseload,
scheduled faults, a self-check and the figures a planner asks for.

The nodes are built by the one composition root (``node.process.build.build_node``, through
``harness.Federation``) over real SQLite stores, joined by the in-memory transport, all in
this process. Time is a ``ManualClock``: each simulated day has ``syncs`` rounds (08:00 to
18:00); in each round the day's share of applications arrives, the case steps due are
taken at each case's owner, due faults begin or end, and then every link with something to
send exchanges (child up, then parents down) until nothing moves. At the end of a day the
owners scan for deadline alarms and every node that worked counts its statistics.

At the end the network heals, everything settles, and ``checks.self_check`` compares what
was done with what every node holds. Randomness comes only from the seed (the caseload, the
fault schedule and each link's generator have their own, derived from it), so the same
seed gives the same run and the same digest.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import resource
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from govnet.federation.tree import Level, level_of, parent_id
from govnet.node.app.complaints import FileCommand
from govnet.node.app.desk import DeskError
from govnet.node.app.links import SyncSettings
from govnet.node.domain.calendar import CHINA_TZ
from govnet.node.domain.catalog import Catalog, load_catalog_file, sample_catalog_path
from govnet.node.domain.lifecycle import TERMINAL, CaseState, Status, fees_outstanding
from govnet.node.store import cases, outbox
from govnet.ops.simulation.caseload import Caseload, Rates, daily_counts
from govnet.ops.simulation.checks import CheckResult, self_check
from govnet.ops.simulation.faults import PROFILES, Fault, schedule
from govnet.ops.simulation.harness import Federation, NotSettled, applicant, depth_first, shallow_first

FIRST_DAY = date(2026, 1, 1)  # the calendar ships 2026's holidays and adjusted working days
OPEN_HOUR, CLOSE_HOUR = 8, 18


@dataclass(frozen=True)
class Setup:
    """What to simulate."""

    nodes: tuple[str, ...]
    days: int = 365
    cases: int = 600_000
    seed: int = 1
    faults: str = "default"
    names: dict[str, str] = field(default_factory=dict)
    rates: Rates = field(default_factory=Rates)
    syncs: int = 4  # exchange rounds a day
    first_day: date = FIRST_DAY
    forgetful: bool = False  # FOR TESTS ONLY: deduplication off (the check must fail)
    offline_week: bool = False  # also measure a village offline 7 days at 50 cases a day


@dataclass
class Case:
    """What the driver knows of a case it submitted."""

    receipt: str
    origin: str
    item: str
    next_at: int  # the round (day * syncs + round) of its next step
    tries: int = 0
    delivered: bool = False
    owner: str = ""  # where it was owned when last seen (where to look first)


@dataclass
class Outage:
    node: str
    start_h: float
    end_h: float
    backlog: int = -1  # envelopes waiting on both ends when it ended (-1: not ended yet)
    caught_up_h: float = -1.0  # hours after its end until both ends were empty


@dataclass
class Report:
    seed: int
    nodes: int
    nodes_per_level: dict[str, int]
    days: int
    cases_planned: int
    cases_submitted: int
    applications_resent: int  # sent again with the same idempotency key (must stay one case each)
    steps_taken: int
    steps_refused: int
    evaluations: int
    complaints: int
    alarms: int
    faults: dict[str, int]
    exchanges: int
    envelopes_pushed: int
    envelopes_pulled: int
    outages: list[dict[str, Any]]
    catch_up_hours_max: float
    catch_up_hours_mean: float
    peak_outbox_per_level: dict[str, int]
    peak_inbox_per_level: dict[str, int]
    store_mb_per_level: dict[str, dict[str, float]]
    busiest_township: dict[str, Any]
    digest: str
    check: dict[str, Any]
    wall_s: float
    wall_by_phase_s: dict[str, float]
    peak_memory_mb: float
    outbox_series: dict[str, list[int]]  # level -> total outbox depth at each day's end
    offline_week: dict[str, Any]  # the planner's figure (empty when not asked for)

    @property
    def ok(self) -> bool:
        return bool(self.check["ok"])

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict
        return asdict(self)

    def format(self) -> str:
        lv = self.nodes_per_level
        lines = [
            f"simulated {self.days} days over {self.nodes} nodes ({lv.get('city', 0)} city, {lv.get('county', 0)} "
            f"county, {lv.get('township', 0)} township, {lv.get('village', 0)} village), seed {self.seed}",
            f"cases: {self.cases_submitted} submitted ({self.applications_resent} resent), {self.steps_taken} steps taken ({self.steps_refused} refused), "
            f"{self.evaluations} ratings, {self.complaints} complaints, {self.alarms} deadline alarms",
            "faults: " + (", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"),
            f"sync: {self.exchanges} exchanges, {self.envelopes_pushed} envelopes up, {self.envelopes_pulled} down",
            f"catch-up after an outage: longest {self.catch_up_hours_max:.1f} h, mean {self.catch_up_hours_mean:.1f} h "
            f"({len(self.outages)} outages)",
            "peak outbox per level: " + ", ".join(f"{k} {v}" for k, v in self.peak_outbox_per_level.items()),
            "peak inbox per level (applied as received here): " + ", ".join(f"{k} {v}" for k, v in self.peak_inbox_per_level.items()),
            "store size per level (MB, mean / largest): " + ", ".join(
                f"{k} {v['mean']:.2f} / {v['max']:.2f}" for k, v in self.store_mb_per_level.items()),
            f"busiest township: {self.busiest_township.get('node', '-')} {self.busiest_township.get('name', '')} "
            f"({self.busiest_township.get('cases', 0)} cases, {self.busiest_township.get('villages', 0)} villages)",
            f"wall time {self.wall_s:.1f} s (" + ", ".join(f"{k} {v:.1f}" for k, v in self.wall_by_phase_s.items())
            + f"), peak memory {self.peak_memory_mb:.0f} MB",
            f"digest {self.digest}",
        ]
        if self.offline_week:
            w = self.offline_week
            lines.insert(5, f"a village offline {w['village_offline_days']} days at {w['cases_per_day']} cases a day: "
                            f"{w['envelopes_waiting']} envelopes waited, caught up in {w['exchanges']} exchanges, "
                            f"{w['catch_up_s']} s on this machine")
        check = self.check
        if check["ok"]:
            lines.append("self-check: OK (" + ", ".join(f"{k} {v}" for k, v in check["counts"].items()) + ")")
        else:
            lines.append(f"self-check FAILED (seed {self.seed}): {check['first']}")
            lines += [f"  {p}" for p in check["problems"][:10]]
        return "\n".join(lines)


def peak_memory_mb() -> float:
    """This process's peak resident memory (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Progress:
    """A one-line progress bar on a terminal (stderr); nothing when it is not a terminal."""

    def __init__(self, total: int, enabled: bool | None = None) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.started = time.monotonic()

    def show(self, done: int, note: str = "") -> None:
        if not self.enabled:
            return
        width = 30
        filled = width * done // max(1, self.total)
        spent = time.monotonic() - self.started
        left = spent / done * (self.total - done) if done else 0.0
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] day {done}/{self.total} {note} "
                         f"{spent:.0f}s, ~{left:.0f}s left ")
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _params(action: str, state: Any, catalog: Catalog) -> dict[str, Any]:
    """Parameters a clerk (or the applicant) gives for ``action`` on a case in ``state``."""
    item = catalog.get(state.item_code)
    if action in ("return", "reject", "withdraw"):
        return {"reason": "不符合条件"}
    if action == "request_supplement":
        return {"materials": [item.core_materials[-1]] if item is not None and item.core_materials else []}
    if action == "supplement":
        return {"materials": list(state.requested_materials + state.pending_materials)}
    if action == "opinion":
        pending = [d for d, o, _ in state.joint if o == "pending"]
        return {"department": pending[0] if pending else "", "agree": True}
    if action == "extend":
        return {"approver": "局长", "reason": "情况复杂"}
    if action == "pay":
        return {"amount_fen": fees_outstanding(state), "method": "wechat", "number": f"SIM-{state.receipt}"}
    return {}


class Simulation:
    def __init__(self, setup: Setup, base_dir: Path, progress: bool | None = None) -> None:
        if setup.faults not in PROFILES:
            raise ValueError(f"unknown fault profile {setup.faults!r}; known: {', '.join(PROFILES)}")
        self.setup = setup
        self.base_dir = base_dir
        self.progress = Progress(setup.days, progress)
        seeds = random.Random(setup.seed)
        self.rng_load, self.rng_faults, self.rng_steps = (random.Random(seeds.getrandbits(64)) for _ in range(3))
        self.catalog = load_catalog_file(sample_catalog_path())
        self.profile = PROFILES[setup.faults]
        self.children: dict[str, list[str]] = defaultdict(list)
        for n in setup.nodes:
            p = parent_id(n)
            if p is not None:
                self.children[p].append(n)
        self.cases: dict[str, Case] = {}
        self.submitted: list[tuple[str, str]] = []  # (receipt, origin) in submission order
        self.applications: dict[str, list[str]] = {}  # idempotency key -> the receipts it was given
        self.intake_refusals: list[str] = []  # a valid application is never refused: each is a problem
        self.dirty: set[str] = set()
        self.counts: dict[str, int] = defaultdict(int)
        self.fault_counts: dict[str, int] = defaultdict(int)
        self.outages: list[Outage] = []
        self.backups: dict[str, Path] = {}
        self.per_township: dict[str, int] = defaultdict(int)
        self.peak_outbox: dict[str, int] = {lvl.value: 0 for lvl in Level}
        self.peak_inbox: dict[str, int] = {lvl.value: 0 for lvl in Level}
        self.series: dict[str, list[int]] = {lvl.value: [] for lvl in Level}
        self.phase: dict[str, float] = defaultdict(float)
        self.restarted: list[str] = []  # restored this round: they say hello to their parent first

    # --- the clock ---

    def _at(self, day: int, hour: float) -> datetime:
        d = self.setup.first_day + timedelta(days=day)
        return datetime(d.year, d.month, d.day, tzinfo=CHINA_TZ) + timedelta(hours=hour)

    def _move_to(self, when: datetime) -> None:
        if when > self.fed.clock.now():
            self.fed.clock.set(when)

    def _hours(self) -> float:
        return (self.fed.clock.now() - self._at(0, 0)).total_seconds() / 3600

    # --- wiring ---

    def _watch(self, node_id: str) -> None:
        """Mark ``node_id`` as having something to send whenever it commits messages."""
        self.fed.core(node_id).outbox_filled.connect(lambda: self.dirty.add(node_id))

    # --- faults ---

    def _fault_events(self, faults: list[Fault]) -> list[tuple[float, str, Fault]]:
        events: list[tuple[float, str, Fault]] = []
        age = self.profile.backup_age_days * 24.0
        for f in faults:
            events.append((f.start, f.kind, f))
            if f.kind == "outage":
                events.append((f.start + f.hours, "heal", f))
            if f.kind == "restore":
                events.append((f.start - age, "backup", f))
        return sorted(events, key=lambda e: (e[0], e[1], e[2].node))

    def _apply_fault(self, kind: str, f: Fault) -> None:
        fed, node = self.fed, f.node
        if kind == "outage":
            if not fed.transports[node].faults.partitioned:
                fed.partition(node, True)
                self.outages.append(Outage(node, f.start, f.start + f.hours))
                self.fault_counts["outage"] += 1
        elif kind == "heal":
            for o in self.outages:
                if o.node == node and o.backlog < 0 and o.end_h <= f.start + f.hours + 1e-9:
                    fed.partition(node, False)
                    o.backlog = self._backlog(node)
                    self.dirty.add(node)
                    self.dirty.add(parent_id(node) or node)
        elif kind == "crash":
            fed.restart(node)
            self._watch(node)
            self.fault_counts["crash"] += 1
        elif kind == "backup":
            out = self.base_dir / "backups" / f"{node}.db"
            out.parent.mkdir(exist_ok=True)
            out.unlink(missing_ok=True)
            fed.backup(node, out)
            self.backups[node] = out
        elif kind == "restore":
            backup = self.backups.pop(node, None)
            # What never left a lost disk is lost in any design: restore once the node's own
            # work has reached its parent, so the check can ask for every case back.
            if backup is None or self._up_depth(node) or (node in fed.transports
                                                         and fed.transports[node].faults.partitioned):
                self.fault_counts["restore_skipped"] += 1
                return
            fed.restore(node, backup)
            self._watch(node)
            self.dirty.add(node)
            self.restarted.append(node)
            self.fault_counts["restore"] += 1
        elif kind == "skew":
            fed.skews[node] = timedelta(minutes=f.minutes)
            fed.restart(node)
            self._watch(node)
            self.fault_counts["skew"] += 1

    def _up_depth(self, node: str) -> int:
        p = parent_id(node)
        if p is None:
            return 0
        with self.fed.core(node).store.reading() as s:
            return outbox.depth(s, p)[0]

    def _down_depth(self, node: str) -> int:
        p = parent_id(node)
        if p is None:
            return 0
        with self.fed.core(p).store.reading() as s:
            return outbox.depth(s, node)[0]

    def _backlog(self, node: str) -> int:
        return self._up_depth(node) + self._down_depth(node)

    def _outbox_of(self, node: str) -> dict[str, int]:
        """What waits in ``node``'s outbox per link (only the links with something)."""
        with self.fed.core(node).store.reading() as s:
            return outbox.depths(s)

    # --- moving messages ---

    def _up(self, node: str) -> bool:
        t = self.fed.transports.get(node)
        return t is not None and not t.faults.partitioned

    async def _exchange(self, node: str) -> int:
        result = await self.fed.step(node)
        return 0 if result is None else result.pushed + result.pulled

    async def sync_round(self, passes: int = 12) -> None:
        """Exchanges on every link with something to send, up then down, until nothing moves."""
        started = time.perf_counter()
        for _ in range(passes):
            moved = 0
            work, self.dirty = self.dirty, set()
            for n in depth_first(work):  # children push up (and pull what waits for them)
                if parent_id(n) is None:
                    continue
                if not self._up(n):
                    self.dirty.add(n)  # keeps its backlog until the link is back
                    continue
                if self._up_depth(n):
                    moved += await self._exchange(n)
                    if self._up_depth(n):
                        self.dirty.add(n)
            for p in shallow_first(work):  # parents' messages for their children
                # The parent's outbox read once for all its children, and again only after an
                # exchange (the one thing that changes it here): the same answers as asking per child.
                waiting: dict[str, int] | None = None
                for c in self.children.get(p, ()):
                    if not self._up(c):
                        self.dirty.add(p)
                        continue
                    if waiting is None:
                        waiting = self._outbox_of(p)
                    if waiting.get(c):
                        moved += await self._exchange(c)
                        waiting = self._outbox_of(p)
                        if waiting.get(c):
                            self.dirty.add(p)
            if not moved:
                break
        self.phase["sync"] += time.perf_counter() - started

    async def _catch_up_restored(self) -> None:
        """A node brought back from a backup starts by exchanging with its parent (its up-link
        runs at start): its parent sees the new incarnation and sends back what it lost before
        the windows open on it; its children see it at their next hello (the simulation
        otherwise exchanges only on links with something to send)."""
        restarted, self.restarted = self.restarted, []
        for node in restarted:
            for _ in range(20):  # each exchange pulls a batch of what the parent queued for it
                if not self._up(node) or not await self._exchange(node) or not self._down_depth(node):
                    break
            self.dirty.add(node)
            self.dirty.add(parent_id(node) or node)
            # Its children's up-links say hello within their interval (minutes): they see the new
            # incarnation and queue what it lost, and the notice for their own subtrees.
            for child in self.children.get(node, ()):
                if self._up(child):
                    await self._exchange(child)
                    self.dirty.add(child)
        if restarted:
            await self.sync_round()

    async def settle(self) -> None:
        """Heal every link and exchange on the links with something waiting until nothing
        waits anywhere (what ``Federation.settle`` does with full sweeps, at the cost of the
        links that carry something)."""
        self.fed.heal()
        for _ in range(200):
            waiting = self._waiting()
            if not waiting:
                return
            self.dirty |= waiting
            await self.sync_round(passes=50)
        raise NotSettled(f"still waiting after 200 rounds: {sorted(self._waiting())[:10]}")

    def _waiting(self) -> set[str]:
        """The nodes with envelopes in an outbox."""
        out = set()
        for n in self.fed.nodes:
            waiting = self._outbox_of(n)
            if any(waiting.get(link) for link in self._links(n)):
                out.add(n)
        return out

    # --- the work ---

    def _owner(self, case: Case) -> tuple[str, Any] | None:
        """The node that owns the case now and the case there (None while a hand-over is in
        transit): asked where it was owned last, then wherever each holder says it went."""
        node = case.owner or case.origin
        for _ in range(6):
            state = self._state_at(node, case.receipt)
            if state is None:
                if node == case.origin:
                    return None
                node = case.origin  # not arrived where it was going: ask from the start
                continue
            if state.owner == node:
                case.owner = node
                return node, state
            node = state.owner
        return None

    def _state_at(self, node: str, receipt: str) -> CaseState | None:
        """The case as ``node``'s desk shows it (``CaseDesk.get`` without the history the driver
        never reads), or None when the node does not hold it."""
        desk = self.fed.core(node).desk
        with desk.store.reading() as s:
            record = cases.get_case(s, receipt)
            return None if record is None else desk.seen_here(s, record).state

    async def _submit(self, app: Any, index: int, round_no: int) -> None:
        fed = self.fed
        key = f"sim-{self.setup.seed}-{index}"
        try:
            done = await fed.submit_async(app.node, app.item, key, **applicant(index),
                                          materials=list(app.materials), agent=app.agent)
            receipt = done.record.state.receipt
            self.applications[key] = [receipt]
            if self.rng_load.random() < self.setup.rates.resent:  # the answer was lost: the window sends it again
                again = await fed.submit_async(app.node, app.item, key, **applicant(index),
                                               materials=list(app.materials), agent=app.agent)
                self.counts["resent"] += 1
                if again.record.state.receipt != receipt:
                    self.applications[key].append(again.record.state.receipt)
                    self.submitted.append((again.record.state.receipt, app.node))
        except DeskError as exc:
            self.counts["refused_at_intake"] += 1
            self.intake_refusals.append(f"application {key} at {app.node} ({app.item}) refused: {exc}")
            return
        self.submitted.append((receipt, app.node))
        item = self.catalog.get(app.item)
        delay = self.load.delay_days(item, done.record.state.status)
        self.cases[receipt] = Case(receipt, app.node, app.item, round_no + delay * self.setup.syncs + (delay == 0))
        if level_of(app.node) in (Level.TOWNSHIP, Level.VILLAGE):
            township = app.node[:9]
            self.per_township[township] += 1

    async def _step(self, case: Case, round_no: int) -> None:
        fed, rng = self.fed, self.rng_steps
        found = self._owner(case)
        if found is None:
            case.next_at = round_no + 1
            return
        owner, state = found
        if state.status in TERMINAL or state.status is Status.DELIVERED:
            if state.status is Status.DELIVERED and not case.delivered:
                case.delivered = True
                self._after_delivery(case)
            self.cases.pop(case.receipt, None)
            return
        item = self.catalog.get(case.item)
        here = item is None or item.authority_level is level_of(owner)
        refused: set[str] = set()
        for _ in range(3):  # a clerk who is refused reads why and takes another step the case allows
            action = self.load.next_step(state, here, item, exclude=refused)
            if state.status in (Status.APPROVED, Status.COMPLETED) and fees_outstanding(state) and "pay" not in refused:
                action = "pay"  # 统一收费: the collection point takes what is owed before the result is handed over
            if action is None:
                if not refused:  # nothing left to do on it
                    self.cases.pop(case.receipt, None)
                    return
                break
            if action == "deliver":
                at = case.origin  # 一窗出件: the result is handed over where the applicant applied
            elif action in ("supplement", "withdraw") and case.origin != owner and rng.random() < 0.4:
                at = case.origin
            else:
                at = owner
            try:
                await fed.act_async(at, case.receipt, action, **_params(action, state, self.catalog))
            except DeskError:
                self.counts["refused"] += 1
                refused.add(action)
                continue
            self.counts["steps"] += 1
            case.tries = 0
            break
        else:
            case.tries += 1
            if case.tries > 20:  # a case no step moves: left as it is (the check still covers it)
                self.cases.pop(case.receipt, None)
                return
        delay = self.load.delay_days(item, state.status)
        case.next_at = round_no + max(1, delay * self.setup.syncs)

    def _after_delivery(self, case: Case) -> None:
        rng = self.rng_steps
        try:
            if rng.random() < self.setup.rates.rated:
                self.fed.evaluate(case.origin, case.receipt, self.load.rating())
                self.counts["evaluations"] += 1
            if rng.random() < self.setup.rates.complaint * 10:  # complaints mostly follow delivery
                self.fed.complaints[case.origin].file(FileCommand("窗口态度差", receipt=case.receipt))
                self.counts["complaints"] += 1
        except DeskError:
            self.counts["refused"] += 1

    def _end_of_day(self) -> None:
        started = time.perf_counter()
        owners = {c.owner or c.origin for c in self.cases.values()}
        for n in sorted(o for o in owners if o):
            self.counts["alarms"] += self.fed.scan(n)
        for n in sorted(self.worked):
            self.fed.core(n).ledger.flush_now(self.fed.core(n).clock.now(), report=True)
        self.worked.clear()
        self.phase["supervision and statistics"] += time.perf_counter() - started
        started = time.perf_counter()
        self._measure()
        self.phase["measuring"] += time.perf_counter() - started

    def _measure(self) -> None:
        """Outbox and inbox depths per level (the nodes that may hold some), and catch-up times."""
        per_level: dict[str, int] = dict.fromkeys(self.series, 0)
        suspects = set(self.dirty) | {o.node for o in self.outages if o.caught_up_h < 0}
        suspects |= {parent_id(n) or n for n in list(suspects)}
        for n in suspects:
            lvl = level_of(n).value
            waiting = self._outbox_of(n)
            depth = sum(waiting.get(link, 0) for link in self._links(n))
            per_level[lvl] += depth
            self.peak_outbox[lvl] = max(self.peak_outbox[lvl], depth)
            self.peak_inbox[lvl] = max(self.peak_inbox[lvl], self.fed.inbox_waiting(n))
        for lvl, v in per_level.items():
            self.series[lvl].append(v)

    def _links(self, n: str) -> list[str]:
        p = parent_id(n)
        return ([p] if p else []) + self.children.get(n, [])

    def _check_catch_up(self) -> None:
        now = self._hours()
        for o in self.outages:
            if o.backlog >= 0 and o.caught_up_h < 0 and self._backlog(o.node) == 0:
                o.caught_up_h = max(0.0, now - o.end_h)

    # --- the run ---

    async def run(self) -> Report:
        setup = self.setup
        wall = time.perf_counter()
        started = time.perf_counter()
        plan = replace(self.profile.batches)
        ops_per_day = max(1, setup.cases // max(1, setup.days)) * 8
        op_step = timedelta(seconds=max(0.001, min(60.0, (CLOSE_HOUR - OPEN_HOUR) * 3600 / setup.syncs / ops_per_day)))
        self.fed = Federation(self.base_dir / "nodes", setup.nodes, seed=setup.seed, faults=plan, durable=False,
                              start=self._at(0, OPEN_HOUR - 1), settings=SyncSettings(batch_max=500),
                              op_step=op_step, forgetful=setup.forgetful)
        self.phase["building the nodes"] = time.perf_counter() - started
        try:
            return await self._run(wall)
        finally:
            self.progress.end()
            self.fed.close()

    async def _run(self, wall: float) -> Report:
        setup, fed = self.setup, self.fed
        self.load = Caseload(self.catalog, setup.nodes, setup.rates, self.rng_load)
        self.worked: set[str] = set()
        for n in fed.nodes:
            self._watch(n)
        city = fed.nodes[0]
        fed.set_faults(replace(self.profile.batches, drop_request=0, drop_reply=0, duplicate=0, delay=0))
        for n in shallow_first(fed.children_nodes):  # every child registers with its parent (hello)
            await fed.step(n)
        fed.publish(city, self.catalog)
        await self.settle()
        fed.resume_faults()
        counts = daily_counts(fed.core(city).calendar, setup.first_day, setup.days, setup.cases, self.rng_load,
                              setup.rates)
        events = self._fault_events(schedule(self.profile, setup.nodes, setup.days, self.rng_faults))
        next_event = 0
        index = 0
        span = (CLOSE_HOUR - OPEN_HOUR) / setup.syncs
        for day in range(setup.days):
            arrivals = [self.load.application() for _ in range(counts[day])]
            for r in range(setup.syncs):
                round_no = day * setup.syncs + r
                hour = OPEN_HOUR + r * span
                self._move_to(self._at(day, hour))
                now_h = day * 24 + hour
                started = time.perf_counter()
                while next_event < len(events) and events[next_event][0] <= now_h:
                    _, kind, f = events[next_event]
                    self._apply_fault(kind, f)
                    next_event += 1
                    await self._catch_up_restored()  # before the next fault: restores are minutes apart
                self.phase["faults"] += time.perf_counter() - started
                started = time.perf_counter()
                share = arrivals[r * len(arrivals) // setup.syncs:(r + 1) * len(arrivals) // setup.syncs]
                for app in share:
                    await self._submit(app, index, round_no)
                    self.worked.add(app.node)
                    index += 1
                self.phase["intake"] += time.perf_counter() - started
                started = time.perf_counter()
                due = sorted((c for c in self.cases.values() if c.next_at <= round_no), key=lambda c: c.receipt)
                for case in due:
                    await self._step(case, round_no)
                    self.worked.add(case.origin)
                self.phase["case steps"] += time.perf_counter() - started
                await self.sync_round()
                self._check_catch_up()
            self._end_of_day()
            self.progress.show(day + 1, f"{len(self.submitted)} cases")
        # The end: every link back, everything delivered, alarms and statistics brought up to date.
        started = time.perf_counter()
        for o in self.outages:
            if o.backlog < 0:
                o.backlog = self._backlog(o.node)
        self._move_to(self._at(setup.days, OPEN_HOUR))
        await self.settle()
        self._check_catch_up()
        # A scan's alarms travel, and what arrives may earn alarms of its own (a case handed
        # over late waits for acceptance at its new owner): scan until nothing more is due.
        for _ in range(5):
            raised = sum(fed.scan(n) for n in fed.nodes)
            self.counts["alarms"] += raised
            await self.settle()
            if not raised:
                break
        for n in depth_first(fed.nodes):
            fed.core(n).ledger.flush_now(fed.core(n).clock.now(), report=True)
        await self.settle()
        self.phase["settling"] = time.perf_counter() - started
        started = time.perf_counter()
        check = self_check(fed, self.submitted, self.applications)
        check.problems[:0] = self.intake_refusals
        digest = state_digest(fed)
        self.phase["checking"] = time.perf_counter() - started
        week: dict[str, Any] = {}
        if setup.offline_week:
            started = time.perf_counter()
            week = await offline_week(self.base_dir / "offline-week", seed=setup.seed)
            self.phase["offline week"] = time.perf_counter() - started
        return self._report(check, digest, time.perf_counter() - wall, week)

    def _report(self, check: CheckResult, digest: str, wall_s: float, week: dict[str, Any]) -> Report:
        setup, fed = self.setup, self.fed
        levels: dict[str, int] = defaultdict(int)
        sizes: dict[str, list[float]] = defaultdict(list)
        for n in fed.nodes:
            lvl = level_of(n).value
            levels[lvl] += 1
            path = fed.core(n).store.path
            size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
            sizes[lvl].append(size / 1e6)
        caught = [o.caught_up_h for o in self.outages if o.caught_up_h >= 0]
        busiest = max(sorted(self.per_township), key=lambda t: self.per_township[t], default="")
        return Report(
            seed=setup.seed, nodes=len(fed.nodes), nodes_per_level=dict(levels), days=setup.days,
            cases_planned=setup.cases, cases_submitted=len(self.submitted),
            applications_resent=self.counts["resent"], steps_taken=self.counts["steps"],
            steps_refused=self.counts["refused"], evaluations=self.counts["evaluations"],
            complaints=self.counts["complaints"], alarms=self.counts["alarms"], faults=dict(self.fault_counts),
            exchanges=fed.counts.exchanges, envelopes_pushed=fed.counts.pushed, envelopes_pulled=fed.counts.pulled,
            outages=[{"node": o.node, "from_h": round(o.start_h, 1), "to_h": round(o.end_h, 1),
                      "backlog": o.backlog, "catch_up_h": round(o.caught_up_h, 2)} for o in self.outages],
            catch_up_hours_max=max(caught, default=0.0), catch_up_hours_mean=sum(caught) / len(caught) if caught else 0.0,
            peak_outbox_per_level=self.peak_outbox, peak_inbox_per_level=self.peak_inbox,
            store_mb_per_level={k: {"mean": sum(v) / len(v), "max": max(v)} for k, v in sizes.items()},
            busiest_township={"node": busiest, "name": setup.names.get(busiest, ""),
                              "cases": self.per_township.get(busiest, 0),
                              "villages": len(self.children.get(busiest, []))} if busiest else {},
            digest=digest, check=check.as_dict(), wall_s=wall_s,
            wall_by_phase_s={k: round(v, 2) for k, v in self.phase.items()}, peak_memory_mb=peak_memory_mb(),
            outbox_series=self.series, offline_week=week,
        )


async def offline_week(base_dir: Path, cases_per_day: int = 50, days: int = 7, seed: int = 1) -> dict[str, Any]:
    """The planner's figure: a village cut off for ``days`` working days taking ``cases_per_day``
    applications a day, then its link back: how much waited and how long catching up took.

    A chain city - county - township - village of real node cores; the village's applications
    are carried items (most go up to their owners). The catch-up is measured from the link's
    return until nothing waits on either end, in exchanges and in this machine's seconds (a
    real link exchanges again as soon as a batch is acknowledged, so the seconds spent here
    applying and relaying are the catch-up's floor; add the network's round trips)."""
    nodes = ("371100", "371102", "371102001", "371102001201")
    village = nodes[-1]
    catalog = load_catalog_file(sample_catalog_path())
    load = Caseload(catalog, nodes, Rates(at_village=1.0, missing_material=0.0), random.Random(seed))
    with Federation(base_dir, nodes, seed=seed, durable=False, start=datetime(2026, 3, 9, 8, tzinfo=CHINA_TZ),
                    op_step=timedelta(seconds=20)) as fed:
        fed.publish(nodes[0], catalog)
        await fed.settle()
        fed.partition(village, True)
        for day in range(days):
            fed.clock.set(datetime(2026, 3, 9 + day, 8, tzinfo=CHINA_TZ))
            for i in range(cases_per_day):
                app = load.application()
                await fed.submit_async(village, app.item, f"offline-{day}-{i}", **applicant(day * cases_per_day + i),
                                       materials=list(app.materials), agent=app.agent)
        with fed.core(village).store.reading() as s:
            waiting = outbox.depth(s, nodes[2])[0]
        fed.partition(village, False)
        started = time.perf_counter()
        exchanges = await _drain(fed)
        wall = time.perf_counter() - started
    return {"village_offline_days": days, "cases_per_day": cases_per_day, "envelopes_waiting": waiting,
            "exchanges": exchanges, "catch_up_s": round(wall, 2)}


async def _drain(fed: Federation) -> int:
    """Sweep until nothing waits anywhere; the number of exchanges it took."""
    before = fed.counts.exchanges
    while True:
        moved = await fed.sweep()
        if not moved and not fed.waiting():
            return fed.counts.exchanges - before


def state_digest(fed: Federation) -> str:
    """SHA-256 of the state every node converged on (``Federation.snapshot``: no timestamps)."""
    h = hashlib.sha256()
    for node, state in sorted(fed.snapshot().items()):
        h.update(node.encode())
        h.update(json.dumps(state, sort_keys=True, default=str, ensure_ascii=False).encode())
    return h.hexdigest()


def simulate(setup: Setup, work_dir: Path | None = None, progress: bool | None = None) -> Report:
    """Run ``setup`` in ``work_dir`` (default: a temporary directory, in /dev/shm when there is
    one: the stores live in memory and are removed after)."""
    # The nodes' own warnings (no certificate, a restored store's cursors …) are what the run
    # sets out to cause; the report tells what came of them.
    quiet = logging.getLogger("govnet")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    base = work_dir
    if base is None:
        shm = Path("/dev/shm")
        base = Path(tempfile.mkdtemp(prefix="govnet-sim-", dir=shm if shm.is_dir() else None))
    else:
        base.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(Simulation(setup, base, progress).run())
    finally:
        quiet.setLevel(level)
        if work_dir is None:
            shutil.rmtree(base, ignore_errors=True)


