"""``govnet bench intake``: case intake over gRPC against the raw limit of this machine.

Two measurements in one run, with the same client, the same requests shape and the
same concurrency:

* **node**: a fresh county node (371102) in a temporary directory, started as a real
  ``govnet node serve`` process, loaded with the sample catalog, then sent ``cases``
  ``Submit`` calls, ``concurrency`` in flight at a time. Every request is a realistic,
  valid application: a resident ID whose check character is computed with ISO 7064
  MOD 11-2, a mobile or landline phone, an item the county receives, its core
  materials (and some of the others), sometimes a village agent, each with its own
  idempotency key.
* **raw**: ``ops.rawlimit`` in its own process: a bare grpc.aio server whose one
  handler, registered under the same method path ``/govnet.v1.CaseService/Submit``,
  inserts the serialized request into one SQLite table with the node's durability
  (WAL, ``synchronous=FULL``, one commit per call) from a worker thread on one
  lock-guarded connection (the node's threading shape). See that module for details.

The client is one asyncio loop in this process with ``concurrency`` worker tasks
sharing ``channels`` grpc.aio channels; every call goes through the generated
``CaseServiceStub.Submit`` with the same pre-built request messages for both servers,
so the client's own cost is the same on both sides. Both servers run at once (the idle
one costs nothing); each gets ``warmup`` calls first (not counted), then the measured
requests are cut into ``rounds`` slices and the two sides take turns slice by slice,
so a change in the machine's load during the run (other work on a shared machine)
falls on both alike. Only OK answers count; any failed call (or an answer without a
receipt, or a replay where a new case was expected) stops the benchmark with a
``BenchError`` naming the call.

The result reports both rates (calls per second of wall time over the measured calls),
p50/p99 latency per call, the ratio node/raw, the target (0.5) and whether it was met.
It does not exit non-zero on a miss: the CLI prints, people decide.
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import grpc

from govnet.federation.tree import Level
from govnet.node.domain.catalog import Catalog, ServiceItem, load_catalog_file, sample_catalog_path
from govnet.node.process.config import NO_RATE_LIMITS
from govnet.node.rpc.client import CHANNEL_OPTIONS, GovnetClient, aio_channel
from govnet.node.store.engine import SQLITE_VERSION, Store
from govnet.ops.applicants import person_name, phone, resident_id
from govnet.ops.pki import city_pki, enrol_node
from govnet.ops.processes import init_node, spawn_node, tool_token
from govnet.ops.rawlimit import count_rows, spawn_raw
from govnet.v1 import cases_pb2, cases_pb2_grpc

TARGET_RATIO = 0.5
NODE_ID = "371102"
NODE_LEVEL = Level.COUNTY
CALL_TIMEOUT = 30.0  # seconds per call: a stuck server fails the bench instead of hanging it
RUN_TIMEOUT = 300.0  # seconds per measured run, at the very most

# --- realistic applications (the people come from ops.applicants) ---


def receivable_items(catalog: Catalog, level: Level = NODE_LEVEL) -> list[ServiceItem]:
    """Items a node at ``level`` receives: those decided at its level or above it (the
    lifecycle refuses items decided at a lower level: apply there)."""
    return [i for i in catalog.items if i.authority_level.rank <= level.rank]


def make_requests(n: int, items: Sequence[ServiceItem], rng: random.Random,
                  key_prefix: str) -> list[cases_pb2.SubmitCaseRequest]:
    """``n`` valid, varied applications with unique idempotency keys ``{key_prefix}-{i}``."""
    requests = []
    for i in range(n):
        item = rng.choice(items)
        materials = list(item.core_materials)
        materials += [m for m in item.noncore_materials if rng.random() < 0.6]
        rng.shuffle(materials)
        agent = f"代办员{rng.randint(1, 40):02d}" if item.proxy and rng.random() < 0.15 else ""
        requests.append(cases_pb2.SubmitCaseRequest(
            idempotency_key=f"{key_prefix}-{i:07d}",
            item_code=item.code,
            applicant=cases_pb2.Applicant(name=person_name(rng), id_number=resident_id(rng), phone=phone(rng)),
            materials=materials,
            agent=agent,
            note="申请人现场提交纸质材料" if rng.random() < 0.2 else "",
            actor=agent or f"窗口{rng.randint(1, 12):02d}",
        ))
    return requests


# --- the client (identical for both servers) ---


class BenchError(click.ClickException):
    """The benchmark could not measure: a call failed or a server did not start.

    A ``ClickException`` so that ``govnet bench intake`` reports it as one line and
    exits 1 (the CLI's ``friendly`` wrapper does not know this module's errors)."""

    def show(self, file: Any = None) -> None:
        click.echo(f"govnet: error: {self.format_message()}", err=True)


@dataclass(frozen=True)
class RunStats:
    calls: int
    seconds: float
    rate: float  # calls per second
    p50_ms: float
    p99_ms: float
    mean_ms: float


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def _drive(stubs: Sequence[cases_pb2_grpc.CaseServiceStub], requests: Sequence[cases_pb2.SubmitCaseRequest],
                 concurrency: int, label: str, metadata: tuple[tuple[str, str], ...] | None = None,
                 ) -> tuple[float, list[float]]:
    """Send every request with ``concurrency`` in flight; return (wall seconds, latencies)."""
    latencies: list[float] = []
    next_index = 0

    async def worker(w: int) -> None:
        nonlocal next_index
        stub = stubs[w % len(stubs)]
        while next_index < len(requests):
            i = next_index
            next_index += 1
            request = requests[i]
            started = time.perf_counter()
            try:
                response = await stub.Submit(request, timeout=CALL_TIMEOUT, metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                raise BenchError(
                    f"{label}: call {i} (key {request.idempotency_key}) failed: "
                    f"{exc.code().name}: {exc.details()}"
                ) from None
            latencies.append(time.perf_counter() - started)
            if not response.case.receipt:
                raise BenchError(f"{label}: call {i} (key {request.idempotency_key}) answered without a receipt")
            if response.replayed:
                raise BenchError(f"{label}: call {i} (key {request.idempotency_key}) was answered as a replay "
                                 "although its key is new")

    started = time.perf_counter()
    tasks = [asyncio.create_task(worker(w)) for w in range(concurrency)]
    try:
        done, pending = await asyncio.wait(tasks, timeout=RUN_TIMEOUT, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        if pending:
            raise BenchError(f"{label}: not finished after {RUN_TIMEOUT:.0f} s "
                             f"({len(latencies)} of {len(requests)} calls answered)")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return time.perf_counter() - started, latencies


def _stats(seconds: float, latencies: list[float]) -> RunStats:
    latencies = sorted(latencies)
    return RunStats(
        calls=len(latencies),
        seconds=seconds,
        rate=len(latencies) / seconds if seconds > 0 else 0.0,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        mean_ms=statistics.fmean(latencies) * 1000 if latencies else 0.0,
    )


async def measure(targets: dict[str, str], warmup: Sequence[cases_pb2.SubmitCaseRequest],
                  requests: Sequence[cases_pb2.SubmitCaseRequest], concurrency: int, channels: int,
                  rounds: int = 1, token: str = "", certs: Path | None = None) -> dict[str, RunStats]:
    """Warm up every target (label → address), then time ``requests`` against each.

    ``token``: the clerk's login token, sent with every call to both targets (the raw server
    ignores it; the node checks it, as it does every clerk's call).

    The requests are cut into ``rounds`` slices and the targets take turns slice by
    slice (node, raw, node, raw …), so a change in the machine's load during the run
    (other processes on a shared machine) falls on both sides alike. Each side's rate
    is its answered calls over the wall time of its own slices.
    """
    chans = {label: [aio_channel(address, certs, CHANNEL_OPTIONS) for _ in range(channels)]
             for label, address in targets.items()}
    try:
        for label, chs in chans.items():
            for ch in chs:
                try:
                    await asyncio.wait_for(ch.channel_ready(), 10)
                except TimeoutError:
                    raise BenchError(f"{label}: no connection to {targets[label]} within 10 s") from None
        stubs = {label: [cases_pb2_grpc.CaseServiceStub(ch) for ch in chs] for label, chs in chans.items()}
        metadata = (("authorization", f"Bearer {token}"),) if token else None
        if warmup:
            for label in targets:
                await _drive(stubs[label], warmup, concurrency, f"{label} warm-up", metadata)
        rounds = max(1, min(rounds, len(requests)))
        bounds = [len(requests) * r // rounds for r in range(rounds + 1)]
        seconds = {label: 0.0 for label in targets}
        latencies: dict[str, list[float]] = {label: [] for label in targets}
        for r in range(rounds):
            chunk = requests[bounds[r]:bounds[r + 1]]
            for label in targets:
                took, lat = await _drive(stubs[label], chunk, concurrency, label, metadata)
                seconds[label] += took
                latencies[label] += lat
    finally:
        for chs in chans.values():
            for ch in chs:
                await ch.close()
    return {label: _stats(seconds[label], latencies[label]) for label in targets}


# --- the result ---


@dataclass(frozen=True)
class IntakeBenchResult:
    cases: int
    concurrency: int
    warmup: int
    channels: int
    rounds: int
    node: RunStats
    raw: RunStats
    ratio: float  # node.rate / raw.rate
    target: float
    passed: bool
    node_cases_stored: int  # counted in the node's store after the run (warm-up included)
    raw_rows_stored: int
    data_dir: str  # where the node's and the raw server's files are ("" once removed)
    machine: dict[str, Any]
    tls: bool = True  # mutual TLS to the node and to the raw server

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        verdict = "met" if self.passed else "NOT met"
        return "\n".join([
            (f"intake bench: {self.cases} cases, {self.concurrency} concurrent calls, "
             f"{self.warmup} warm-up calls each, {self.channels} channel(s), {self.rounds} alternating round(s); "
             f"{'mutual TLS' if self.tls else 'plaintext'} to both; {describe_machine(self.machine)}"),
            (f"  node : {self.node.rate:8.1f} cases/s   p50 {self.node.p50_ms:6.2f} ms   "
             f"p99 {self.node.p99_ms:6.2f} ms   ({self.node.seconds:.2f} s)"),
            (f"  raw  : {self.raw.rate:8.1f} calls/s   p50 {self.raw.p50_ms:6.2f} ms   "
             f"p99 {self.raw.p99_ms:6.2f} ms   ({self.raw.seconds:.2f} s)"),
            f"  ratio: {self.ratio:.2f} of the raw limit; target ≥ {self.target:.2f}: {verdict}",
        ])


def machine_facts(directory: Path) -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    return {
        "cores": usable,
        "cpu_count": os.cpu_count() or 0,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": SQLITE_VERSION,
        "grpcio": grpc.__version__,
        "directory": str(directory),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else [],
    }


def describe_machine(facts: dict[str, Any]) -> str:
    """``machine_facts`` in one phrase, for the first line of a bench's report."""
    load = ", ".join(map(str, facts["load_average"])) or "?"
    return (f"{facts['cores']} cores (load {load}), Python {facts['python']}, SQLite {facts['sqlite']}, "
            f"grpcio {facts['grpcio']}")


