"""``govnet bench console``: the server time of the console's busiest pages at a city holding many cases.

A city node (its own store, enrolled with a bench CA like every node) is filled through its own
desk while no process runs: ``cases`` applications for the items the city decides, every other
one accepted (so it has a due date and sorts into the work queue), and counted into the
statistics as the running ledger would have. Then the node is started as a real
``govnet node serve`` process with its console on HTTPS, a clerk with supervision signs in
through the login form, and each page is fetched ``rounds`` times: the intake page (the
catalog), the work queue (the most urgent cases of those the city owns) and the supervision
dashboard (totals of the subtree, children, open alarms).

What is measured is the server's own time for each page, as the console reports it in its
``Server-Timing`` header (from the request reaching the app to the page rendered): TLS and the
loopback are left out. Printed: p50 / p95 / max per page and each page's size; the issue's
target is under 300 ms at the 95th percentile with 100,000 cases.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from govnet.federation.tree import Level
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.ops.bench_intake import BenchError, describe_machine, machine_facts
from govnet.ops.bench_sync import applications, publish_catalog
from govnet.ops.pki import city_pki
from govnet.ops.processes import AccountSpec, add_accounts, free_port, init_node, spawn_node

CITY = "371100"
PAGES = ("/intake", "/queue", "/dashboard")
TARGET_MS = 300.0
FILL_WORKERS = 32
CLERK = "bench-console"
PASSWORD = "bench-console-password"  # a throw-away node in a temporary directory


@dataclass(frozen=True)
class PageTiming:
    path: str
    p50_ms: float
    p95_ms: float
    max_ms: float
    bytes: int


@dataclass(frozen=True)
class ConsoleBenchResult:
    cases: int
    rounds: int
    fill_s: float
    pages: tuple[PageTiming, ...]
    machine: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        lines = [f"console pages at a city holding {self.cases:,} cases (filled in {self.fill_s:.0f} s), "
                 f"{self.rounds} requests each; server time (Server-Timing), TLS and loopback not included",
                 f"machine: {describe_machine(self.machine)}", ""]
        for p in self.pages:
            verdict = "ok" if p.p95_ms < TARGET_MS else f"OVER the {TARGET_MS:.0f} ms target"
            lines.append(f"  {p.path:11} p50 {p.p50_ms:7.1f} ms   p95 {p.p95_ms:7.1f} ms   max {p.max_ms:7.1f} ms   "
                         f"{p.bytes / 1024:6.1f} KB   {verdict}")
        return "\n".join(lines)


def fill_city(data_dir: Path, cases: int, seed: int) -> float:
    """``cases`` applications through the city's own desk, every other one accepted; then counted."""
    from govnet.node.domain.clock import SystemClock
    from govnet.node.domain.lifecycle import ActParams
    from govnet.node.process.build import build_node
    from govnet.node.process.config import load_config

    catalog = load_catalog_file(sample_catalog_path())
    items = [i for i in catalog.items if i.authority_level is Level.CITY]
    commands = [replace(c, agent="", actor="窗口 王敏")
                for c in applications(cases, items, random.Random(seed), f"console-{seed}")]
    node = build_node(load_config(data_dir), SystemClock(), None, serve=False)
    node.store.without_fsync()  # the fill is the setup, not what is measured: no wait for the disk
    started = time.perf_counter()

    async def fill() -> None:
        room = asyncio.Semaphore(FILL_WORKERS)

        async def one(i: int) -> None:
            async with room:
                done = await node.desk.submit(commands[i])
                if i % 2 == 0:
                    await node.desk.act(done.record.state.receipt, "accept", ActParams(actor="窗口 王敏"), None)

        await asyncio.gather(*(one(i) for i in range(len(commands))))

    try:
        asyncio.run(fill())
        for _ in range(cases):
            if not node.ledger.pending():
                break
            node.ledger.flush_now(SystemClock().now())
    finally:
        node.store.close()
    return time.perf_counter() - started


def _server_ms(response: httpx.Response) -> float:
    found = re.search(r"app;dur=([\d.]+)", response.headers.get("server-timing", ""))
    if response.status_code != 200 or found is None:
        raise BenchError(f"{response.request.url.path}: answered {response.status_code} without a server time")
    return float(found.group(1))


def sign_in(client: httpx.Client) -> None:
    form = client.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    if nonce is None:
        raise BenchError("the login page has no form")
    done = client.post("/login", data={"login": CLERK, "password": PASSWORD, "nonce": nonce.group(1), "next": "/"})
    if done.status_code != 303 or "govnet_session" not in client.cookies:
        raise BenchError(f"signing in to the console failed: {done.status_code}")


def run_console_bench(cases: int = 100_000, rounds: int = 40, seed: int = 14) -> ConsoleBenchResult:
    base = Path(tempfile.mkdtemp(prefix="govnet-bench-console-"))
    try:
        pki = city_pki(base / "pki", CITY)
        console = f"127.0.0.1:{free_port()}"
        data = init_node(base / "city", CITY, "city", ca=pki.ca, console={"listen": console})
        publish_catalog(data, load_catalog_file(sample_catalog_path()))
        add_accounts(data, [AccountSpec(CLERK, ("window_clerk", "chief_representative", "supervisor"), PASSWORD,
                                        name="窗口 王敏", departments=("*",))])
        fill_s = fill_city(data, cases, seed)
        proc = spawn_node(data, timeout=60)
        try:
            timings = []
            with httpx.Client(base_url=f"https://{console}", verify=False, timeout=30) as client:
                sign_in(client)
                for path in PAGES:
                    client.get(path)  # the first request warms the caches (the catalog, templates)
                    samples, size = [], 0
                    for _ in range(rounds):
                        got = client.get(path)
                        samples.append(_server_ms(got))
                        size = max(size, len(got.content))
                    samples.sort()
                    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
                    timings.append(PageTiming(path, round(statistics.median(samples), 1), round(p95, 1),
                                              round(samples[-1], 1), size))
        finally:
            proc.stop(30)  # a throw-away node: SIGTERM, then SIGKILL if it is still busy
        return ConsoleBenchResult(cases, rounds, round(fill_s, 1), tuple(timings), machine_facts(base))
    finally:
        shutil.rmtree(base, ignore_errors=True)
