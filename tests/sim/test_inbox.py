"""The inbox: a batch is acknowledged once stored, applied afterwards, exactly once.

In-process nodes (``support.simulation.Federation``: real SQLite stores, the in-memory
transport); the township restarts with an inbox that does not apply inline, the way
a node process runs it. The SIGKILL case is in ``test_sync_processes.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from test_sync_core import CATALOG, CITY, COUNTY, TOWN, VILLAGE, case, maybe_case, run, submit

from govnet.node.app.inbox import Inbox
from govnet.node.app.links import link_reports
from govnet.ops.simulation.harness import Federation
from govnet.sync.admission import Busy


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    f = Federation(tmp_path, [CITY, COUNTY, TOWN, VILLAGE], seed=5)
    f.publish(CITY, CATALOG)
    run(f.settle())
    yield f
    f.close()


def deferred_inbox(fed: Federation, node: str, capacity: int = 1000) -> Inbox:
    """Restart ``node`` with an inbox that applies only when drained (as a node process's does)."""
    fed.core(node).store.close()
    return fed.open_node(node, apply_inline=False, inbox_capacity=capacity).inbox


def test_a_batch_is_acknowledged_when_stored_and_applied_once_when_drained(fed: Federation) -> None:
    inbox = deferred_inbox(fed, TOWN)
    receipts = [submit(fed, VILLAGE, "MZ-0001", i) for i in range(3)]  # decided by the township
    up = fed.uplink(VILLAGE)
    up.hello()
    batch = up.next_batch()
    assert len(batch) == 6  # a transfer and a summary per case

    cursor = fed.core(TOWN).children.push(VILLAGE, 1, batch)
    assert all(cursor.has(e.seq) for e in batch)
    assert inbox.depth == 6
    assert all(maybe_case(fed, TOWN, r) is None for r in receipts)  # stored, not applied yet

    # The same batch again (a lost reply, a duplicate): covered by the cursor, stored once.
    assert fed.core(TOWN).children.push(VILLAGE, 1, list(reversed(batch))) == cursor
    assert inbox.depth == 6

    assert inbox.drain() == 6
    assert inbox.depth == 0
    assert [case(fed, TOWN, r)[3] for r in receipts] == [TOWN] * 3
    # The stored batches are applied too (``depth`` is the inbox's own counter): the store says so.
    assert fed.inbox_waiting(TOWN) == 0
    take_overs = [r for r in fed.owner_view(TOWN) for e in fed.core(TOWN).store.events(r) if e.action == "take_over"]
    assert sorted(take_overs) == sorted(receipts)
    assert inbox.drain() == 0


def test_a_full_inbox_makes_children_back_off(fed: Federation) -> None:
    inbox = deferred_inbox(fed, TOWN, capacity=2)
    for i in range(2):
        submit(fed, VILLAGE, "MZ-0001", i)
    up = fed.uplink(VILLAGE)
    up.hello()
    first = up.next_batch()
    fed.core(TOWN).children.push(VILLAGE, 1, first)
    assert inbox.depth == 4
    with pytest.raises(Busy) as busy:
        fed.core(TOWN).children.push(VILLAGE, 1, first)
    assert busy.value.retry_after_s >= 1.0
    inbox.drain()
    assert fed.core(TOWN).children.push(VILLAGE, 1, first).has(first[-1].seq)  # room again


def test_the_status_shows_what_waits_in_the_inbox_per_link(fed: Federation) -> None:
    inbox = deferred_inbox(fed, TOWN)
    submit(fed, VILLAGE, "MZ-0001", 1)
    up = fed.uplink(VILLAGE)
    up.hello()
    fed.core(TOWN).children.push(VILLAGE, 1, up.next_batch())
    core = fed.core(TOWN)
    reports = {r.neighbour: r for r in link_reports(core.store, core.uplink, fed.clock.now(), timedelta(seconds=1))}
    assert reports[VILLAGE].inbox_depth == 2 and reports[COUNTY].inbox_depth == 0
    inbox.drain()
    reports = {r.neighbour: r for r in link_reports(core.store, core.uplink, fed.clock.now(), timedelta(seconds=1))}
    assert reports[VILLAGE].inbox_depth == 0


def test_an_envelope_that_fails_is_quarantined_alone_and_the_rest_of_its_chunk_applies(fed: Federation) -> None:
    inbox = deferred_inbox(fed, TOWN)
    receipts = [submit(fed, VILLAGE, "MZ-0001", i) for i in range(2)]
    up = fed.uplink(VILLAGE)
    up.hello()
    batch = up.next_batch()
    # A forged copy of the first transfer under a new position: same identity, other payload.
    first = next(e for e in batch if e.kind == "transfer")
    forged = dataclasses.replace(first, seq=batch[-1].seq + 1, payload=first.payload.replace(b'"status"', b'"st"'))
    fed.core(TOWN).children.push(VILLAGE, 1, [*batch, forged])
    assert inbox.drain() == len(batch) + 1
    [alarm] = inbox.quarantined()
    assert alarm.seq == forged.seq and "identity conflict" in alarm.error
    assert [case(fed, TOWN, r)[3] for r in receipts] == [TOWN, TOWN]
