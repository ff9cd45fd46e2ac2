"""``govnet bench sync``: a village's backlog draining to its township, against the raw limit.

Two measurements in one run, over the same batches:

* **node**: a township (371102001, whose own parent is an address nobody serves) and a
  village (371102001201) in a temporary directory, both with the sample catalog. The
  village's outbox is filled first with ``cases`` queued cases — every one a real
  proxy application for an item the township decides, taken by the village's own case
  desk (``node.process.build.build_node`` + ``CaseDesk.submit``, many at once, before
  any process runs), so each case waits as its ``transfer`` (to the township, which
  becomes its owner) and its ``summary`` (to the city, through the township); the
  village's statistics ledger then counts them, as it would have while they came in, and
  its report waits too. Then both start as real ``govnet node serve`` processes: the
  township first, then the village, whose link driver pushes its backlog in batches of
  ``sync.batch_max`` envelopes over one Push stream, two batches in flight, each stored
  by the township in its inbox together with the link's cursor in one SQLite transaction
  before it answers, and applied from there afterwards (take-over, events, relays). The
  time runs from the village's first
  contact (its ``hello`` registering it at the township) until the village's outbox is
  empty, and on until the township owns all ``cases`` cases (read with plain sqlite3 every
  20 ms over connections kept open; the township's only once the outbox is empty, so the
  poller takes little CPU from the two nodes it measures on a small machine). The
  village's start-up before that contact is reported apart.
* **raw**: the same envelopes, read from the village's outbox before the node run and
  cut into the same batches (``sync.batching.select_batch`` with ``batch_max``), sent as
  the same ``PushRequest`` messages (``sync.transport.wire.push_request``) one
  batch at a time (one unary call each, as the issue defines the raw limit) to a bare
  grpc.aio server in its own process (this module, run as ``python -m ops.bench_sync
  raw-server``), whose handler parses the request and inserts every
  envelope's payload into one SQLite table in ONE transaction per batch, with the
  node's durability (WAL, ``synchronous=FULL``) from a worker thread, then answers with
  the cursor. Run twice, before and after the node run, so a change in the machine's
  load falls on both sides; the raw rate is over both runs together. Each run then sends
  the same batches once more over one bare stream, two in flight, as the node sends them:
  printed for comparison (how much of the node's rate comes from pipelining), not the
  target.

Rates are cases per second (each case is two envelopes on both sides). The ratio is
node / raw; the target is 0.5. A miss is reported, not an error: people decide.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from govnet.federation.tree import Level
from govnet.node.domain.catalog import Catalog, ServiceItem, load_catalog_file, sample_catalog_path
from govnet.node.rpc.client import aio_channel
from govnet.node.store.engine import DB_FILE
from govnet.ops.applicants import person_name, phone, resident_id
from govnet.ops.bench_intake import BenchError, describe_machine, machine_facts
from govnet.ops.pki import city_pki, enrol_node
from govnet.ops.processes import free_port, init_node, spawn_node
from govnet.ops.rawserver import ServerProcess, open_raw_db, serve_until_stopped, spawn_server
from govnet.sync.batching import select_batch
from govnet.sync.envelope import Envelope
from govnet.sync.transport.grpc import CHANNEL_OPTIONS
from govnet.sync.transport.wire import push_request
from govnet.sync.uplink import PUSH_WINDOW
from govnet.v1 import sync_pb2

TARGET_RATIO = 0.5
TOWNSHIP, VILLAGE = "371102001", "371102001201"
UNUSED_PARENT = "127.0.0.1:1"  # the township's county: never answers, never needed here
AGENT = "代办员 李四"
POLL_S = 0.02
DRAIN_TIMEOUT = 600.0  # seconds at the very most for the node to drain
CALL_TIMEOUT = 60.0  # seconds per raw batch
FILL_WORKERS = 32  # applications of the backlog in flight at once (the store commits them in groups)

RAW_SERVING = "raw sync limit serving on "
RAW_SERVICE = "govnet.bench.RawSync"  # one unary Push per batch
RAW_SCHEMA = "CREATE TABLE IF NOT EXISTS envelope (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)"


# --- reading a store from outside (plain sqlite3, read-only: safe while the node runs) ---


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def scalar(db: Path, sql: str, params: tuple[Any, ...] = ()) -> Any:
    return query(db, sql, params)[0][0]


# --- the backlog ---


def township_items(catalog: Catalog) -> list[ServiceItem]:
    """Items the township decides that a village agent may carry: each becomes a hand-over."""
    return [i for i in catalog.items if i.authority_level is Level.TOWNSHIP and i.proxy]


def applications(n: int, items: list[ServiceItem], rng: random.Random, prefix: str) -> list[Any]:
    """``n`` valid proxy applications (core materials always; the others unless tolerated)."""
    from govnet.node.app.desk import SubmitCommand

    out = []
    for i in range(n):
        item = rng.choice(items)
        materials = list(item.core_materials)
        materials += [m for m in item.noncore_materials if not item.tolerance or rng.random() < 0.5]
        out.append(SubmitCommand(
            idempotency_key=f"{prefix}-{i:07d}", item_code=item.code, applicant_name=person_name(rng),
            applicant_id=resident_id(rng), applicant_phone=phone(rng), materials=tuple(materials),
            agent=AGENT, actor=AGENT,
        ))
    return out


def publish_catalog(data_dir: Path, catalog: Catalog) -> None:
    """Store the sample catalog in a node's store before it runs (version 1 everywhere, so
    the township sends none down on hello)."""
    from govnet.node.store.engine import Store

    store = Store.open(data_dir)
    try:
        store.publish_catalog(catalog, datetime.now(UTC))
    finally:
        store.close()


def fill_backlog(village_dir: Path, cases: int, catalog: Catalog, seed: int,
                 workers: int = FILL_WORKERS) -> float:
    """Submit ``cases`` applications through the village's own desk while no process runs
    (so no link driver tries, and fails, in the meantime), and count them into the village's
    statistics as its running ledger would have while they came in (a node counts as it
    goes: a first count of the whole backlog at start-up is no part of draining it).
    Returns seconds taken."""
    from govnet.node.domain.clock import SystemClock
    from govnet.node.process.build import build_node
    from govnet.node.process.config import load_config

    config = load_config(village_dir)
    commands = applications(cases, township_items(catalog), random.Random(seed), f"sync-{seed}")
    node = build_node(config, SystemClock(), None, serve=False)  # no transport: nothing tries the link
    started = time.perf_counter()
    try:
        asyncio.run(_submit_all(node.desk, commands, workers))
        for _ in range(cases):  # a flush counts up to 20,000 events: a few rounds at most
            if not node.ledger.pending():
                break
            node.ledger.flush_now(SystemClock().now())
    finally:
        node.store.close()
    return time.perf_counter() - started


async def _submit_all(desk: Any, commands: list[Any], workers: int) -> None:
    """Every application through the desk, ``workers`` in flight at a time (they share commits)."""
    room = asyncio.Semaphore(max(1, workers))

    async def one(cmd: Any) -> None:
        async with room:
            done = await desk.submit(cmd)
        state = done.record.state
        if done.replayed or state.owner != TOWNSHIP:
            raise BenchError(f"backlog: {cmd.idempotency_key} was not handed to {TOWNSHIP} "
                             f"(owner {state.owner}, replayed {done.replayed})")

    await asyncio.gather(*(one(cmd) for cmd in commands))


def outbox_envelopes(village_db: Path) -> list[Envelope]:
    rows = query(village_db, "SELECT seq, origin, origin_incarnation, origin_seq, kind, target, case_key, "
                             "priority, payload, created_at FROM outbox WHERE link = ? ORDER BY seq", (TOWNSHIP,))
    return [Envelope(seq, origin, inc, oseq, kind, target, key, prio, payload.encode(), created)
            for seq, origin, inc, oseq, kind, target, key, prio, payload, created in rows]


def push_batches(envelopes: list[Envelope], batch_max: int, incarnation: int) -> list[sync_pb2.PushRequest]:
    """The batches the village's up-link sends, in its order (``UpLink.next_batch``: a window
    of ``batch_max * 20`` waiting envelopes, ``select_batch`` from it), as PushRequests."""
    left = list(envelopes)
    out = []
    while left:
        batch = select_batch(left[: batch_max * 20], batch_max)
        taken = {e.seq for e in batch}
        left = [e for e in left if e.seq not in taken]
        out.append(push_request(VILLAGE, incarnation, batch))
    return out


# --- the raw limit: a bare gRPC call into a bare SQLite transaction ---


class RawBatchWriter:
    """One connection with the node's pragmas, one lock, one transaction per batch."""

    def __init__(self, path: Path) -> None:
        self.conn = open_raw_db(path, RAW_SCHEMA)
        self.lock = threading.Lock()

    def insert_batch(self, payloads: list[bytes]) -> None:
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                self.conn.executemany("INSERT INTO envelope (payload) VALUES (?)", [(p,) for p in payloads])
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def raw_handler(writer: RawBatchWriter) -> grpc.GenericRpcHandler:
    async def store(request: sync_pb2.PushRequest) -> sync_pb2.PushResponse:
        await asyncio.to_thread(writer.insert_batch, [e.payload for e in request.envelopes])
        through = max((e.seq for e in request.envelopes), default=0)
        return sync_pb2.PushResponse(applied=sync_pb2.Cursor(through=through))

    async def push(request: sync_pb2.PushRequest, context: grpc.aio.ServicerContext) -> sync_pb2.PushResponse:
        return await store(request)

    async def push_stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        async for request in requests:
            yield await store(request)

    decode, encode = sync_pb2.PushRequest.FromString, sync_pb2.PushResponse.SerializeToString
    return grpc.method_handlers_generic_handler(RAW_SERVICE, {
        "Push": grpc.unary_unary_rpc_method_handler(push, decode, encode),
        "PushStream": grpc.stream_stream_rpc_method_handler(push_stream, decode, encode),
    })


