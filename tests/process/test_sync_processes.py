"""Store-and-forward between real node processes: nothing lost, nothing doubled.

Four real ``govnet node serve`` processes — city 371100, county 371102, township
371102001 and village 371102001201 — on fixed loopback ports (a node needs its parent's
address when it is initialised, so the ports are chosen first), each with its own SQLite
file, syncing over real gRPC every ``flush_interval_s``.

* A village takes 500 cases while its township is down; when the township starts, every
  case reaches the node that decides it exactly once, the owners decide them all, and
  every decision comes back to the village.
* The township and the village are SIGKILLed at random (seeded) moments while cases
  stream in and sync runs, many times over; after the last restart the counts are
  exact in every store.
* The gRPC transport reaches a parent that comes back after an outage at the link
  driver's next attempt, not after a hidden channel backoff of its own.

What a node answers is read through its API (cases, links, quarantine) or its store's own
reads; plain ``sqlite3`` (read-only) only for claims about the files themselves: a killed
node's inbox and cursor, every event's global identity, the idempotency and dedupe ledgers,
integrity checks.
Every wait is a bounded poll; every process is killed at teardown.
"""

from __future__ import annotations

import asyncio
import collections
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from govnet.federation.routing import deciding_node
from govnet.federation.tree import Level
from govnet.node.domain.catalog import Catalog, ItemType, ServiceItem, load_catalog_file, sample_catalog_path
from govnet.node.process.config import NO_RATE_LIMITS
from govnet.node.rpc.client import ClientError, GovnetClient
from govnet.node.store import links, outbox
from govnet.node.store.engine import DB_FILE, Store
from govnet.ops.applicants import person_name, phone, resident_id
from govnet.ops.processes import NodeProcess, free_ports, init_node
from govnet.sync.transport.base import Hello, LinkDown
from govnet.sync.transport.grpc import GrpcTransport
from govnet.v1 import cases_pb2, sync_pb2

from support.accounts import spawn_node
from support.helpers import store_of, wait_for

pytestmark = pytest.mark.slow

CITY, COUNTY, TOWNSHIP, VILLAGE = "371100", "371102", "371102001", "371102001201"
LEVELS = {CITY: "city", COUNTY: "county", TOWNSHIP: "township", VILLAGE: "village"}
PARENT = {COUNTY: CITY, TOWNSHIP: COUNTY, VILLAGE: TOWNSHIP}
OWNERS = (TOWNSHIP, COUNTY, CITY)
SYNC = {"flush_interval_s": 0.2, "batch_max": 500}
AGENT = "代办员 李四"
CLERK, CHIEF = "窗口-王芳", "首席代表-赵强"
CALL_TIMEOUT = 5.0
# What a client may see while the node it calls is killed or not back yet: retry, same key.
TRANSPORT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
             grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN}
SAMPLE = load_catalog_file(sample_catalog_path())


# --- the tree of processes ---


