"""SIGKILL of the node during a stream of submits loses no acknowledged case and leaves
no half-written one.

A real ``govnet node serve`` process takes submits from several client threads and is
SIGKILLed at a random moment (seeded) three times, restarted on the same data directory
each time. Calls that were not acknowledged are retried after the restart with the
same idempotency key and payload, which must give back the case the node may already
have committed (a replay) or a new one, never a second case. After the last restart
the store is checked with plain sqlite3 and through the gRPC API.
"""

from __future__ import annotations

import collections
import random
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.process.config import NO_RATE_LIMITS
from govnet.node.rpc.client import ClientError, GovnetClient
from govnet.node.store.engine import DB_FILE
from govnet.ops.bench_intake import make_requests, receivable_items
from govnet.ops.processes import NodeProcess, init_node
from govnet.v1 import cases_pb2

from support.accounts import spawn_node

SEED = 20260310
THREADS = 4
KILLS = 3
TIME_LIMIT = 40.0  # seconds for the whole test
CALL_TIMEOUT = 5.0
# What a client may see when the node dies under its call (or is not back yet);
# the call is then retried with the same key. Anything else is a bug.
TRANSPORT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
             grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN}


@dataclass
class Ledger:
    """What the clients know: every acknowledged key → receipt, and what must be retried."""

    requests: dict[str, cases_pb2.SubmitCaseRequest]  # every application, by its key
    acked: dict[str, str] = field(default_factory=dict)
    retried: set[str] = field(default_factory=set)  # keys whose call went unanswered at least once
    replays: int = 0
    answered: threading.Event = field(default_factory=threading.Event)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, key: str, response: cases_pb2.SubmitCaseResponse) -> None:
        receipt = response.case.receipt
        with self.lock:
            if response.case.status != "received":
                self.problems.append(f"{key}: answered with status {response.case.status!r}")
            earlier = self.acked.get(key)
            if earlier is not None and earlier != receipt:
                self.problems.append(f"{key}: acknowledged as {earlier}, then as {receipt} (two cases)")
            if earlier is not None and not response.replayed:
                self.problems.append(f"{key}: acknowledged again as a new case")
            self.acked.setdefault(key, receipt)
            self.replays += response.replayed
        self.answered.set()


def submit(client: GovnetClient, request: cases_pb2.SubmitCaseRequest) -> cases_pb2.SubmitCaseResponse:
    a = request.applicant
    return client.submit(
        idempotency_key=request.idempotency_key, item_code=request.item_code, name=a.name,
        id_number=a.id_number, phone=a.phone, materials=list(request.materials),
        agent=request.agent, note=request.note, actor=request.actor,
    )


def stream(address: str, work: collections.deque[cases_pb2.SubmitCaseRequest],
           retry: collections.deque[cases_pb2.SubmitCaseRequest], ledger: Ledger,
           stop: threading.Event) -> None:
    """Submit from ``work`` until the node stops answering; unanswered calls go to ``retry``."""
    with GovnetClient(address, timeout=CALL_TIMEOUT) as client:
        while not stop.is_set():
            try:
                request = work.popleft()
            except IndexError:
                return
            try:
                response = submit(client, request)
            except ClientError as exc:
                retry.append(request)
                with ledger.lock:
                    ledger.retried.add(request.idempotency_key)
                if exc.code not in TRANSPORT:
                    with ledger.lock:
                        ledger.problems.append(f"{request.idempotency_key}: {exc.code.name}: {exc}")
                return
            ledger.record(request.idempotency_key, response)