async def serve_raw(db: Path, listen: str, max_seconds: float) -> None:
    writer = RawBatchWriter(db)
    try:
        await serve_until_stopped(raw_handler(writer), listen, max_seconds, RAW_SERVING)
    finally:
        writer.close()


def spawn_raw(db: Path, max_seconds: float = 600.0, timeout: float = 20.0, tls: Path | None = None) -> ServerProcess:
    try:
        return spawn_server(["govnet.ops.bench_sync", "raw-server", str(db), "--max-seconds", str(max_seconds)],
                            RAW_SERVING, db.parent / "raw-sync.stderr.log", timeout, tls=tls)
    except RuntimeError as exc:
        raise BenchError(f"the raw sync server did not start: {exc}") from None


async def send_batches(address: str, batches: list[sync_pb2.PushRequest], certs: Path | None = None) -> float:
    """Every batch, one unary call each, one in flight; returns wall seconds."""
    async with aio_channel(address, certs, CHANNEL_OPTIONS) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), 10)
        except TimeoutError:
            raise BenchError(f"raw: no connection to {address} within 10 s") from None
        push = channel.unary_unary(f"/{RAW_SERVICE}/Push", request_serializer=sync_pb2.PushRequest.SerializeToString,
                                   response_deserializer=sync_pb2.PushResponse.FromString)
        started = time.perf_counter()
        for i, batch in enumerate(batches):
            try:
                reply = await push(batch, timeout=CALL_TIMEOUT)
            except grpc.aio.AioRpcError as exc:
                raise BenchError(f"raw: batch {i} failed: {exc.code().name}: {exc.details()}") from None
            expected = max(e.seq for e in batch.envelopes)
            if reply.applied.through != expected:
                raise BenchError(f"raw: batch {i} answered with cursor {reply.applied.through}, not {expected}")
        return time.perf_counter() - started


