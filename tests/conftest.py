"""Shared fixtures: real nodes on loopback ports with real SQLite files."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.domain.clock import ManualClock
from govnet.node.rpc.client import GovnetClient
from govnet.ops.processes import init_node

from support.helpers import MORNING
from support.inprocess import BackgroundLoop, InProcessNode, start_in_process


@pytest.fixture(scope="session")
def loop() -> Iterator[BackgroundLoop]:
    bg = BackgroundLoop()
    yield bg
    bg.close()


@pytest.fixture(scope="session")
def sample_catalog():
    return load_catalog_file(sample_catalog_path())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MORNING)


def _wait_for_first_report(data_dir: Path, node_id: str, limit_s: float = 10.0) -> None:
    """A node records (and sends up) its first statistics report right after it starts, a
    write of its own; tests that compare the store before and after a call start after it."""
    deadline = time.monotonic() + limit_s
    while True:
        # The report is the node's own background write: no call says it has landed in the file.
        conn = sqlite3.connect(f"file:{data_dir / 'govnet.db'}?mode=ro", uri=True, timeout=10)
        try:
            if conn.execute("SELECT 1 FROM stat_report WHERE node = ?", (node_id,)).fetchone():
                return
        finally:
            conn.close()
        if time.monotonic() > deadline:
            raise AssertionError(f"node {node_id} made no statistics report within {limit_s:.0f} s of starting")
        time.sleep(0.02)


class NodeFactory:
    def __init__(self, loop: BackgroundLoop, tmp_path: Path, clock: ManualClock) -> None:
        self.loop, self.tmp_path, self.clock = loop, tmp_path, clock
        self.nodes: list[InProcessNode] = []
        self.clients: list[GovnetClient] = []

    def __call__(self, node_id: str = "371102", level: str = "county", parent: str | None = "127.0.0.1:1",
                 catalog: bool = True, **options) -> tuple[InProcessNode, GovnetClient]:
        data_dir = init_node(self.tmp_path / node_id, node_id, level, None if level == "city" else parent, **options)
        node = start_in_process(self.loop, data_dir, self.clock)
        _wait_for_first_report(data_dir, node_id)
        client = GovnetClient(node.address)
        self.nodes.append(node)
        self.clients.append(client)
        if catalog:
            client.put_catalog(load_catalog_file(sample_catalog_path()))
        return node, client

    def close(self) -> None:
        for c in self.clients:
            c.close()
        for n in self.nodes:
            n.stop()


@pytest.fixture
def make_node(loop: BackgroundLoop, tmp_path: Path, clock: ManualClock) -> Iterator[NodeFactory]:
    factory = NodeFactory(loop, tmp_path, clock)
    yield factory
    factory.close()
