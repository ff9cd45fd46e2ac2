"""Shared fixtures: real nodes on loopback ports with real SQLite files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from node.catalog import load_catalog_file, sample_catalog_path
from node.client import GovnetClient
from node.clock import ManualClock
from node.calendar import CHINA_TZ
from node.testing import BackgroundLoop, InProcessNode, init_node, start_in_process

# A Tuesday morning in Beijing, far from holidays, so deadlines are easy to check by hand.
MORNING = datetime(2026, 3, 10, 9, 0, tzinfo=CHINA_TZ)


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


class NodeFactory:
    def __init__(self, loop: BackgroundLoop, tmp_path: Path, clock: ManualClock) -> None:
        self.loop, self.tmp_path, self.clock = loop, tmp_path, clock
        self.nodes: list[InProcessNode] = []
        self.clients: list[GovnetClient] = []

    def __call__(self, node_id: str = "371102", level: str = "county", parent: str | None = "127.0.0.1:1",
                 catalog: bool = True, **options) -> tuple[InProcessNode, GovnetClient]:
        data_dir = init_node(self.tmp_path / node_id, node_id, level, None if level == "city" else parent, **options)
        node = start_in_process(self.loop, data_dir, self.clock)
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
