"""The statistics ledger over real stores: counted once across restarts, kept by version,
refused when a node reports about another. A village and its township in one process."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest

from govnet.node.app.replication import Unauthorized
from govnet.node.app.statistics_ledger import StatsLedger, own_rows
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.domain.statistics import COUNTERS
from govnet.node.rpc.client import GovnetClient
from govnet.node.store import statistics as stat_rows
from govnet.ops.processes import init_node
from govnet.ops.simulation.harness import Federation, _calendar, applicant
from govnet.sync.envelope import Envelope

from support.accounts import spawn_node
from support.helpers import store_of

CATALOG = load_catalog_file(sample_catalog_path())
TOWN, VILLAGE = "371102001", "371102001201"


def received_at(path: Path, node: str) -> int:
    """Cases received at ``node`` by the statistics rows the store at ``path`` holds for it
    (read through the store: the node may be killed and restarted around these counts)."""
    with store_of(path.parent) as store, store.reading() as s:
        return sum(row.counters.get("received", 0) for row in stat_rows.rows_of(s, node))


async def federation(tmp_path: Path) -> Federation:
    fed = Federation(tmp_path, ["371100", "371102", TOWN, VILLAGE], seed=1, durable=False)
    fed.publish("371100", CATALOG)
    await fed.settle()
    return fed


def submit(fed: Federation, i: int) -> str:
    return fed.submit(VILLAGE, "MZ-0005", f"k{i}", **applicant(i), agent="代办员").record.state.receipt


def test_a_restarted_ledger_counts_nothing_twice(tmp_path: Path) -> None:
    async def run() -> None:
        fed = await federation(tmp_path)
        try:
            store = fed.core(VILLAGE).store
            for i in range(3):
                submit(fed, i)
            assert StatsLedger(store, _calendar()).flush_now(fed.clock.now())
            # A new ledger is what a restarted node has: its cursor comes from the store.
            again = StatsLedger(store, _calendar())
            assert not again.pending()
            assert not again.flush_now(fed.clock.now())
            assert received_at(store.path, VILLAGE) == 3
            submit(fed, 3)
            assert again.pending() and again.flush_now(fed.clock.now())
            assert received_at(store.path, VILLAGE) == 4
            versions = sorted(r.version for r in own_rows(store))
            assert versions == [(1 << 32) + 2]  # one bucket, rewritten by the second flush: incarnation 1, flush 2
            await fed.settle()
            assert received_at(fed.core("371100").store.path, VILLAGE) == 4
            assert received_at(fed.core(TOWN).store.path, VILLAGE) == 4  # every ancestor keeps it
        finally:
            fed.close()

    asyncio.run(run())


def stats_envelope(origin: str, node: str, version: int, received: int, seq: int) -> Envelope:
    row = {"node": node, "day": "2026-03-10", "item_code": "MZ-0005", "department": "民政局",
           **dict.fromkeys(COUNTERS, 0), "received": received, "version": version, "computed_at": ""}
    payload = {"report": {"node": origin, "version": version, "as_of": "2026-03-10T01:00:00+00:00", "children": []},
               "rows": [row]}
    return Envelope(seq, origin, 1, seq, "stats", "371100", f"stats:{origin}", 0,
                    json.dumps(payload).encode(), "2026-03-10T01:00:00+00:00")


def test_the_highest_version_wins_and_strangers_are_refused(tmp_path: Path) -> None:
    async def run() -> None:
        fed = await federation(tmp_path)
        try:
            core = fed.core(TOWN)
            now = fed.clock.now()
            for env in (stats_envelope(VILLAGE, VILLAGE, 5, 7, 1), stats_envelope(VILLAGE, VILLAGE, 3, 2, 2),
                        stats_envelope(VILLAGE, VILLAGE, 5, 7, 1)):
                with core.store.transaction() as s:
                    core.replicator.process(s, env, now)
            assert received_at(core.store.path, VILLAGE) == 7
            # A node reports only its own counts: a row about a sibling is refused by the authority
            # checks (federation.authority) before the ledger sees it, and goes to quarantine.
            with pytest.raises(Unauthorized, match="names node 371102001202, which is not in its subtree"), \
                    core.store.transaction() as s:
                core.replicator.process(s, stats_envelope(VILLAGE, "371102001202", 9, 1, 3), now)
            assert received_at(core.store.path, "371102001202") == 0
        finally:
            fed.close()

    asyncio.run(run())


def test_a_node_killed_while_counting_counts_every_case_once_after_restart(tmp_path: Path) -> None:
    """A real process, SIGKILLed while cases arrive and its flusher runs every 20 ms."""
    data_dir = init_node(tmp_path / "county", "371102", "county", parent="127.0.0.1:1",
                         statistics={"flush_interval_s": 0.02})
    db = data_dir / "govnet.db"
    node = spawn_node(data_dir)

    def submit_many(client: GovnetClient, first: int, n: int) -> None:
        for i in range(first, first + n):
            client.submit(idempotency_key=uuid.uuid4().hex, item_code="SJ-0001", materials=list(
                CATALOG.get("SJ-0001").core_materials), actor="窗口", **applicant(i))  # type: ignore[union-attr]

    try:
        with GovnetClient(node.address) as client:
            client.put_catalog(CATALOG)
            submit_many(client, 0, 15)
        node.kill()  # flushes may or may not have run: whatever was committed is durable
        node = spawn_node(data_dir)
        with GovnetClient(node.address) as client:
            submit_many(client, 15, 5)
        deadline = time.monotonic() + 15
        while received_at(db, "371102") < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # more flushes: nothing may be added twice
        assert received_at(db, "371102") == 20
    finally:
        if node.alive():
            node.terminate()