class Tree:
    """The four nodes' directories and addresses, and whichever processes run now."""

    def __init__(self, base: Path) -> None:
        ports = free_ports(4)
        self.address = {node: f"127.0.0.1:{port}" for node, port in zip(LEVELS, ports)}
        self.dirs: dict[str, Path] = {}
        for node, level in LEVELS.items():
            parent = self.address[PARENT[node]] if node in PARENT else None
            # rate limits off: the tests drive hundreds of cases a second on purpose
            self.dirs[node] = init_node(base / level, node, level, parent, listen=self.address[node], sync=SYNC,
                                        rate=NO_RATE_LIMITS)
        self.procs: dict[str, NodeProcess] = {}

    def start(self, *nodes: str) -> None:
        for node in nodes:
            assert node not in self.procs or not self.procs[node].alive(), f"{node} already runs"
            self.procs[node] = spawn_node(self.dirs[node])
            assert self.procs[node].address == self.address[node]

    def kill(self, node: str) -> None:
        self.procs[node].kill()

    def stop(self, node: str) -> None:
        assert self.procs[node].terminate() == 0, f"{node} did not stop cleanly"

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.alive():
                proc.kill()

    def client(self, node: str, timeout: float = CALL_TIMEOUT) -> GovnetClient:
        return GovnetClient(self.address[node], timeout=timeout)

    def store(self, node: str) -> AbstractContextManager[Store]:
        """The node's store, for the store's own reads of what no call answers (the outbox's
        envelopes, case summaries)."""
        return store_of(self.dirs[node])

    def rows(self, node: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Plain sqlite3, read-only, on the node's store (safe while the node runs: WAL).

        Kept on purpose for what these crash and outage tests claim about the files
        themselves, which neither a call nor a store read answers, or not while the node is
        killed: a killed node's inbox, cursor and cases, every event's global identity
        (superseded ones included), the idempotency and applied-envelope ledgers, integrity
        checks. What a client can ask (cases, links, quarantine) is asked through ``client``."""
        conn = sqlite3.connect(f"file:{self.dirs[node] / DB_FILE}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def one(self, node: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.rows(node, sql, params)[0][0]

    def outbox_depth(self, node: str) -> int:
        """Envelopes waiting in ``node``'s outbox, over all its links (as its sync status says)."""
        with self.client(node) as c:
            return sum(link.outbox_depth for link in c.sync_status().links)

    def outbox_depths(self) -> dict[str, int]:
        return {node: self.outbox_depth(node) for node in LEVELS}

    def cases(self, node: str) -> dict[str, cases_pb2.Case]:
        """Every case ``node`` lists (its own and the copies it holds), by receipt."""
        with self.client(node) as c:
            return listed(c)

    def owned(self, node: str) -> set[str]:
        """Receipts of the cases ``node`` lists as its own."""
        return {r for r, c in self.cases(node).items() if c.owner == node}

    def log_tail(self, node: str) -> str:
        path = self.dirs[node] / "node.stderr.log"
        return path.read_text(errors="replace")[-1500:] if path.exists() else ""


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    t = Tree(tmp_path)
    yield t
    t.close()


def load_catalog_everywhere(tree: Tree) -> None:
    """Publish the sample catalog at the city; it flows down to every running node."""
    with tree.client(CITY) as c:
        assert c.put_catalog(SAMPLE).version == 1
    running = [n for n, p in tree.procs.items() if p.alive()]
    def releases(node: str) -> list[tuple[str, int]]:
        with tree.client(node) as c:
            return [(r.issuer, r.version) for r in c.list_items().releases]

    wait_for(lambda: all(releases(n) == [(CITY, 1)] for n in running), 20,
             lambda: f"catalog releases: { {n: releases(n) for n in running} }")


# --- applications ---


def village_items(catalog: Catalog, level: Level) -> list[ServiceItem]:
    """Items decided at ``level`` that a village agent may carry (代办)."""
    return [i for i in catalog.items if i.authority_level is level and i.proxy]


def application(i: int, level: Level, rng: random.Random, prefix: str) -> cases_pb2.SubmitCaseRequest:
    """A valid proxy application at the village for an item decided at ``level``: its core
    materials always, and the others too unless the item allows tolerance acceptance."""
    item = rng.choice(village_items(SAMPLE, level))
    materials = list(item.core_materials)
    materials += [m for m in item.noncore_materials if not item.tolerance or rng.random() < 0.5]
    return cases_pb2.SubmitCaseRequest(
        idempotency_key=f"{prefix}-{i:06d}", item_code=item.code,
        applicant=cases_pb2.Applicant(name=person_name(rng), id_number=resident_id(rng), phone=phone(rng)),
        materials=materials, agent=AGENT, actor=AGENT,
    )


def submit(client: GovnetClient, r: cases_pb2.SubmitCaseRequest) -> cases_pb2.SubmitCaseResponse:
    a = r.applicant
    return client.submit(idempotency_key=r.idempotency_key, item_code=r.item_code, name=a.name,
                         id_number=a.id_number, phone=a.phone, materials=list(r.materials), agent=r.agent,
                         note=r.note, actor=r.actor)


def decide(client: GovnetClient, receipt: str, item: ServiceItem) -> cases_pb2.Case:
    """The owner's clerks take the case to a decision the way its item type requires."""
    client.act(receipt, "accept", actor=CLERK)
    if item.item_type is not ItemType.IMMEDIATE:
        client.act(receipt, "review", actor=CLERK)
    if item.item_type is ItemType.JOINT:
        client.act(receipt, "start_joint", actor=CLERK)
        for dept in item.joint_departments:
            client.act(receipt, "opinion", actor=f"{dept}审查员", department=dept, agree=True)
    return client.act(receipt, "approve", actor=CHIEF)


def listed(client: GovnetClient, page_size: int = 1000) -> dict[str, cases_pb2.Case]:
    """Every case a node lists, page by page."""
    out: dict[str, cases_pb2.Case] = {}
    token = ""
    for _ in range(1000):
        page = client.list(limit=page_size, page_token=token)
        for c in page.cases:
            assert c.receipt not in out, f"{c.receipt} listed twice"
            out[c.receipt] = c
        token = page.next_page_token
        if not token:
            return out
    raise AssertionError("listing did not end")


def check_stores_sound(tree: Tree) -> None:
    for node in LEVELS:
        # The files themselves are sound: a claim about the file, so read from it.
        assert tree.rows(node, "PRAGMA integrity_check") == [("ok",)], node
        assert tree.rows(node, "PRAGMA foreign_key_check") == [], node
        with tree.client(node) as c:
            quarantined = [(q.envelope.kind, q.envelope.case_key, q.error) for q in c.quarantine().items]
        assert quarantined == [], f"{node} quarantined {len(quarantined)}: {quarantined[:3]}"


def owners_by_receipt(tree: Tree) -> dict[str, list[str]]:
    """receipt → every node whose own store says it owns the case (must be exactly one)."""
    out: dict[str, list[str]] = collections.defaultdict(list)
    for node in LEVELS:
        for receipt in tree.owned(node):
            out[receipt].append(node)
    return out


def history(tree: Tree, node: str) -> dict[str, list[tuple[Any, ...]]]:
    """receipt → its events in ``node``'s store, in order, with their global identities.

    Read from the file: the identities (origin, incarnation, sequence) and the superseded
    events kept apart are what these tests compare, and no read returns them."""
    out: dict[str, list[tuple[Any, ...]]] = collections.defaultdict(list)
    for row in tree.rows(node, "SELECT receipt, seq, action, origin, origin_incarnation, origin_seq, superseded "
                               "FROM case_event ORDER BY receipt, seq"):
        out[row[0]].append(row[1:])
    return out


def take_overs(events: dict[str, list[tuple[Any, ...]]]) -> dict[str, int]:
    """receipt → how many times its owner took it over, from its ``history``."""
    counted = {r: sum(1 for e in rows if e[1] == "take_over") for r, rows in events.items()}
    return {r: n for r, n in counted.items() if n}


def inbox_depth(tree: Tree, node: str) -> int:
    """Envelopes ``node`` acknowledged and has not applied yet (as its sync status says)."""
    with tree.client(node) as c:
        return sum(link.inbox_depth for link in c.sync_status().links)


def versions(tree: Tree, node: str) -> dict[str, tuple[str, int]]:
    """receipt → (status, event count) of every case ``node`` holds (an empty root: every origin)."""
    with tree.store(node) as store, store.reading() as s:
        return {row.receipt: (row.status, row.event_count) for row in links.cases_from(s, "")}


def city_summaries(tree: Tree) -> dict[str, int]:
    """receipt → event count of every case summary the city keeps (an empty root: every origin)."""
    with tree.store(CITY) as store, store.reading() as s:
        return {summary.receipt: summary.event_count for summary in links.summaries_from(s, "")}


# --- (a) a village works while its township is down ---


def test_cases_taken_while_the_township_is_down_reach_their_owners_once_and_decisions_come_back(tree: Tree) -> None:
    started = time.monotonic()
    marks: dict[str, float] = {}

    def mark(what: str) -> None:
        marks[what] = round(time.monotonic() - started, 1)

    # The township is up only long enough for the catalog to reach the village, then stops.
    tree.start(CITY, COUNTY, TOWNSHIP, VILLAGE)
    load_catalog_everywhere(tree)
    tree.stop(TOWNSHIP)
    mark("township stopped")

    rng = random.Random(20260310)
    levels = [Level.TOWNSHIP, Level.COUNTY, Level.CITY]
    requests = [application(i, levels[i % 3], rng, "down") for i in range(500)]
    item_of = {r.idempotency_key: SAMPLE.get(r.item_code) for r in requests}
    expected: dict[str, str] = {}  # receipt → owner
    item_by_receipt: dict[str, ServiceItem] = {}
    with tree.client(VILLAGE) as village:
        for r in requests:
            done = submit(village, r)
            c = done.case
            item = item_of[r.idempotency_key]
            assert not done.replayed and c.status == "received" and c.case_type == "escalated" and c.carried, (r.idempotency_key, c)
            # Ownership moved at submit: the deciding node owns it while it waits in the outbox.
            assert c.owner == deciding_node(VILLAGE, item.authority_level) and c.owner_epoch == 2, c
            assert c.origin == VILLAGE and c.receipt not in expected
            expected[c.receipt] = c.owner
            item_by_receipt[c.receipt] = item
    mark("500 submitted")
    assert not tree.procs[TOWNSHIP].alive()
    # Accepted and held: each case's transfer (to its owner) and summary (to the city) wait
    # (statistics reports and the audit chain's head to the city wait too; their own tests count those).
    with tree.store(VILLAGE) as store, store.reading() as s:
        queued = collections.Counter((TOWNSHIP, e.kind, e.target) for e in outbox.pending(s, TOWNSHIP)
                                     if e.kind not in ("stats", "audit"))
    by_owner = collections.Counter(expected.values())
    assert queued == {**{(TOWNSHIP, "transfer", o): n for o, n in by_owner.items()},
                      (TOWNSHIP, "summary", CITY): 500}, queued
    assert set(by_owner) == set(OWNERS) and min(by_owner.values()) > 150, by_owner
    at_village = tree.cases(VILLAGE)
    assert len(at_village) == 500 and [r for r, c in at_village.items() if c.owner == VILLAGE] == []

    with tree.client(VILLAGE) as c:
        backoff = [(link.state, link.next_attempt) for link in c.sync_status().links if link.neighbour == TOWNSHIP]
    tree.start(TOWNSHIP)
    mark("township started")
    wait_for(lambda: sum(len(tree.owned(o)) for o in OWNERS) >= 500, 90,
             lambda: f"owned: { {o: len(tree.owned(o)) for o in OWNERS} }, outboxes {tree.outbox_depths()}")
    mark("all at their owners")

    # Exactly once: one owner per receipt across the four stores, the expected one.
    owners = owners_by_receipt(tree)
    assert {r: o for r, o in owners.items() if len(o) != 1} == {}
    assert {r: o[0] for r, o in owners.items()} == expected
    # Personal data only along the path: the township keeps no case it does not own.
    assert {r: c.owner for r, c in tree.cases(TOWNSHIP).items() if c.owner != TOWNSHIP} == {}
    for owner in OWNERS:
        assert take_overs(history(tree, owner)) == {r: 1 for r, o in expected.items() if o == owner}
        with tree.client(owner) as c:
            cases = listed(c)
        mine = {r for r, o in expected.items() if o == owner}
        assert set(cases) == mine, owner
        assert all(c.owner == owner and c.owner_epoch == 2 and c.status == "received" for c in cases.values())

    # Each owner decides its cases (three owners at once, as three offices would).
    final: dict[str, int] = {}
    errors: list[str] = []

    def office(owner: str) -> None:
        try:
            with tree.client(owner, timeout=30) as c:
                for receipt, o in expected.items():
                    if o == owner:
                        decided = decide(c, receipt, item_by_receipt[receipt])
                        assert decided.status == "approved" and decided.decision == "approved"
                        final[receipt] = len(decided.events)
        except BaseException as exc:  # reported by the main thread
            errors.append(f"{owner}: {exc!r}")

    offices = [threading.Thread(target=office, args=(o,), name=f"office-{o}", daemon=True) for o in OWNERS]
    for t in offices:
        t.start()
    for t in offices:
        t.join(120)
        assert not t.is_alive(), f"{t.name} still deciding after 120 s"
    assert not errors, errors
    assert len(final) == 500
    mark("all decided")

    # Every decision reaches the village, with the owner's whole history.
    def village_caught_up() -> bool:
        return all(status == "approved" and count == final[r] for r, (status, count) in versions(tree, VILLAGE).items())

    wait_for(village_caught_up, 60, lambda: f"village statuses: "
             f"{collections.Counter(status for status, _ in versions(tree, VILLAGE).values())}, "
             f"outboxes {tree.outbox_depths()}")
    mark("decisions at the village")
    at_village = history(tree, VILLAGE)
    for owner in OWNERS:
        at_owner = history(tree, owner)
        for receipt, o in expected.items():
            if o == owner:
                assert at_village[receipt] == at_owner[receipt], receipt
                assert len(at_owner[receipt]) == final[receipt]
    with tree.client(VILLAGE) as c:
        for receipt, owner in expected.items():
            case = c.get(receipt)
            assert case.status == "approved" and case.owner == owner, receipt
            assert [e.seq for e in case.events] == list(range(1, final[receipt] + 1)), receipt
            assert [e.action for e in case.events][:3] == ["submit", "hand_over", "take_over"]
            assert case.events[-1].action == "approve"

    # The ancestors supervise: the city holds a summary of every case, and the owners'
    # summaries (county and township owners report up) are current.
    wait_for(lambda: sum(tree.outbox_depths().values()) == 0, 30, lambda: f"outboxes {tree.outbox_depths()}")
    summaries = city_summaries(tree)
    assert set(summaries) == set(expected)
    assert {r: n for r, n in summaries.items() if expected[r] != CITY and n != final[r]} == {}
    check_stores_sound(tree)
    print(f"\ntimeline (s): {marks}; the village's link when the township started (failures, next attempt): "
          f"{backoff}")
    assert time.monotonic() - started < 180, marks


# --- (b) SIGKILL at random moments ---

KILL_SEED = 20260311
KILL_CYCLES = 6
MIN_KILL_CYCLES = 5  # on a slow machine the cycles stop at CHAOS_LIMIT, but never before this many
SUBMITTERS = 2
MAX_CASES = 4000  # the stream's length at most, so the drain afterwards stays bounded
CHAOS_LIMIT = 55.0  # seconds from the start for the kill cycles
DRAIN_LIMIT = 45.0  # seconds for every outbox to drain after the last restart


@dataclass
class Ledger:
    acked: dict[str, str] = field(default_factory=dict)  # key → receipt
    owner: dict[str, str] = field(default_factory=dict)  # receipt → owner
    retried: set[str] = field(default_factory=set)
    replays: int = 0
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, key: str, response: cases_pb2.SubmitCaseResponse) -> None:
        c = response.case
        with self.lock:
            earlier = self.acked.get(key)
            if earlier is not None:
                self.problems.append(f"{key}: acknowledged twice ({earlier}, {c.receipt})")
            if response.replayed and key not in self.retried:
                self.problems.append(f"{key}: a first call answered as a replay")
            if c.receipt in self.owner:
                self.problems.append(f"{key}: receipt {c.receipt} given for two keys")
            self.acked[key] = c.receipt
            self.owner[c.receipt] = c.owner
            self.replays += response.replayed


