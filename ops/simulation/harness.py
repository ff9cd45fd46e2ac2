"""A whole federation in one process, deterministic: the real node core, a virtual network.

The harness ``govnet simulate`` drives and the tests use (``tests/support/simulation`` is an
alias kept for the old name).

Every node here is the same node a real ``govnet node serve`` process runs: a real SQLite
store created by ``Store.create`` (WAL, migrations, the same tables), built by the
process's composition root (``node.process.build.build_node``) into the same case desk,
supervision, replicator, inbox, up-link (child side) and children side (parent side),
without servers and without background tasks. Only the adapters differ:

* the transport is ``sync.memory.MemoryTransport`` instead of gRPC: it calls the
  parent's ``ChildrenSide`` directly and can drop requests, lose answers, duplicate
  calls, hold copies back and deliver them late (out of order), and partition a link;
* the up-link is driven by the simulation instead of the asyncio ``sync.driver.LinkDriver``:
  the same sans-I/O core (``sync.uplink.UpLinkCore``, executed against the store by the
  node's ``UpLink``) and the same exchange (``sync.session.exchange``), but the store
  calls run directly (``sync.session.direct``) instead of in worker threads, and an
  exchange happens when the scenario says (``step``, ``churn``, ``settle``) instead of on
  a timer with backoff, so one exchange at a time runs and every run is the same;
* the desk's operations are async (the process awaits them on its event loop); the
  simulation's blocking methods run each to completion on a loop of their own;
* time is a ``ManualClock`` shared by all nodes, moved forward by a fixed step per
  *domain operation* (a submission, an action, a publication) and never per exchange,
  so the fault schedule cannot change any date a case records.

Randomness comes only from seeds: each link's fault generator is seeded from the
federation seed and a stable hash of the child's id (``zlib.crc32``, not Python's salted
``hash``), and ``churn`` takes its own seeded generator. The same seeds give the same
run, byte for byte in the compared state.

``Federation(..., durable=False)`` turns off SQLite's wait for the disk
(``synchronous=OFF``): for long simulations that test ordering and dedupe, not power cuts.
Everything else, including every transaction boundary, stays as in the node.

``step`` runs one exchange, ``churn`` random ones, ``settle`` heals the network and sweeps
until nothing waits and a sweep moves nothing (bounded; ``NotSettled`` otherwise).
``snapshot()`` returns what must converge: per node, the cases, their events, the
summaries, the catalog version and the quarantine count, without timestamps or other
run-dependent fields (link positions, outbox contents, applied-envelope times). It and the
other reads (``cases``, ``actions``, ``summaries``, ``outbox``, ``waiting``…) go through
each node's store reads and repository functions, as the node itself reads; the tests use
them instead of SQL.
"""

from __future__ import annotations

import asyncio
import atexit
import random
import shutil
import tempfile
import threading
import zlib
from collections.abc import Coroutine, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self, TypeVar

from govnet.federation.tree import Level, level_of, parent_id
from govnet.node.app import replication
from govnet.node.app.complaints import ComplaintDesk
from govnet.node.app.desk import Acted, SubmitCommand, Submitted
from govnet.node.app.inbox import CAPACITY as INBOX_CAPACITY
from govnet.node.app.links import SyncSettings, UpLink
from govnet.node.app.supervision import Supervisor
from govnet.node.domain.calendar import CHINA_TZ, WorkCalendar
from govnet.node.domain.catalog import Catalog
from govnet.node.domain.clock import ManualClock
from govnet.node.domain.deadlines import SupervisionSettings
from govnet.node.domain.lifecycle import ActParams
from govnet.node.process.build import Node, build_node
from govnet.node.process.config import Address, NodeConfig
from govnet.node.store import inbox, links, outbox, quarantine
from govnet.node.store.backup import restore_as_new_incarnation, snapshot
from govnet.node.store.cases import CaseRecord, StoredEvent
from govnet.node.store.engine import DB_FILE, Store, empty_schema
from govnet.node.store.models import CaseSummary
from govnet.ops.applicants import fake_applicant
from govnet.ops.backup import STORE_FILES
from govnet.ops.pki import enrol_node
from govnet.sync.envelope import Envelope
from govnet.sync.session import ExchangeResult, direct, exchange
from govnet.sync.transport.base import LinkDown, ParentBusy, Refused
from govnet.sync.transport.memory import Faults, MemoryTransport