async def stream_batches(address: str, batches: list[sync_pb2.PushRequest], certs: Path | None = None) -> float:
    """Every batch over one stream, ``PUSH_WINDOW`` in flight (as the node sends them);
    returns wall seconds."""
    async with aio_channel(address, certs, CHANNEL_OPTIONS) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), 10)
        except TimeoutError:
            raise BenchError(f"raw: no connection to {address} within 10 s") from None
        call = channel.stream_stream(f"/{RAW_SERVICE}/PushStream",
                                     request_serializer=sync_pb2.PushRequest.SerializeToString,
                                     response_deserializer=sync_pb2.PushResponse.FromString)()
        started = time.perf_counter()
        sent = 0
        try:
            for i, batch in enumerate(batches):
                while sent < min(len(batches), i + PUSH_WINDOW):
                    await asyncio.wait_for(call.write(batches[sent]), CALL_TIMEOUT)
                    sent += 1
                reply = await asyncio.wait_for(call.read(), CALL_TIMEOUT)
                expected = max(e.seq for e in batch.envelopes)
                if not isinstance(reply, sync_pb2.PushResponse) or reply.applied.through != expected:
                    raise BenchError(f"raw stream: batch {i} was not acknowledged with cursor {expected}")
            elapsed = time.perf_counter() - started
            await call.done_writing()
        except (grpc.aio.AioRpcError, TimeoutError) as exc:
            raise BenchError(f"raw stream: {exc}") from None
        finally:
            call.cancel()
        return elapsed