def submitter(tree: Tree, next_request: Callable[[], cases_pb2.SubmitCaseRequest | None], ledger: Ledger,
              stop: threading.Event, hard_stop: float) -> None:
    """Submit until told to stop; a call that fails is sent again, same key and payload,
    until it is acknowledged (the village may be dead or restarting meanwhile)."""
    client = tree.client(VILLAGE)
    try:
        while not stop.is_set():
            request = next_request()
            if request is None:
                return
            while True:
                if time.monotonic() > hard_stop:
                    ledger.problems.append(f"{request.idempotency_key}: never acknowledged")
                    return
                try:
                    ledger.record(request.idempotency_key, submit(client, request))
                    break
                except ClientError as exc:
                    if exc.code not in TRANSPORT:
                        ledger.problems.append(f"{request.idempotency_key}: {exc.code.name}: {exc}")
                        return
                    with ledger.lock:
                        ledger.retried.add(request.idempotency_key)
                    client.close()  # a fresh channel: no waiting out gRPC's reconnect backoff
                    time.sleep(0.1)
                    client = tree.client(VILLAGE)
    finally:
        client.close()


def test_sigkill_of_township_and_village_during_sync_loses_nothing_and_doubles_nothing(tree: Tree) -> None:
    started = time.monotonic()
    rng = random.Random(KILL_SEED)
    tree.start(CITY, COUNTY, TOWNSHIP, VILLAGE)
    load_catalog_everywhere(tree)

    counter = iter(range(1_000_000))
    request_rng = random.Random(KILL_SEED + 1)
    levels = [Level.TOWNSHIP, Level.COUNTY, Level.CITY]
    request_lock = threading.Lock()

    def next_request() -> cases_pb2.SubmitCaseRequest | None:
        with request_lock:
            i = next(counter)
            return application(i, levels[i % 3], request_rng, "kill") if i < MAX_CASES else None

    ledger = Ledger()
    stop = threading.Event()
    hard_stop = started + 100
    threads = [threading.Thread(target=submitter, args=(tree, next_request, ledger, stop, hard_stop),
                                name=f"submitter-{i}", daemon=True) for i in range(SUBMITTERS)]
    for t in threads:
        t.start()
    kills: list[tuple[str, int, int]] = []  # (victims, acknowledged so far, village outbox depth)
    try:
        wait_for(lambda: len(ledger.acked) >= 50, 20, lambda: f"{len(ledger.acked)} acknowledged")
        # Each kind of failure more than once, in a seeded random order.
        kinds = [(TOWNSHIP,), (VILLAGE,), (TOWNSHIP, VILLAGE), (VILLAGE, TOWNSHIP)]
        plan = kinds + [rng.choice(kinds) for _ in range(KILL_CYCLES - len(kinds))]
        rng.shuffle(plan)
        for victims in plan:
            time.sleep(rng.uniform(0.3, 2.5))
            depth = tree.outbox_depth(VILLAGE)
            for victim in victims:
                tree.kill(victim)  # SIGKILL: no flush, no goodbye
                time.sleep(rng.uniform(0.0, 0.4))
            kills.append(("+".join(LEVELS[v] for v in victims), len(ledger.acked), depth))
            time.sleep(rng.uniform(0.0, 1.0))
            tree.start(*victims)
            if time.monotonic() - started > CHAOS_LIMIT:
                break
        assert len(kills) >= MIN_KILL_CYCLES, f"kill cycles too slow: {kills}"
        time.sleep(rng.uniform(0.5, 1.5))
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert all(not t.is_alive() for t in threads), "a submitter is stuck"
    assert not ledger.problems, ledger.problems[:10]
    chaos_done = time.monotonic()

    total = len(ledger.acked)

    wait_for(lambda: sum(tree.outbox_depths().values()) == 0
             and sum(len(tree.owned(o)) for o in OWNERS) >= total
             and all(count >= 3 for _, count in versions(tree, VILLAGE).values()),
             DRAIN_LIMIT, lambda: f"outboxes {tree.outbox_depths()}, owned "
             f"{ {o: len(tree.owned(o)) for o in OWNERS} } of {total}")
    drained = time.monotonic()

    # The village holds exactly the acknowledged cases, one per key.
    receipts = set(ledger.acked.values())
    assert len(receipts) == total
    assert set(tree.cases(VILLAGE)) == receipts
    # Every key the village ever served, and nothing more: the whole ledger, which no read lists.
    assert dict(tree.rows(VILLAGE, "SELECT key, receipt FROM idempotency_key")) == ledger.acked
    # Each owned exactly once, by the node it was handed to.
    owners = owners_by_receipt(tree)
    assert {r: o for r, o in owners.items() if len(o) != 1} == {}
    assert {r: o[0] for r, o in owners.items()} == ledger.owner
    assert {r: c.owner for r, c in tree.cases(TOWNSHIP).items() if c.owner != TOWNSHIP} == {}
    # Each owner took each of its cases over exactly once, and the village mirrors that history.
    at_village = history(tree, VILLAGE)
    for owner in OWNERS:
        mine = {r for r, o in ledger.owner.items() if o == owner}
        at_owner = history(tree, owner)
        assert take_overs(at_owner) == {r: 1 for r in mine}, owner
        for r in mine:
            assert [e[:2] for e in at_owner[r]] == [(1, "submit"), (2, "hand_over"), (3, "take_over")], r
            assert at_village[r] == at_owner[r], r
        # Every envelope the owner applied, it applied once (identities are primary keys);
        # and it applied exactly one transfer per case it owns (the dedupe ledger itself, read
        # from the file: no read lists it).
        assert tree.one(owner, "SELECT count(*) FROM applied_envelope WHERE origin = ?", (VILLAGE,)) == len(mine)
    # The city's rollup covers every case once.
    summaries = city_summaries(tree)
    assert set(summaries) == receipts
    assert {r: n for r, n in summaries.items() if ledger.owner[r] != CITY and n != 3} == {}
    check_stores_sound(tree)
    print(f"\n{total} cases, {len(ledger.retried)} retried keys, {ledger.replays} replays; kills "
          f"(victims, acknowledged, village outbox): {kills}; drained in {drained - chaos_done:.1f} s; "
          f"total {time.monotonic() - started:.1f} s")
    assert time.monotonic() - started < 150