def test_sigkill_loses_no_acknowledged_case_and_leaves_no_half_written_one(tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    catalog = load_catalog_file(sample_catalog_path())
    # The clients submit as fast as they can on purpose: the node's rate limits (tested in
    # tests/rpc/test_rate_limits.py) would turn that load away before it reaches the store.
    data_dir = init_node(tmp_path / "node", "371102", "county", parent="127.0.0.1:1", rate=NO_RATE_LIMITS)
    node: NodeProcess = spawn_node(data_dir)
    with GovnetClient(node.address) as client:
        client.put_catalog(catalog)

    # More than the node can take in the time we give it: the stream never runs dry.
    applications = make_requests(6000, receivable_items(catalog), rng, "crash")
    fresh = collections.deque(applications)
    retry: collections.deque[cases_pb2.SubmitCaseRequest] = collections.deque()
    ledger = Ledger({r.idempotency_key: r for r in applications})
    kills: list[tuple[int, int]] = []  # (acknowledged so far, unanswered) at each kill
    try:
        for cycle in range(KILLS):
            # Unacknowledged calls from the last cycle go first, with the same key and payload.
            work = collections.deque([*retry, *fresh])
            retry.clear()
            stop = threading.Event()
            ledger.answered.clear()
            threads = [threading.Thread(target=stream, args=(node.address, work, retry, ledger, stop),
                                        name=f"client-{i}", daemon=True) for i in range(THREADS)]
            for t in threads:
                t.start()
            # Kill mid-stream: a random moment after the stream is flowing.
            assert ledger.answered.wait(10), f"cycle {cycle}: the node answered no call in 10 s"
            time.sleep(rng.uniform(0.3, 1.5))
            node.kill()  # SIGKILL: no flush, no cleanup
            stop.set()
            for t in threads:
                t.join(CALL_TIMEOUT + 5)
                assert not t.is_alive(), f"{t.name} still running after the node was killed"
            kills.append((len(ledger.acked), len(retry)))
            sent = {r.idempotency_key for r in retry} | set(ledger.acked)
            fresh = collections.deque(r for r in work if r.idempotency_key not in sent)
            assert not node.alive()
            node = spawn_node(data_dir)
            assert time.monotonic() - started < TIME_LIMIT, "the kill/restart cycles took too long"

        # After the last restart: every unacknowledged call once more, same key, same payload.
        with GovnetClient(node.address, timeout=CALL_TIMEOUT) as client:
            for request in retry:
                ledger.record(request.idempotency_key, submit(client, request))
            assert not ledger.problems, "\n".join(ledger.problems[:20])
            # Every kill caught calls in flight, so the retry path really ran.
            assert ledger.retried and all(unanswered for _, unanswered in kills), kills
            print(f"\nkills at (acknowledged, unanswered): {kills}; {len(ledger.acked)} cases, "
                  f"{len(ledger.retried)} retried keys, {ledger.replays} replays")

            _check_store(data_dir / DB_FILE, ledger.acked)
            _check_api(client, ledger, rng)
        assert node.terminate() == 0
        _check_store(data_dir / DB_FILE, ledger.acked)  # and after a clean stop, too
    finally:
        if node.alive():
            node.kill()
    assert time.monotonic() - started < TIME_LIMIT, f"took {time.monotonic() - started:.1f} s"


def _check_store(db: Path, acked: dict[str, str]) -> None:
    """Plain sqlite3: the store holds exactly the acknowledged cases, each whole."""
    # The file after SIGKILLs: integrity and no half-written case are claims about storage itself.
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []

        cases = {r: (status, n) for r, status, n in
                 conn.execute("SELECT receipt, status, event_count FROM case_record")}
        # Nothing acknowledged is lost; no key made two cases; nothing unacknowledged is left.
        assert len(set(acked.values())) == len(acked)
        assert set(cases) == set(acked.values())
        assert len(cases) == len(acked)

        events: dict[str, list[tuple[int, str, str, str]]] = collections.defaultdict(list)
        for receipt, seq, action, from_status, to_status in conn.execute(
            "SELECT receipt, seq, action, from_status, to_status FROM case_event ORDER BY receipt, seq"
        ):
            events[receipt].append((seq, action, from_status, to_status))
        assert set(events) <= set(cases), f"orphan events: {sorted(set(events) - set(cases))[:5]}"
        for receipt, (status, count) in cases.items():
            assert status == "received" and count >= 1, (receipt, status, count)
            history = events.get(receipt, [])
            assert [e[0] for e in history] == list(range(1, count + 1)), f"{receipt}: events {history}"
            assert history[0][1:] == ("submit", "", "received"), f"{receipt}: first event {history[0]}"

        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "outbox" in tables:  # messages written with a case never outlive a rolled-back case
            # (the node's own reports are about no case: statistics rows and the audit chain's head)
            about = {k for (k,) in conn.execute(
                "SELECT DISTINCT case_key FROM outbox WHERE case_key != 'catalog' AND kind NOT IN ('stats', 'audit')")}
            assert about <= set(cases), f"outbox rows for no case: {sorted(about - set(cases))[:5]}"

        keys = dict(conn.execute("SELECT key, receipt FROM idempotency_key"))
        assert keys == acked  # one key row per case, bound to the receipt the client was given
        # The gapless counters moved in the same transactions as the rows they number.
        counters = dict(conn.execute("SELECT name, value FROM counter"))
        assert counters.get("case_seq", 0) == len(cases)
        total_events = conn.execute("SELECT count(*) FROM case_event").fetchone()[0]
        assert counters.get("event_seq", 0) == total_events
    finally:
        conn.close()


def _check_api(client: GovnetClient, ledger: Ledger, rng: random.Random) -> None:
    """The same through the node: listed, readable with their submit event, replays stable."""
    listed: set[str] = set()
    token = ""
    for _ in range(100):
        page = client.list(limit=1000, page_token=token)
        listed |= {c.receipt for c in page.cases}
        token = page.next_page_token
        if not token:
            break
    assert listed == set(ledger.acked.values())
    for receipt in ledger.acked.values():
        case = client.get(receipt)
        assert case.status == "received", receipt
        assert [(e.seq, e.action, e.to_status) for e in case.events] == [(1, "submit", "received")], receipt
    # Sending an acknowledged application again gives back its case, not a new one:
    # every key that needed a retry, and a sample of the others.
    again = [*sorted(ledger.retried), *rng.sample(sorted(ledger.acked), min(50, len(ledger.acked)))]
    for key in again:
        response = submit(client, ledger.requests[key])
        assert response.replayed and response.case.receipt == ledger.acked[key], key