def count_cases(data_dir: Path) -> int:
    """Cases in a (stopped) node's store."""
    store = Store.open(data_dir)
    try:
        return store.count_cases()
    finally:
        store.close()


def run_intake_bench(cases: int = 3000, concurrency: int = 16, *, warmup: int = 100, channels: int = 1,
                     rounds: int = 3, seed: int = 20260310, work_dir: Path | None = None,
                     tls: bool = True) -> IntakeBenchResult:
    """Measure the node and the raw limit; see the module docstring.

    ``work_dir``: where to keep the node's (``node/``) and the raw server's (``raw/``)
    files; they are kept afterwards and reported as ``data_dir``. By default a temporary
    directory, removed at the end.
    """
    if cases < 1 or concurrency < 1 or channels < 1 or rounds < 1 or warmup < 0:
        raise ValueError("cases, concurrency, channels and rounds must be at least 1, warmup at least 0")
    keep = work_dir is not None
    base = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="govnet-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    node_dir, raw_dir = base / "node", base / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    raw_db = raw_dir / "raw.db"
    facts = machine_facts(base)
    try:
        catalog = load_catalog_file(sample_catalog_path())
        rng = random.Random(seed)
        tag = uuid.uuid4().hex[:8]
        items = receivable_items(catalog)
        # The same applications go to both servers (the raw one does not read them).
        warm = make_requests(warmup, items, rng, f"bench-{tag}-warm")
        timed = make_requests(cases, items, rng, f"bench-{tag}")

        # With TLS, both servers require a client certificate and the bench presents one (as the CLI does).
        pki = city_pki(base / "pki", "371100") if tls else None
        security: dict[str, Any] = {"ca": pki.ca} if pki else {"tls": {"plaintext": True}}
        # The bench measures what the node can take, so its rate limits (which keep one noisy client
        # from slowing the others) are off: the one client here is the load on purpose.
        init_node(node_dir, NODE_ID, NODE_LEVEL.value, parent="127.0.0.1:1",  # the parent is never called
                  rate=NO_RATE_LIMITS, **security)
        raw_tls = enrol_node(raw_dir, NODE_ID, NODE_LEVEL.value, pki.ca).parent if pki else None
        certs = pki.client if pki else None
        node = spawn_node(node_dir)
        try:
            token = tool_token(node_dir, node.address, certs=certs)  # the bench's own clerk, signed in like every clerk
            with GovnetClient(node.address, timeout=60, token=token, certs=certs) as client:
                client.put_catalog(catalog)
            raw = spawn_raw(raw_db, tls=raw_tls)
            try:
                stats = asyncio.run(measure({"node": node.address, "raw": raw.address}, warm, timed,
                                            concurrency, channels, rounds, token, certs))
            finally:
                raw.stop()
        finally:
            node.stop()
        stored = count_cases(node_dir)
        raw_rows = count_rows(raw_db)
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)

    node_stats, raw_stats = stats["node"], stats["raw"]
    ratio = node_stats.rate / raw_stats.rate if raw_stats.rate else 0.0
    return IntakeBenchResult(
        cases=cases,
        concurrency=concurrency,
        warmup=warmup,
        channels=channels,
        rounds=rounds,
        node=node_stats,
        raw=raw_stats,
        ratio=ratio,
        target=TARGET_RATIO,
        passed=ratio >= TARGET_RATIO,
        node_cases_stored=stored,
        raw_rows_stored=raw_rows,
        data_dir=str(base) if keep else "",
        machine=facts,
        tls=tls,
    )
