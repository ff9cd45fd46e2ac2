"""``govnet bench rollup``: how long a change at the bottom of the tree takes to show at the top.

A chain of four real ``govnet node serve`` processes — city 371100, county 371102,
township 371102001, village 371102001201 — each with its own store, every link up, with
the given ``sync.flush_interval_s`` and ``statistics.flush_interval_s``. Once the city's
coverage lists all four nodes, ``changes`` changes are made one at a time, taking turns:
an application taken at the village by its agent (an item the village decides), an
application taken at the township window, and the township's acceptance of that one.
Each adds exactly one to received + accepted somewhere below the city. The delay of a
change runs from the moment its RPC returned until the city's ``Stats`` answer (polled
every 20 ms over gRPC) shows the new total. A change takes: the node's next statistics
flush, then one exchange per hop up (each relay forwards at once and wakes its link).

Printed: min / median / max delay beside the configured intervals. No target is
asserted; the issue asks for "a few seconds" with every link up and default settings.
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.rpc.client import GovnetClient
from govnet.ops.applicants import person_name, phone, resident_id
from govnet.ops.bench_intake import BenchError, describe_machine, machine_facts
from govnet.ops.bench_sync import publish_catalog
from govnet.ops.pki import city_pki
from govnet.ops.processes import NodeProcess, free_port, init_node, spawn_node, tool_token

CHAIN = (("371100", "city"), ("371102", "county"), ("371102001", "township"), ("371102001201", "village"))
VILLAGE_ITEM = "MZ-0005"  # decided at the village; an agent point takes it itself
TOWNSHIP_ITEM = "SJ-0002"  # decided at the township window, immediate
AGENT = "代办员 李四"
CLERK = "窗口 王芳"
POLL_S = 0.02
READY_TIMEOUT = 60.0  # the whole chain up and reported at the city
CHANGE_TIMEOUT = 60.0  # one change at the city, at the very most


def _work(client: GovnetClient) -> int:
    c = client.stats().total.counters
    return c.received + c.accepted


def _await_city(city: GovnetClient, expected: int, timeout: float) -> float:
    """Poll the city until received + accepted reaches ``expected``; the instant it did."""
    deadline = time.monotonic() + timeout
    while True:
        if _work(city) >= expected:
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise BenchError(f"the city did not show the change within {timeout:.0f} s "
                             f"(received + accepted {_work(city)}, expected {expected})")
        time.sleep(POLL_S)


@dataclass(frozen=True)
class RollupBenchResult:
    changes: int
    flush_interval_s: float  # sync.flush_interval_s of every node
    stats_interval_s: float  # statistics.flush_interval_s of every node
    delays_s: tuple[float, ...]  # per change, in the order made
    where: tuple[str, ...]  # the node each change was made at
    min_s: float
    median_s: float
    max_s: float
    city_total: int  # received + accepted at the city at the end
    nodes_reported: int
    startup_s: float  # processes started → the city's coverage lists all four
    data_dir: str
    machine: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        chain = " → ".join(n for n, _ in reversed(CHAIN))
        return "\n".join([
            f"rollup bench: {self.changes} changes over the chain {chain}; {describe_machine(self.machine)}",
            (f"  intervals: sync.flush_interval_s {self.flush_interval_s} s, statistics.flush_interval_s "
            f"{self.stats_interval_s} s"),
            (f"  delay until the city's totals show a change: min {self.min_s:.2f} s, median {self.median_s:.2f} s, "
            f"max {self.max_s:.2f} s"),
            (f"  city coverage: {self.nodes_reported} of {len(CHAIN)} nodes reported; chain ready after "
            f"{self.startup_s:.1f} s"),
        ])


def run_rollup_bench(changes: int = 20, flush_interval_s: float = 0.5, stats_interval_s: float = 0.5, *,
                     seed: int = 20261121, work_dir: Path | None = None) -> RollupBenchResult:
    """Measure; see the module docstring. ``work_dir``: keep the nodes' files there."""
    if changes < 1 or flush_interval_s <= 0 or stats_interval_s <= 0:
        raise ValueError("changes must be at least 1 and the intervals above 0")
    keep = work_dir is not None
    base = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="govnet-bench-rollup-"))
    base.mkdir(parents=True, exist_ok=True)
    facts = machine_facts(base)
    rng = random.Random(seed)
    catalog = load_catalog_file(sample_catalog_path())
    options = {"sync": {"flush_interval_s": flush_interval_s},
               "statistics": {"flush_interval_s": stats_interval_s}}
    nodes: list[NodeProcess] = []
    try:
        parent = None
        dirs = []
        pki = city_pki(base / "pki", CHAIN[0][0])  # the chain speaks mutual TLS, as in production
        for node_id, level in CHAIN:
            listen = f"127.0.0.1:{free_port()}"
            d = init_node(base / level, node_id, level, parent, listen=listen, ca=pki.ca,
                          **dict[str, Any](options))  # sections of the configuration, by name
            publish_catalog(d, catalog)  # version 1 everywhere: nothing to send down at start
            dirs.append(d)
            parent = listen
        started = time.perf_counter()
        for d in dirs:
            nodes.append(spawn_node(d))
        city_node, township_node, village_node = nodes[0], nodes[2], nodes[3]
        city_token, township_token, village_token = (tool_token(n.data_dir, n.address, certs=pki.client)
                                                     for n in (city_node, township_node, village_node))
        with GovnetClient(city_node.address, token=city_token, certs=pki.client) as city, \
                GovnetClient(township_node.address, token=township_token, certs=pki.client) as township, \
                GovnetClient(village_node.address, token=village_token, certs=pki.client) as village:
            deadline = time.monotonic() + READY_TIMEOUT
            while city.stats().coverage.nodes_reported < len(CHAIN):
                if time.monotonic() > deadline:
                    raise BenchError(f"the city did not hear from the whole chain within {READY_TIMEOUT:.0f} s: "
                                     f"{city.stats().coverage}")
                time.sleep(POLL_S)
            startup = time.perf_counter() - started
            expected = _work(city)
            delays: list[float] = []
            where: list[str] = []
            waiting_at_township: list[str] = []
            for i in range(changes):
                person = {"name": person_name(rng), "id_number": resident_id(rng), "phone": phone(rng)}
                turn = i % 3
                if turn == 0:
                    village.submit(idempotency_key=uuid.uuid4().hex, item_code=VILLAGE_ITEM, agent=AGENT, actor=AGENT,
                                   materials=list(catalog.get(VILLAGE_ITEM).core_materials), **person)  # type: ignore[union-attr]
                    where.append("village")
                elif turn == 1 or not waiting_at_township:
                    done = township.submit(idempotency_key=uuid.uuid4().hex, item_code=TOWNSHIP_ITEM, actor=CLERK,
                                           materials=[m.name for m in catalog.get(TOWNSHIP_ITEM).materials],  # type: ignore[union-attr]
                                           **person)
                    waiting_at_township.append(done.case.receipt)
                    where.append("township")
                else:
                    township.act(waiting_at_township.pop(), "accept", actor=CLERK)
                    where.append("township")
                made = time.perf_counter()
                expected += 1
                delays.append(_await_city(city, expected, CHANGE_TIMEOUT) - made)
            final = city.stats()
    finally:
        for node in reversed(nodes):  # the village first: children before parents
            node.stop()
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    c = final.total.counters
    return RollupBenchResult(
        changes=changes, flush_interval_s=flush_interval_s, stats_interval_s=stats_interval_s,
        delays_s=tuple(delays), where=tuple(where), min_s=min(delays), median_s=statistics.median(delays),
        max_s=max(delays), city_total=c.received + c.accepted, nodes_reported=final.coverage.nodes_reported,
        startup_s=startup, data_dir=str(base) if keep else "", machine=facts,
    )