# --- the transport after an outage ---


def test_grpc_transport_reaches_a_parent_that_is_back_without_a_hidden_backoff() -> None:
    """The link driver owns the backoff. After a parent has been unreachable for a while,
    the next call once it is back must reach it (within the transport's short retries),
    not fail with the stale 'connection refused' until gRPC's own channel backoff (which
    grows to two minutes by default) happens to expire."""
    port = free_ports(1)[0]
    address = f"127.0.0.1:{port}"
    outage = 16.0  # long enough that gRPC's default channel backoff would reach ~10 s

    async def hello_handler(request: sync_pb2.HelloRequest, context: grpc.aio.ServicerContext) -> sync_pb2.HelloResponse:
        return sync_pb2.HelloResponse(node_id=TOWNSHIP, level="township", protocol_version=request.protocol_version,
                                      incarnation=1, catalog_version=0)

    async def scenario() -> float:
        transport = GrpcTransport(address, timeout_s=2.0)
        hello = Hello(VILLAGE, "village", 1, 0, 1)
        server = None
        try:
            down_since = time.monotonic()
            while time.monotonic() - down_since < outage:
                with pytest.raises(LinkDown):
                    await transport.hello(hello)
                await asyncio.sleep(0.5)
            server = grpc.aio.server()
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("govnet.v1.SyncService", {
                "Hello": grpc.unary_unary_rpc_method_handler(
                    hello_handler, request_deserializer=sync_pb2.HelloRequest.FromString,
                    response_serializer=sync_pb2.HelloResponse.SerializeToString)}),))
            assert server.add_insecure_port(address) == port
            await server.start()
            up = time.monotonic()
            await asyncio.sleep(1.5)  # the driver's next attempt, a moment after the parent is back
            reply = await transport.hello(hello)
            assert reply.node_id == TOWNSHIP
            return time.monotonic() - up
        finally:
            if server is not None:
                await server.stop(0)
            await transport.close()

    took = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert took < 5.0