def measure_raw(db: Path, batches: list[sync_pb2.PushRequest], tls: Path | None = None,
                certs: Path | None = None) -> tuple[float, float]:
    """Seconds for every batch through the raw server: unary calls, then one stream (over mutual
    TLS when given its certificate folder ``tls`` and the client's ``certs``)."""
    server = spawn_raw(db, tls=tls)
    try:
        return (asyncio.run(send_batches(server.address, batches, certs)),
                asyncio.run(stream_batches(server.address, batches, certs)))
    finally:
        server.stop()


# --- the node ---


class ReadOnly:
    """A read-only connection to a store, kept open while polling (opening one per read
    cost the poller a fifth of a core, taken from the nodes it measures)."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.conn.execute(sql, params).fetchone()[0]

    def close(self) -> None:
        self.conn.close()


def measure_node(township_dir: Path, village_dir: Path, cases: int) -> tuple[float, float, float]:
    """Start the township, then the village; returns (village start → first contact,
    first contact → drained, first contact → applied) in seconds."""
    township_db, village_db = township_dir / DB_FILE, village_dir / DB_FILE
    township = village = None
    readers: list[ReadOnly] = []
    try:
        township = spawn_node(township_dir)
        launched = time.perf_counter()
        village = spawn_node(village_dir)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        readers = [ReadOnly(township_db), ReadOnly(village_db)]
        at_township, at_village = readers
        while not at_township.scalar("SELECT count(*) FROM child_link WHERE child_id = ?", (VILLAGE,)):
            if time.monotonic() > deadline or not village.alive():
                raise BenchError(f"the village never reached the township: {village.stderr_path.read_text()[-1500:]}")
            time.sleep(POLL_S)
        contact = time.perf_counter()
        drained = None
        left = owned = 0
        while True:
            if drained is None:
                left = at_village.scalar("SELECT count(*) FROM (SELECT 1 FROM outbox WHERE link = ? LIMIT 1)",
                                         (TOWNSHIP,))
                if not left:
                    drained = time.perf_counter()
            if drained is not None:  # then applying: read only once draining is over
                owned = at_township.scalar("SELECT count(*) FROM case_record WHERE owner = ?", (TOWNSHIP,))
                waiting = at_township.scalar("SELECT count(*) FROM (SELECT 1 FROM inbox LIMIT 1)")
                if owned >= cases and not waiting:
                    applied = time.perf_counter()
                    break
            if time.monotonic() > deadline:
                raise BenchError(f"node: not drained after {DRAIN_TIMEOUT:.0f} s "
                                 f"({'none' if drained else 'some'} envelopes left at the village, "
                                 f"{owned} of {cases} cases at the township)")
            if not township.alive() or not village.alive():
                raise BenchError("node: a node process died during the drain")
            time.sleep(POLL_S)
        return contact - launched, drained - contact, applied - contact
    finally:
        for reader in readers:
            reader.close()
        for node in (village, township):
            if node is not None:
                node.stop()


# --- the result ---


@dataclass(frozen=True)
class SyncBenchResult:
    cases: int
    envelopes: int  # queued at the village: a transfer and a summary per case, and its statistics report
    batch_max: int
    flush_interval_s: float
    batches: int  # raw: PushRequests sent per run
    fill_seconds: float  # building the backlog (not measured against anything)
    startup_seconds: float  # village process start → its first contact with the township
    node_seconds: float  # first contact → village outbox empty: every envelope stored at the township
    node_rate: float  # cases per second
    applied_seconds: float  # first contact → every case applied at the township (its inbox empty)
    applied_rate: float  # cases per second
    raw_seconds: tuple[float, float]  # the two raw runs (before and after the node run)
    raw_rate: float  # cases per second over both raw runs
    ratio: float  # node_rate / raw_rate
    # For comparison, not the target: the same batches over one bare stream, two in flight
    # (as the node sends them), in the same two server runs.
    raw_stream_seconds: tuple[float, float]
    raw_stream_rate: float
    stream_ratio: float  # node_rate / raw_stream_rate
    target: float
    passed: bool
    township_cases: int  # owned by the township after the run
    township_take_overs: int
    township_quarantined: int
    village_outbox_left: int
    raw_rows: int  # rows in the raw table after both runs (4 × envelopes: unary and stream, twice)
    data_dir: str
    machine: dict[str, Any]
    tls: bool = True  # mutual TLS between the nodes and to the raw server

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        verdict = "met" if self.passed else "NOT met"
        return "\n".join([
            f"sync bench: {self.cases} cases ({self.envelopes} envelopes) queued at village {VILLAGE}, drained to "
            f"township {TOWNSHIP}; batch_max {self.batch_max}, flush interval {self.flush_interval_s} s, "
            f"{self.batches} batches; {'mutual TLS' if self.tls else 'plaintext'} on both sides; "
            f"{describe_machine(self.machine)}",
            f"  backlog built in {self.fill_seconds:.1f} s; village up and in contact after {self.startup_seconds:.2f} s",
            f"  node : {self.node_rate:8.1f} cases/s   ({self.node_seconds:.2f} s until the village's outbox was "
            "empty: every envelope acknowledged, stored in the township's inbox)",
            f"         {self.applied_rate:8.1f} cases/s   ({self.applied_seconds:.2f} s until every case was applied "
            f"at the township: it owns {self.township_cases}, {self.township_quarantined} quarantined)",
            f"  raw  : {self.raw_rate:8.1f} cases/s   ({' s, '.join(f'{s:.2f}' for s in self.raw_seconds)} s: "
            "bare gRPC call, one SQLite transaction per batch)",
            f"  ratio: {self.ratio:.2f} of the raw limit; target ≥ {self.target:.2f}: {verdict}",
            (f"  (raw over one stream, {PUSH_WINDOW} batches in flight as the node sends them: "
             f"{self.raw_stream_rate:.1f} cases/s ({' s, '.join(f'{s:.2f}' for s in self.raw_stream_seconds)} s); "
             f"node / that: {self.stream_ratio:.2f})"),
        ])


def run_sync_bench(cases: int = 10_000, batch_max: int = 200, flush_interval_s: float = 0.5, *,
                   seed: int = 20260310, work_dir: Path | None = None, tls: bool = True) -> SyncBenchResult:
    """Measure the node and the raw limit; see the module docstring.

    ``work_dir``: where to keep the township's, the village's and the raw server's files
    (kept afterwards, reported as ``data_dir``); by default a temporary directory, removed
    at the end. ``tls``: the nodes, and the raw server, speak mutual TLS (as in production);
    False: plaintext on both sides.
    """
    if cases < 1 or batch_max < 1 or flush_interval_s <= 0:
        raise ValueError("cases and batch_max must be at least 1, the flush interval above 0")
    keep = work_dir is not None
    base = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="govnet-bench-sync-"))
    base.mkdir(parents=True, exist_ok=True)
    facts = machine_facts(base)
    township_dir, village_dir, raw_dir = base / "township", base / "village", base / "raw"
    raw_dir.mkdir(exist_ok=True)
    raw_db = raw_dir / "raw.db"
    sync = {"flush_interval_s": flush_interval_s, "batch_max": batch_max}
    try:
        catalog = load_catalog_file(sample_catalog_path())
        township_address = f"127.0.0.1:{free_port()}"
        pki = city_pki(base / "pki", "371100") if tls else None
        security: dict[str, Any] = {"ca": pki.ca} if pki else {"tls": {"plaintext": True}}
        init_node(township_dir, TOWNSHIP, "township", UNUSED_PARENT, listen=township_address, sync=sync, **security)
        init_node(village_dir, VILLAGE, "village", township_address, listen="127.0.0.1:0", sync=sync, **security)
        raw_tls = enrol_node(raw_dir, TOWNSHIP, "township", pki.ca).parent if pki else None
        publish_catalog(township_dir, catalog)
        publish_catalog(village_dir, catalog)
        fill_seconds = fill_backlog(village_dir, cases, catalog, seed)

        envelopes = outbox_envelopes(village_dir / DB_FILE)
        case_envelopes = sum(1 for e in envelopes if e.kind in ("transfer", "summary"))
        if case_envelopes != 2 * cases:
            raise BenchError(f"backlog: {case_envelopes} case envelopes queued, expected {2 * cases}")
        incarnation = int(scalar(village_dir / DB_FILE, "SELECT value FROM meta WHERE key = 'incarnation'"))
        batches = push_batches(envelopes, batch_max, incarnation)

        certs = pki.client if pki else None
        raw_before, stream_before = measure_raw(raw_db, batches, raw_tls, certs)
        startup, node_seconds, applied_seconds = measure_node(township_dir, village_dir, cases)
        raw_after, stream_after = measure_raw(raw_db, batches, raw_tls, certs)

        township_db = township_dir / DB_FILE
        township_cases = scalar(township_db, "SELECT count(*) FROM case_record WHERE owner = ?", (TOWNSHIP,))
        take_overs = scalar(township_db, "SELECT count(*) FROM case_event WHERE action = 'take_over'")
        quarantined = scalar(township_db, "SELECT count(*) FROM quarantine")
        # What is left of the backlog: the node's own periodic reports (statistics, the audit chain's
        # head) may be queued again at any moment, and so may the applicants the village withheld
        # before it knew its owners' certificates (sent sealed once it does): none is the bench's.
        left = scalar(village_dir / DB_FILE, "SELECT count(*) FROM outbox WHERE link = ? "
                      "AND kind NOT IN ('stats', 'audit', 'applicant')", (TOWNSHIP,))
        conn = sqlite3.connect(str(raw_db))
        try:
            raw_rows = conn.execute("SELECT count(*) FROM envelope").fetchone()[0]
        finally:
            conn.close()
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)

    node_rate = cases / node_seconds if node_seconds > 0 else 0.0
    applied_rate = cases / applied_seconds if applied_seconds > 0 else 0.0
    raw_total = raw_before + raw_after
    raw_rate = 2 * cases / raw_total if raw_total > 0 else 0.0
    ratio = node_rate / raw_rate if raw_rate else 0.0
    stream_total = stream_before + stream_after
    raw_stream_rate = 2 * cases / stream_total if stream_total > 0 else 0.0
    return SyncBenchResult(
        cases=cases, envelopes=len(envelopes), batch_max=batch_max, flush_interval_s=flush_interval_s,
        batches=len(batches), fill_seconds=fill_seconds, startup_seconds=startup, node_seconds=node_seconds,
        node_rate=node_rate, applied_seconds=applied_seconds, applied_rate=applied_rate, raw_seconds=(raw_before, raw_after), raw_rate=raw_rate, ratio=ratio,
        raw_stream_seconds=(stream_before, stream_after), raw_stream_rate=raw_stream_rate,
        stream_ratio=node_rate / raw_stream_rate if raw_stream_rate else 0.0,
        target=TARGET_RATIO, passed=ratio >= TARGET_RATIO, township_cases=township_cases,
        township_take_overs=take_overs, township_quarantined=quarantined, village_outbox_left=left,
        raw_rows=raw_rows, data_dir=str(base) if keep else "", machine=facts, tls=tls,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ops.bench_sync",
                                     description="The raw-limit server of 'govnet bench sync'.")
    sub = parser.add_subparsers(dest="command", required=True)
    raw = sub.add_parser("raw-server", help="serve the bare Push method into DB until SIGTERM")
    raw.add_argument("db", type=Path)
    raw.add_argument("--listen", default="127.0.0.1:0")
    raw.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    asyncio.run(serve_raw(args.db, args.listen, args.max_seconds))


if __name__ == "__main__":
    main()
