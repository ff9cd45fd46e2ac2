"""Small shared helpers for the tests: IDs, applications, store snapshots, waiting for a
condition and running the ``govnet`` command line.

Nothing here fakes a component: IDs get the product's own check character, store
snapshots read the node's real SQLite file with plain ``sqlite3``, the submit
helper goes through the real typed client and ``govnet`` runs the real CLI process.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from govnet.federation.tree import level_of, parent_id
from govnet.node.domain.applicant import resident_id_check_char
from govnet.node.domain.calendar import CHINA_TZ
from govnet.node.domain.catalog import ServiceItem, load_catalog_file, sample_catalog_path
from govnet.node.process.tls import load_node_tls, node_name
from govnet.node.rpc.client import GovnetClient
from govnet.node.store.engine import Store
from govnet.ops.pki import enrol_node
from govnet.ops.processes import CA_ENV, govnet_command
from govnet.ops.simulation.harness import every_case  # noqa: F401  (the tests read cases through it)
from govnet.sync.cursor import Cursor
from govnet.sync.envelope import Envelope
from govnet.sync.transport.base import Transport
from govnet.sync.transport.grpc import GrpcTransport
from govnet.v1 import cases_pb2

SAMPLE = load_catalog_file(sample_catalog_path())

def resident_id(first17: str) -> str:
    """A valid 18-character resident ID: ``first17`` plus the check character the product
    computes (tests pin that computation against known IDs in tests/unit/test_applicant.py)."""
    assert len(first17) == 17 and first17.isdigit(), first17
    return first17 + resident_id_check_char(first17)


def wrong_check(id_number: str) -> str:
    """The same ID with a check character that does not match."""
    good = id_number[-1]
    bad = "0" if good != "0" else "1"
    return id_number[:-1] + bad


NAME = "张三"
ID_NUMBER = resident_id("37110219850312201")  # Rizhao Donggang district, born 1985-03-12
PHONE = "13812345678"
OTHER_NAME = "李梅"
OTHER_ID = resident_id("37110219900708342")
CLERK = "窗口-王芳"
# A Tuesday morning in Beijing, far from holidays, so deadlines are easy to check by hand
# (the clock of the in-process nodes of conftest.py).
MORNING = datetime(2026, 3, 10, 9, 0, tzinfo=CHINA_TZ)
CHIEF = "首席代表-赵强"


def item(code: str) -> ServiceItem:
    found = SAMPLE.get(code)
    assert found is not None, code
    return found


def all_materials(code: str) -> list[str]:
    return [m.name for m in item(code).materials]


def core_materials(code: str) -> list[str]:
    return list(item(code).core_materials)


def submit(
    client: GovnetClient,
    code: str,
    materials: Sequence[str] | None = None,
    *,
    key: str | None = None,
    name: str = NAME,
    id_number: str = ID_NUMBER,
    phone: str = PHONE,
    agent: str = "",
    actor: str = CLERK,
    note: str = "",
) -> cases_pb2.SubmitCaseResponse:
    """Submit an application for ``code`` (default: every material of the item)."""
    return client.submit(
        idempotency_key=uuid.uuid4().hex if key is None else key,
        item_code=code,
        name=name,
        id_number=id_number,
        phone=phone,
        materials=all_materials(code) if materials is None else list(materials),
        agent=agent,
        note=note,
        actor=actor,
    )


# The up-link driver records its attempts to reach the parent on its own schedule; that
# bookkeeping changes whatever a test's call does, so it is not part of "the store unchanged".
# The link driver's own bookkeeping, and the outbox it drains whenever the parent acknowledges:
# a message a call queues still shows, in ``counter`` (every envelope takes the node's next
# origin sequence and its link's next position).
BACKGROUND_TABLES = {"link_state", "outbox"}


def _statistics_lag(conn: sqlite3.Connection) -> str | None:
    """What the node's statistics ledger has not counted yet (None once it has counted every
    event and complaint it holds)."""
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "stat_report" not in tables:
        return None  # a store from before statistics
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    (top,) = conn.execute("SELECT coalesce(max(id), 0) FROM case_event").fetchone()
    (about,) = conn.execute("SELECT count(*) FROM complaint WHERE about_node = ?", (meta["node_id"],)).fetchone()
    counted, complaints = int(meta.get("stats_event_id", 0)), int(meta.get("stats_complaints", 0))
    if counted != top or complaints != about:
        return f"counted events up to {counted} of {top}, complaints {complaints} of {about}"
    # The audit trail sends the chain's head up on the same rhythm (node.app.audit): a node with a
    # parent has caught up once the head it last sent is its chain's length.
    if "audit_head" in tables and parent_id(meta["node_id"]):
        row = conn.execute("SELECT count, sent_count FROM audit_head WHERE id = 1").fetchone()
        if row is not None and row[0] != row[1]:
            return f"audit chain head sent up to {row[1]} of {row[0]} events"
    return None


def statistics_settled(data_dir: Path, settle_s: float = 10.0) -> None:
    """Wait (at most ``settle_s``, then fail the test saying what is left) until the node's
    statistics ledger has counted everything (and its audit trail has sent its head up).

    The ledger counts new events in the background, writes of the node's own (its rows, and
    a report in the outbox): a test that compares the store before and after a call, or
    with what the node reports, reads it once the ledger has caught up. This reads the
    ledger's own bookkeeping in the store file (its position in ``meta``): no call answers it."""
    deadline = time.monotonic() + settle_s
    while True:
        conn = sqlite3.connect(f"file:{data_dir / 'govnet.db'}?mode=ro", uri=True)
        try:
            lag = _statistics_lag(conn)
        finally:
            conn.close()
        if lag is None:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the statistics ledger of {data_dir} did not catch up within {settle_s:g} s: {lag}")
        time.sleep(0.05)