# --- (d) the inbox: acknowledged means stored, and a killed parent applies it after restart ---


def test_a_batch_acknowledged_into_the_inbox_survives_sigkill_and_applies_once(tree: Tree) -> None:
    """The township acknowledges batches once stored in its inbox, before applying them. Killed
    with envelopes still waiting there, it applies them after its restart: every case once."""
    tree.start(CITY, COUNTY, TOWNSHIP, VILLAGE)
    load_catalog_everywhere(tree)
    tree.stop(TOWNSHIP)
    rng = random.Random(7)
    receipts = set()
    with tree.client(VILLAGE) as village:
        for i in range(150):
            receipts.add(submit(village, application(i, Level.TOWNSHIP, rng, "inbox")).case.receipt)
    tree.start(TOWNSHIP)
    # Kill it the moment it holds acknowledged envelopes it has not applied yet. That moment
    # lasts milliseconds, so it is watched in the file (a call per poll would miss it).
    wait_for(lambda: tree.one(TOWNSHIP, "SELECT count(*) FROM inbox") > 0, 30,
             lambda: f"the township's inbox never filled; it owns {len(tree.owned(TOWNSHIP))}", interval=0.01)
    tree.kill(TOWNSHIP)
    # What the killed township left on disk: read from its file, as no process answers now.
    waiting = tree.one(TOWNSHIP, "SELECT count(*) FROM inbox")
    applied_before = tree.one(TOWNSHIP, "SELECT count(*) FROM case_record WHERE owner = ?", (TOWNSHIP,))
    assert waiting > 0 and applied_before < 150, (waiting, applied_before)
    # The waiting envelopes are within what the township acknowledged: the village will not send
    # them again (a copy it sends before deleting them is dropped by this cursor).
    (through,) = tree.rows(TOWNSHIP, "SELECT through FROM inbound_cursor WHERE link = ?", (VILLAGE,))[0]
    assert tree.one(TOWNSHIP, "SELECT max(last_seq) FROM inbox WHERE link = ?", (VILLAGE,)) <= through
    tree.start(TOWNSHIP)
    wait_for(lambda: tree.owned(TOWNSHIP) == receipts and inbox_depth(tree, TOWNSHIP) == 0,
             60, lambda: f"township owns {len(tree.owned(TOWNSHIP))} of 150, inbox {inbox_depth(tree, TOWNSHIP)}")
    assert take_overs(history(tree, TOWNSHIP)) == {r: 1 for r in receipts}
    with tree.client(TOWNSHIP) as c:
        assert list(c.quarantine().items) == []
