"""Shared fixtures: real nodes on loopback ports with real SQLite files."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.domain.clock import ManualClock
from govnet.node.rpc.client import GovnetClient, save_token
from govnet.node.store import statistics as stat_rows
from govnet.ops.pki import enrol_client, init_ca
from govnet.ops.processes import CA_ENV

from support.accounts import add_tester
from support.helpers import MORNING, store_of
from support.inprocess import BackgroundLoop, InProcessNode, start_in_process
from support.stores import init_node  # ops.processes.init_node, its fresh store made once a process

# The test files that take longest, longest first, in about the seconds each takes on an idle
# 2-core machine (in-process files: their CPU seconds; files that spawn nodes: half what
# --durations showed on a loaded machine); list the files over ~10 s, and put a new long file
# in its place here. `make test` runs `pytest -n 2 --dist loadfile --no-loadscope-reorder`:
# each worker takes whole files in this order, so the long ones start at once on both
# workers and the many short files fill in behind them, and the two finish within a short
# file of each other. (xdist's own order, most tests first, puts the one- and two-test files,
# the longest of all, at the very end, where one worker can be left running one alone.)
LONGEST_FIRST = (
    "sim/test_sync_property.py",  # ~65 (two tests, one hypothesis property of 5 examples)
    "process/test_sync_processes.py",  # ~70
    "process/test_demo.py",  # ~65 (one test)
    "process/test_cli.py",  # ~40
    "process/test_console_browser.py",  # ~30 (six tests in chromium)
    "rpc/test_bad_input.py",  # ~21
    "process/test_backup.py",  # ~20
    "process/test_config_env.py",  # ~18
    "sim/test_sync_core.py",  # ~16
    "sim/test_rollup_truth.py",  # ~16 (two tests)
    "process/test_restore_processes.py",  # ~15 (one test)
    "sim/test_restore_sync.py",  # ~10
    "rpc/test_case_types.py",  # ~9
    "rpc/test_fuzz.py",  # ~8 (one test)
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The files of ``LONGEST_FIRST`` first, in its order; every other file after them in
    collection order, and each file's tests in their own order (a stable sort by file)."""
    here = Path(__file__).parent
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def place(item: pytest.Item) -> int:
        try:
            return rank.get(item.path.relative_to(here).as_posix(), len(rank))
        except ValueError:  # a test outside tests/
            return len(rank)

    items.sort(key=place)


@pytest.fixture(scope="session", autouse=True)
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's own token file (never the user's ~/.config/govnet): clients and ``govnet``
    commands of the tests send the tokens kept there (support/accounts.py)."""
    path = tmp_path_factory.mktemp("tokens") / "tokens.json"
    before = os.environ.get("GOVNET_TOKEN_FILE")
    os.environ["GOVNET_TOKEN_FILE"] = str(path)
    yield path
    if before is None:
        os.environ.pop("GOVNET_TOKEN_FILE", None)
    else:
        os.environ["GOVNET_TOKEN_FILE"] = before


@pytest.fixture(scope="session", autouse=True)
def city_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One city PKI for the session: every node a test initialises is enrolled with its root CA
    ($GOVNET_CA_DIR, read by init_node) and every client presents its ops certificate
    ($GOVNET_CERTS, read by GovnetClient and the CLI), so nodes run with mutual TLS as in production."""
    base = tmp_path_factory.mktemp("city-pki")
    init_ca(base / "ca", "371100")
    enrol_client(base / "client", "tests", "ops", base / "ca")
    saved = {k: os.environ.get(k) for k in (CA_ENV, "GOVNET_CERTS")}
    os.environ[CA_ENV], os.environ["GOVNET_CERTS"] = str(base / "ca"), str(base / "client")
    yield base
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


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
        # The report is the node's own background write: no call says it has landed; the store's read does.
        with store_of(data_dir) as store, store.reading() as s:
            if stat_rows.report_as_of(s, node_id) is not None:
                return
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
        token = add_tester(data_dir)
        node = start_in_process(self.loop, data_dir, self.clock)
        _wait_for_first_report(data_dir, node_id)
        save_token(node.address, token)
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