# A Tuesday morning in Beijing, far from holidays.
START = datetime(2026, 3, 10, 9, 0, tzinfo=CHINA_TZ)
OP_STEP = timedelta(minutes=1)
T = TypeVar("T")

_CALENDAR: WorkCalendar | None = None


class BackgroundLoop:
    """An asyncio loop on its own thread, so blocking code can run a node's async operations."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="govnet-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


_SCHEMA: Path | None = None  # an empty store with this release's schema, made once a process


def create_store(data_dir: Path, node_id: str, level: Level, now: datetime | None = None) -> None:
    """What ``Store.create(data_dir, node_id, level, now).close()`` leaves in ``data_dir``
    (``now``: None for the current time), the schema copied from one made once in this process.

    Why: the migration history takes a third of a second per store, and simulations and tests
    build many (a city: 1,741)."""
    global _SCHEMA
    if _SCHEMA is None:
        made = Path(tempfile.mkdtemp(prefix="govnet-schema-"))
        atexit.register(shutil.rmtree, made, True)
        empty_schema(made / DB_FILE)
        _SCHEMA = made / DB_FILE
    Store.create(data_dir, node_id, level, now or datetime.now(UTC), schema_from=_SCHEMA).close()


def every_case(store: Store) -> list[CaseRecord]:
    """Every case the store holds, in receipt order, page by page through ``list_cases``."""
    out: list[CaseRecord] = []
    while page := store.list_cases(after_receipt=out[-1].state.receipt if out else "", limit=1000):
        out += page
    return out


def _calendar() -> WorkCalendar:
    """The built-in working-day calendar, loaded once (for tests that count days themselves)."""
    global _CALENDAR
    if _CALENDAR is None:
        _CALENDAR = WorkCalendar.load()
    return _CALENDAR

class SkewedClock:
    """A node's own clock: the federation's, off by ``offset`` (a node whose clock runs wrong)."""

    def __init__(self, base: ManualClock, offset: timedelta) -> None:
        self.base = base
        self.offset = offset

    def now(self) -> datetime:
        return self.base.now() + self.offset


def _forget_what_was_applied(node: Node) -> None:
    """Test-only: the node's inbox takes every envelope as new (an empty cursor) and its
    replicator applies every envelope as if never applied before."""
    from govnet.sync.cursor import Cursor

    node.inbox.cursor = lambda s, link, incarnation: Cursor()  # type: ignore[method-assign]
    node.replicator._first_time = lambda s, env, now: True  # type: ignore[method-assign]


async def _without_idempotency(operation: Coroutine[Any, Any, T]) -> T:
    """Test-only: run a desk operation with its lookup of used idempotency keys finding nothing
    and its record of them dropped (the harness runs one operation at a time, so the swap is seen by this one only)."""
    from govnet.node.app import desk

    remembered = desk.find_idempotency, desk.record_idempotency
    desk.find_idempotency = lambda s, key: None
    desk.record_idempotency = lambda *args, **kwargs: None
    try:
        return await operation
    finally:
        desk.find_idempotency, desk.record_idempotency = remembered


class NotSettled(RuntimeError):
    """The federation did not become quiet within the allowed number of sweeps."""


def link_seed(seed: int, node_id: str) -> int:
    """A per-link seed that is the same in every process (unlike ``hash(str)``)."""
    return (seed * 1_000_003) ^ zlib.crc32(node_id.encode())


@dataclass
class Counts:
    exchanges: int = 0
    link_down: int = 0
    busy: int = 0
    refused: int = 0
    pushed: int = 0
    pulled: int = 0
    errors: list[str] = field(default_factory=list)


def applicant(i: int) -> dict[str, str]:
    """A valid applicant for index ``i``, the same every run (``ops.applicants``, seeded by ``i``)."""
    return asdict(fake_applicant(random.Random(i)))


def depth_first(nodes: Iterable[str]) -> list[str]:
    """Deepest level first, ids in order within a level."""
    return sorted(nodes, key=lambda n: (-level_of(n).rank, n))


def shallow_first(nodes: Iterable[str]) -> list[str]:
    return sorted(nodes, key=lambda n: (level_of(n).rank, n))


class Federation:
    """Real nodes in one process, joined child-to-parent by in-memory transports."""

    def __init__(self, base_dir: Path, nodes: Sequence[str], seed: int, faults: Faults | None = None,
                 settings: SyncSettings | None = None, start: datetime = START, durable: bool = True,
                 supervision: SupervisionSettings | None = None, pki: Path | None = None,
                 op_step: timedelta = OP_STEP, forgetful: bool = False) -> None:
        """``pki``: a CA directory (``ops.pki``) that enrols every node (a key and a certificate in
        its folder, as ``govnet pki`` would), so applicants are sealed to their owners.
        ``op_step``: how far the clock moves per domain operation.
        ``forgetful``: FOR TESTS ONLY — deduplication off: every inbox forgets what it received and
        applied (its cursors and the identities of applied envelopes), so resent and duplicated
        envelopes are applied again, and every case desk forgets the idempotency keys of the
        applications it took, so a window's resent application becomes a second case; a
        simulation's self-check must then fail."""
        ids = list(dict.fromkeys(nodes))
        for n in ids:
            p = parent_id(n)
            if p is not None and p not in ids:
                raise ValueError(f"node {n} needs its parent {p} in the federation")
        self.base_dir = Path(base_dir)
        self.nodes = shallow_first(ids)
        self.seed = seed
        self.plan = replace(faults) if faults is not None else Faults()
        self.settings = settings or SyncSettings()
        self.clock = ManualClock(start)
        self.durable = durable
        self.cores: dict[str, Node] = {}
        self.supervision = supervision or SupervisionSettings()
        self.transports: dict[str, MemoryTransport] = {}
        self.counts = Counts()
        self.ops = 0
        self.op_step = op_step
        self.forgetful = forgetful
        self.skews: dict[str, timedelta] = {}  # node -> how far its clock is off (none: exact)
        self._loop: BackgroundLoop | None = None
        for n in self.nodes:
            d = self.base_dir / n
            d.mkdir(parents=True, exist_ok=False)
            if pki is not None:
                enrol_node(d, n, level_of(n).value, pki)
            create_store(d, n, level_of(n), self.clock.now())  # Store.create, made once a process
            self.open_node(n)

    def open_node(self, node_id: str, *, apply_inline: bool = True, inbox_capacity: int = INBOX_CAPACITY) -> Node:
        """Build ``node_id`` over the store in its directory, as its process would (without
        servers): at the start, and again after a restart or a restore (its store closed
        first). Its link keeps its transport (and the faults on it); its children's links
        now reach the new node. ``apply_inline=False``: an inbox that applies only when
        drained, as a node process's does."""
        parent = parent_id(node_id)
        transport = self.transports.get(node_id)
        if transport is None and parent is not None:
            transport = MemoryTransport(self.cores[parent].children, replace(self.plan),
                                        random.Random(link_seed(self.seed, node_id)),
                                        identity=node_id)  # what its certificate would name
            self.transports[node_id] = transport
        config = NodeConfig(node_id=node_id, level=level_of(node_id), listen=Address("127.0.0.1", 0), parent=None,
                            data_dir=self.base_dir / node_id, sync=self.settings, supervision=self.supervision)
        skew = self.skews.get(node_id)
        clock = SkewedClock(self.clock, skew) if skew else self.clock
        node = build_node(config, clock, transport, serve=False, apply_inline=apply_inline,
                          inbox_capacity=inbox_capacity)
        if not self.durable:
            node.store.without_fsync()
        if self.forgetful:
            _forget_what_was_applied(node)
        self.cores[node_id] = node
        for child, link in self.transports.items():
            if parent_id(child) == node_id:
                link.parent = node.children
        return node

    def restart(self, node_id: str) -> Node:
        """Stop ``node_id`` and start it again on its store (a crash between two transactions:
        what it held only in memory is gone, copies held back on its link too)."""
        self.cores[node_id].store.close()
        transport = self.transports.get(node_id)
        if transport is not None:
            transport.held.clear()
        return self.open_node(node_id)

    def backup(self, node_id: str, out: Path) -> None:
        """A consistent copy of ``node_id``'s store in the file ``out``, as ``govnet backup`` takes it."""
        snapshot(self.cores[node_id].store.path, out)

    def restore(self, node_id: str, backup: Path) -> Node:
        """Stop ``node_id``, bring ``backup`` back as its next incarnation (as ``govnet restore``
        does) and start it again."""
        old = self.cores[node_id]
        data_dir = old.store.path.parent
        incarnation = old.store.meta.incarnation + 1
        old.store.close()
        staging = data_dir / "restoring.db"
        shutil.copyfile(backup, staging)
        staging.chmod(0o600)  # as private as the store it replaces (the CLI's umask does this for `govnet restore`)
        restore_as_new_incarnation(staging, incarnation)
        for name in STORE_FILES:
            (data_dir / name).unlink(missing_ok=True)
        staging.replace(data_dir / DB_FILE)
        transport = self.transports.get(node_id)
        if transport is not None:
            transport.held.clear()
        return self.open_node(node_id)

    @property
    def supervisors(self) -> dict[str, Supervisor]:
        return {n: node.supervisor for n, node in self.cores.items()}

    @property
    def complaints(self) -> dict[str, ComplaintDesk]:
        return {n: node.complaints for n, node in self.cores.items()}

    def _complete(self, operation: Coroutine[Any, Any, T]) -> T:
        """Run one of a node's async operations to its end, also from a running event loop."""
        if self._loop is None:
            self._loop = BackgroundLoop()
        return self._loop.run(operation)

    # --- the shape ---

    @property
    def children_nodes(self) -> list[str]:
        """Every node with an up-link (all but the city), deepest first."""
        return depth_first(n for n in self.nodes if parent_id(n) is not None)

    def core(self, node_id: str) -> Node:
        return self.cores[node_id]

    def uplink(self, node_id: str) -> UpLink:
        """The child side of ``node_id``'s link to its parent."""
        up = self.cores[node_id].uplink
        assert up is not None, f"{node_id} has no parent"
        return up

    def close(self) -> None:
        for core in self.cores.values():
            core.store.close()
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- faults ---

    def set_faults(self, faults: Faults) -> None:
        """Use ``faults`` on every link from now on (partitions are kept as they are)."""
        for t in self.transports.values():
            t.faults = replace(faults, partitioned=t.faults.partitioned)

    def resume_faults(self) -> None:
        """Back to the plan the federation was created with."""
        self.set_faults(self.plan)

    def partition(self, node_id: str, cut: bool = True) -> None:
        """Cut (or restore) the link between ``node_id`` and its parent."""
        self.transports[node_id].faults.partitioned = cut

    def heal(self) -> None:
        """No more faults anywhere, and every copy held back is delivered now (a receiver's
        message limit is no fault: it stays)."""
        for n in self.children_nodes:
            t = self.transports[n]
            t.faults = Faults(receive_limit=t.faults.receive_limit)
            t.flush_held()

    # --- moving messages ---

    async def step(self, node_id: str, compare_digests: bool = False) -> ExchangeResult | None:
        """One exchange between ``node_id`` and its parent; a failure is counted, not raised."""
        core = self.cores[node_id]
        assert core.uplink is not None, f"{node_id} has no parent"
        try:
            result = await exchange(self.transports[node_id], core.uplink, run=direct,
                                    compare_digests=compare_digests)
        except ParentBusy:
            self.counts.busy += 1
            return None
        except LinkDown:
            self.counts.link_down += 1
            return None
        except Refused as exc:
            self.counts.refused += 1
            self.counts.errors.append(f"{node_id}: refused: {exc}")
            return None
        self.counts.exchanges += 1
        self.counts.pushed += result.pushed
        self.counts.pulled += result.pulled
        return result

    async def churn(self, rounds: int, rng: random.Random, most: int | None = None) -> None:
        """``rounds`` rounds of exchanges by a random subset of nodes (at most ``most``), in a random order."""
        links = self.children_nodes
        for _ in range(rounds):
            chosen = rng.sample(links, rng.randint(1, min(most or len(links), len(links))))
            for n in chosen:
                await self.step(n)

    async def sweep(self) -> int:
        """Every node once deepest first (up), then once shallowest first (down); returns what moved."""
        moved = 0
        order = self.children_nodes
        for n in [*order, *reversed(order)]:
            result = await self.step(n)
            if result is None:
                raise NotSettled(f"exchange of {n} failed on a healed network: {self.counts.errors[-1:]}")
            moved += result.pushed + result.pulled
        return moved

    async def settle(self, max_rounds: int = 30) -> int:
        """Heal the network, then sweep until nothing waits and a sweep moves nothing.

        Returns the number of sweeps; raises ``NotSettled`` after ``max_rounds``.
        """
        self.heal()
        for i in range(1, max_rounds + 1):
            moved = await self.sweep()
            if moved == 0 and not self.waiting():
                return i
        raise NotSettled(f"not settled after {max_rounds} sweeps; still waiting: {self.waiting()}")

    async def compare_digests(self) -> dict[str, tuple[str, ...]]:
        """One exchange per link with digest comparison; the periods found divergent, per child."""
        out = {}
        for n in self.children_nodes:
            result = await self.step(n, compare_digests=True)
            if result is None:
                raise NotSettled(f"digest exchange of {n} failed")
            if result.divergent:
                out[n] = result.divergent
        return out

    def waiting(self) -> dict[str, int]:
        """Envelopes waiting in the outbox, per node (only nodes that have some)."""
        out = {}
        for n in self.nodes:
            count = sum(len(self.outbox(n, link)) for link in self.neighbours(n))
            if count:
                out[n] = count
        return out

    def neighbours(self, node_id: str) -> list[str]:
        """The links ``node_id`` has: its parent (if any) and its children here."""
        parent = parent_id(node_id)
        return ([parent] if parent else []) + [n for n in self.nodes if parent_id(n) == node_id]

    # --- domain operations (each moves the clock one step) ---

    def _tick(self) -> datetime:
        self.ops += 1
        self.clock.advance(self.op_step)
        return self.clock.now()

    def publish(self, node_id: str, catalog: Catalog) -> int:
        """Publish ``catalog`` at ``node_id`` and send it to its registered children."""
        now = self._tick()
        store = self.cores[node_id].store
        with store.transaction() as s:
            return replication.publish_local(s, store, catalog, now)

    def publish_calendar(self, node_id: str, text: str) -> Any:
        """Publish a calendar year (TOML text) at ``node_id`` and send it to its registered children."""
        now = self._tick()
        core = self.cores[node_id]
        with core.store.transaction() as s:
            done = core.calendar_years.publish(s, text, "published file", now)
        core.desk.after_commit()
        return done

    def submit(self, node_id: str, item_code: str, key: str, *, name: str, id_number: str, phone: str,
               materials: Sequence[str] | None = None, agent: str = "", actor: str = "", note: str = "") -> Submitted:
        """Submit a case at ``node_id`` through its case desk (``materials`` default: all the item lists)."""
        return self._complete(self.submit_async(node_id, item_code, key, name=name, id_number=id_number, phone=phone,
                                                materials=materials, agent=agent, actor=actor, note=note))

    async def submit_async(self, node_id: str, item_code: str, key: str, *, name: str, id_number: str, phone: str,
                           materials: Sequence[str] | None = None, agent: str = "", actor: str = "",
                           note: str = "") -> Submitted:
        """``submit`` awaited on the caller's event loop (a driver that runs on one: no hop to
        the harness's own loop thread and back per operation)."""
        self._tick()
        core = self.cores[node_id]
        if materials is None:
            item = core.store.catalog().items.get(item_code)
            materials = [m.name for m in item.materials] if item else []  # an unknown item: the desk says so
        cmd = SubmitCommand(idempotency_key=key, item_code=item_code, applicant_name=name, applicant_id=id_number,
                            applicant_phone=phone, materials=tuple(materials), agent=agent,
                            note=note, actor=actor or (agent if agent else f"clerk@{node_id}"))
        if self.forgetful:
            return await _without_idempotency(core.desk.submit(cmd))
        return await core.desk.submit(cmd)

    def act(self, node_id: str, receipt: str, action: str, **params: Any) -> Acted:
        """Run ``action`` on ``receipt`` at ``node_id`` (a request to the owner when not owned there)."""
        return self._complete(self.act_async(node_id, receipt, action, **params))

    async def act_async(self, node_id: str, receipt: str, action: str, **params: Any) -> Acted:
        """``act`` awaited on the caller's event loop (see ``submit_async``)."""
        self._tick()
        params.setdefault("actor", f"clerk@{node_id}")
        for k in ("materials", "departments"):
            if k in params:
                params[k] = tuple(params[k])
        return await self.cores[node_id].desk.act(receipt, action, ActParams(**params))

    def scan(self, node_id: str) -> int:
        """The owner's supervision scan at ``node_id``, at the federation's clock (no tick: a
        scan is not a domain operation, so scanning more often changes no date)."""
        return self.supervisors[node_id].scan()

    def evaluate(self, node_id: str, receipt: str, rating: str, comment: str = "") -> Any:
        """The applicant rates ``receipt`` at ``node_id`` (sent to the owner when it is elsewhere)."""
        self._tick()
        return self.supervisors[node_id].evaluate(receipt, rating, comment, "applicant")

    # --- reading the state ---

    def cases(self, node_id: str) -> list[CaseRecord]:
        """Every case ``node_id`` holds (its own and the copies it keeps), in receipt order."""
        return every_case(self.cores[node_id].store)

    def events(self, node_id: str, receipt: str) -> list[StoredEvent]:
        """The events of ``receipt`` that ``node_id`` holds, in order (superseded ones, kept
        apart at negative places, first)."""
        return self.cores[node_id].store.events(receipt)

    def actions(self, node_id: str, receipt: str) -> list[str]:
        """The actions of ``receipt``'s events at ``node_id``, in order."""
        return [e.action for e in self.events(node_id, receipt)]

    def summaries(self, node_id: str) -> dict[str, CaseSummary]:
        """receipt -> the summary ``node_id`` keeps of each case it supervises (an empty root:
        applied for anywhere)."""
        with self.cores[node_id].store.reading() as s:
            return {x.receipt: x for x in links.summaries_from(s, "")}

    def outbox(self, node_id: str, link: str) -> list[Envelope]:
        """What waits in ``node_id``'s outbox for ``link``, in link order."""
        with self.cores[node_id].store.reading() as s:
            return outbox.pending(s, link)

    def inbox_waiting(self, node_id: str) -> int:
        """Envelopes ``node_id`` received and acknowledged and has not applied yet."""
        with self.cores[node_id].store.reading() as s:
            return inbox.waiting(s)

    def quarantined(self, node_id: str) -> int:
        """Envelopes ``node_id`` set aside and has not replayed."""
        with self.cores[node_id].store.reading() as s:
            return quarantine.count_quarantined(s)

    def owner_view(self, node_id: str) -> dict[str, tuple[str, str, int]]:
        """receipt -> (owner, status, event_count) of every case row ``node_id`` holds."""
        return {c.state.receipt: (c.state.owner, c.state.status.value, c.state.event_count)
                for c in self.cases(node_id)}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per node, the state that must converge — no timestamps, no link positions."""
        out: dict[str, dict[str, Any]] = {}
        for n in self.nodes:
            cases = [c.state for c in self.cases(n)]
            releases = self.cores[n].store.catalog().releases
            out[n] = {
                "cases": [(c.receipt, c.status.value, c.case_type.value, c.owner, c.owner_epoch, c.origin,
                           c.event_count, c.decision, c.materials, c.pending_materials, c.catalog_version,
                           c.catalog_issuer) for c in cases],
                # Superseded events are the ones kept apart at negative places.
                "events": [(c.receipt, e.seq, e.action, e.from_status, e.to_status, e.actor, e.origin, e.seq < 0)
                           for c in cases for e in self.events(n, c.receipt)],
                "summaries": [(x.receipt, x.status, x.owner, x.event_count)
                              for _, x in sorted(self.summaries(n).items())],
                "catalog_version": max(releases.values(), default=0),
                "catalog_releases": dict(releases),
                "quarantined": self.quarantined(n),
            }
        return out