def store_snapshot(data_dir: Path, settle_s: float = 10.0) -> dict[str, tuple[int, str]]:
    """Every table of the node's store but the link driver's own bookkeeping and the outbox it drains:
    (row count, sha256 over all its rows), once the statistics ledger has caught up, so that
    a comparison before and after a call sees only what the call did. It reads the file with
    plain sqlite3 on purpose: "nothing was written" is a claim about every table, which no
    public read covers."""
    statistics_settled(data_dir, settle_s)
    conn = sqlite3.connect(f"file:{data_dir / 'govnet.db'}?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        out: dict[str, tuple[int, str]] = {}
        for table in tables:
            if table in BACKGROUND_TABLES:
                continue
            rows = sorted(repr(r) for r in conn.execute(f'SELECT * FROM "{table}"'))
            digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()
            out[table] = (len(rows), digest)
        return out
    finally:
        conn.close()


@contextmanager
def store_of(data_dir: Path) -> Iterator[Store]:
    """A node's store, opened with the product's own engine beside its running process (WAL
    lets both read) or after it stopped: a test reads through the store's reads and
    repository functions what no call answers (outboxes, inboxes, a stopped node's cases)."""
    store = Store.open(data_dir)
    try:
        yield store
    finally:
        store.close()


def wait_for(check: Callable[[], bool], seconds: float, what: Callable[[], str], interval: float = 0.05) -> float:
    """Poll ``check`` until it is true, for ``seconds`` at most (then fail the test saying
    ``what()``); the seconds it took."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds:g} s: {what()}")
        time.sleep(interval)


def govnet(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the ``govnet`` command line in its own process, as a user would; never raises on a
    non-zero exit (the test reads ``returncode``)."""
    return subprocess.run([*govnet_command(), *args], capture_output=True, text=True, timeout=timeout, check=False)


async def push_one(transport: Transport, sender: str, incarnation: int, envelopes: Sequence[Envelope],
                   settled_below: int = 0) -> Cursor:
    """One batch pushed on a stream of its own (how a test pushes by hand); returns the
    parent's acknowledgement."""
    stream = transport.open_push(sender, incarnation, settled_below)
    try:
        await stream.send(envelopes)
        return await stream.acknowledgement()
    finally:
        await stream.close()


def uplink_as(node_id: str, parent_address: str, folder: Path, ca: Path | None = None, **options: Any) -> GrpcTransport:
    """The gRPC up-link node ``node_id`` would open to its parent at ``parent_address``, with its
    own certificate (issued by ``ca``, default the session's city CA, into ``folder`` once).
    Make it inside the event loop that uses it."""
    if not (folder / "tls" / "node.crt").exists():
        enrol_node(folder, node_id, level_of(node_id).value, ca or Path(os.environ[CA_ENV]))
    tls = load_node_tls(folder, "tls/ca.crt", "tls/node.crt", "tls/node.key", node_id)
    parent = parent_id(node_id)
    return GrpcTransport(parent_address, credentials=tls.channel_credentials(),
                         server_name=node_name(parent) if parent else None, **options)
