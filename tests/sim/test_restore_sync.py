"""Sync after a node is restored from an older backup: nothing lost, nothing doubled.

A restored store is a new incarnation that has forgotten what it did after the backup:
its cursors are behind what its former self acknowledged (the neighbours deleted those
envelopes), and it lost their effects. The sync layer closes the cursor gap with each
sender's ``settled_below``; the neighbours, seeing the new incarnation, send again what it
lost (``node.app.replication``: recovery transfers up to the owners, copies down to the
origins).

* The cursor rule, as a table; and a run with every fault the in-memory transport has
  (dropped requests and answers, duplicates, late copies) never triggers it.
* In one process (``support.simulation.Federation``: real SQLite stores, the real node core):
  a village and a township restored from snapshots taken before more cases went up.
* Real processes over gRPC: ``tests/process/test_restore_processes.py``.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_sync_core import CATALOG, CITY, COUNTY, TOWN, VILLAGE, VILLAGE2, run, submit

from govnet.node.app.statistics_ledger import own_rows
from govnet.node.store.backup import snapshot
from govnet.ops.simulation.checks import self_check
from govnet.ops.simulation.harness import Federation
from govnet.sync.cursor import Cursor
from govnet.sync.transport.memory import Faults

TOWN2 = "371102002"
VILLAGE3 = "371102002201"


# ---------------------------------------------------------------- the cursor rule


@pytest.mark.parametrize("start, below, through, above", [
    (Cursor(), 1, 0, set()),  # nothing settled: nothing changes
    (Cursor(), 8, 7, set()),  # a restored receiver that never saw 1..7
    (Cursor(5), 3, 5, set()),  # a sender's older, lower value changes nothing
    (Cursor(5), 6, 5, set()),
    (Cursor.of(2, [4, 9, 12]), 8, 7, {9, 12}),  # positions above the settled ones are kept
    (Cursor.of(2, [4, 8, 9]), 8, 9, set()),  # and close the gap they were waiting for
])
def test_a_cursor_counts_what_the_sender_no_longer_holds_as_applied(start: Cursor, below: int, through: int,
                                                                    above: set[int]) -> None:
    got = start.settled(below)
    assert (got.through, set(got.above)) == (through, above)


def jumps(fed: Federation) -> dict[str, int]:
    return {n: fed.core(n).inbox.settled_jumps for n in fed.nodes if fed.core(n).inbox.settled_jumps}


def cursor_gaps(fed: Federation, node: str) -> list[tuple[str, int, str]]:
    """Inbound cursors of ``node`` still waiting for positions (``above`` not empty).

    Read from the file: every cursor row, of every link and every incarnation of it, is the
    claim, and the store reads one cursor at a time (for a link and incarnation it names)."""
    conn = sqlite3.connect(f"file:{fed.core(node).store.path}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in conn.execute("SELECT link, incarnation, above FROM inbound_cursor "
                                               "WHERE above != '[]'")]
    finally:
        conn.close()


def decide_all(fed: Federation, node: str, receipts: list[str]) -> None:
    for r in receipts:
        for action in ("accept", "review", "approve"):
            fed.act(node, r, action)


def test_a_run_with_every_fault_never_moves_a_cursor_up(tmp_path: Path) -> None:
    nodes = [CITY, COUNTY, TOWN, TOWN2, VILLAGE, VILLAGE2, VILLAGE3]
    faults = Faults(drop_request=0.2, drop_reply=0.25, duplicate=0.2, delay=0.2)
    with Federation(tmp_path, nodes, seed=11, faults=faults, durable=False) as fed:
        fed.publish(CITY, CATALOG)
        run(fed.settle())
        fed.resume_faults()
        rng = random.Random(3)
        owned: dict[str, list[str]] = {TOWN: [], TOWN2: [], COUNTY: []}
        for i in range(30):
            village = (VILLAGE, VILLAGE2, VILLAGE3)[i % 3]
            code = ("MZ-0001", "HB-0002")[i % 2]  # decided by the township, by the county
            receipt = submit(fed, village, code, i)
            owned[COUNTY if code == "HB-0002" else village[:9]].append(receipt)
            run(fed.churn(2, rng))
        run(fed.churn(20, rng))
        for owner, receipts in owned.items():
            arrived = [r for r in receipts if r in fed.owner_view(owner)]
            decide_all(fed, owner, arrived)
            run(fed.churn(3, rng))
        run(fed.settle(max_rounds=60))
        assert fed.counts.link_down > 20  # the faults did happen
        assert jumps(fed) == {}
        assert all(cursor_gaps(fed, n) == [] for n in nodes)
        everything = [r for receipts in owned.values() for r in receipts]
        assert sorted(r for o in owned for r, (owner, _, _) in fed.owner_view(o).items() if owner == o) \
            == sorted(everything)


# ---------------------------------------------------------------- restores in one process


def snapshot_store(fed: Federation, node: str, out: Path) -> None:
    """A consistent copy of ``node``'s store, taken as ``govnet backup`` takes it."""
    snapshot(fed.core(node).store.path, out)


def history(fed: Federation, node: str, receipt: str) -> list[tuple[Any, ...]]:
    return [e for e in fed.snapshot()[node]["events"] if e[0] == receipt]


def quarantined(fed: Federation) -> dict[str, int]:
    return {n: s["quarantined"] for n, s in fed.snapshot().items() if s["quarantined"]}


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    with Federation(tmp_path / "fed", [CITY, COUNTY, TOWN, VILLAGE], seed=7, durable=False) as f:
        f.publish(CITY, CATALOG)
        run(f.settle())
        yield f


def test_a_restored_village_closes_its_cursor_gap_and_gets_its_cases_back(fed: Federation, tmp_path: Path) -> None:
    early = [submit(fed, VILLAGE, "MZ-0001", i) for i in range(3)]
    run(fed.settle())
    snapshot_store(fed, VILLAGE, tmp_path / "village.db")
    late = [submit(fed, VILLAGE, "MZ-0001", 10 + i) for i in range(3)]
    county_case = submit(fed, VILLAGE, "HB-0002", 20)  # owned by the county
    run(fed.settle())
    decide_all(fed, TOWN, early + late)
    run(fed.settle())
    before = {r: history(fed, VILLAGE, r) for r in early + late}
    assert all(fed.owner_view(VILLAGE)[r][1] == "approved" for r in early + late)

    fed.restore(VILLAGE, tmp_path / "village.db")
    assert not set(late) & set(fed.owner_view(VILLAGE))
    run(fed.settle())

    view = fed.owner_view(VILLAGE)
    for r in early + late:  # back, whole, as the owner has them
        assert view[r] == (TOWN, "approved", len(before[r]))
        assert history(fed, VILLAGE, r) == before[r] == history(fed, TOWN, r)
    held = {r: fed.core(VILLAGE).store.get_case(r) for r in late}
    assert all(c is not None and c.applicant.name for c in held.values())  # with the applicant's personal data
    assert view[county_case] == fed.owner_view(COUNTY)[county_case]  # owned above the township: told by it
    assert history(fed, VILLAGE, county_case) == history(fed, COUNTY, county_case)
    # The cursor on the township's stream moved up once, and waits for nothing.
    assert jumps(fed) == {VILLAGE: 1}
    assert cursor_gaps(fed, VILLAGE) == []
    assert quarantined(fed) == {}

    # And the link works as before: a new case goes up and its decision comes back.
    fresh = submit(fed, VILLAGE, "MZ-0001", 30)
    assert fresh.split("-")[1] == "02"
    run(fed.settle())
    decide_all(fed, TOWN, [fresh])
    run(fed.settle())
    assert fed.owner_view(VILLAGE)[fresh] == fed.owner_view(TOWN)[fresh]


def test_a_restored_township_takes_back_the_cases_handed_to_it_once_each(fed: Federation, tmp_path: Path) -> None:
    early = [submit(fed, VILLAGE, "MZ-0001", i) for i in range(3)]
    run(fed.settle())
    decide_all(fed, TOWN, early[:1])
    run(fed.settle())
    snapshot_store(fed, TOWN, tmp_path / "town.db")
    late = [submit(fed, VILLAGE, "MZ-0001", 10 + i) for i in range(3)]
    county_case = submit(fed, VILLAGE, "HB-0002", 20)  # relayed by the township to the county
    run(fed.settle())
    decide_all(fed, TOWN, early[1:])  # decisions the restored township forgets
    run(fed.settle())
    at_village = {r: history(fed, VILLAGE, r) for r in early + late}
    at_county = history(fed, COUNTY, county_case)

    fed.restore(TOWN, tmp_path / "town.db")
    assert not set(late) & set(fed.owner_view(TOWN))
    fed.restart(VILLAGE)  # it has never met the new township in this process: the old one is on disk
    run(fed.settle())

    view = fed.owner_view(TOWN)
    for r in late:  # taken back with every event, and no second take-over
        assert view[r][0] == TOWN
        assert history(fed, TOWN, r) == at_village[r]
        assert [e[2] for e in history(fed, TOWN, r)].count("take_over") == 1
    for r in early:  # held at the same epoch: the lost decisions come back, nothing doubles
        assert history(fed, TOWN, r) == at_village[r]
        assert view[r][1] == "approved"
    assert not any(e[7] for r in early + late for e in history(fed, TOWN, r))  # no superseded noise
    # A case owned above: the county changes nothing, and the relay takes no ownership.
    assert history(fed, COUNTY, county_case) == at_county
    assert county_case not in view
    assert jumps(fed) == {TOWN: 2}  # its cursors on the village's stream and on the county's
    assert all(cursor_gaps(fed, n) == [] for n in fed.nodes)
    assert quarantined(fed) == {}

    # Decisions made after the restore reach the village.
    decide_all(fed, TOWN, late)
    run(fed.settle())
    assert all(fed.owner_view(VILLAGE)[r] == fed.owner_view(TOWN)[r] for r in late)
    assert all(fed.owner_view(VILLAGE)[r][1] == "approved" for r in late)


def test_a_restored_township_hands_back_a_case_it_escalated_after_the_backup(fed: Federation,
                                                                               tmp_path: Path) -> None:
    receipt = submit(fed, TOWN, "HB-0002", 1)  # received at the township's own window: a county item
    fed.act(TOWN, receipt, "accept")
    fed.act(TOWN, receipt, "review")
    run(fed.settle())
    snapshot_store(fed, TOWN, tmp_path / "town.db")
    fed.act(TOWN, receipt, "escalate", reason="上级审批")
    run(fed.settle())
    fed.act(COUNTY, receipt, "review")
    run(fed.settle())
    assert fed.owner_view(COUNTY)[receipt][0] == COUNTY

    fed.restore(TOWN, tmp_path / "town.db")
    assert fed.owner_view(TOWN)[receipt][0] == TOWN  # it believes it still owns the case
    run(fed.settle())

    # The county sent its copy back to where the case was submitted: one owner in the tree again.
    assert fed.owner_view(TOWN)[receipt] == fed.owner_view(COUNTY)[receipt]
    assert [n for n in fed.nodes if fed.owner_view(n).get(receipt, ("",))[0] == n] == [COUNTY]
    assert history(fed, TOWN, receipt) == history(fed, COUNTY, receipt)
    assert quarantined(fed) == {}


def test_a_copy_whose_history_differs_from_the_restored_owners_is_set_aside(fed: Federation,
                                                                              tmp_path: Path) -> None:
    receipt = submit(fed, VILLAGE, "MZ-0001", 1)
    run(fed.settle())
    snapshot_store(fed, TOWN, tmp_path / "town.db")
    decide_all(fed, TOWN, [receipt])
    run(fed.settle())
    fed.restore(TOWN, tmp_path / "town.db")
    fed.act(TOWN, receipt, "accept", actor="另一位窗口")  # before the village's copy comes back
    run(fed.settle())
    # Not merged into a mixed history: set aside, for ops to see, with the reason.
    [item] = fed.core(TOWN).inbox.quarantined()
    assert item.case_key == receipt and "the histories differ" in item.error
    assert fed.owner_view(TOWN)[receipt][1] == "accepted"


# ---------------------------------------------------------------- cases nobody else held


def flush_statistics(fed: Federation) -> None:
    for n in fed.nodes:
        fed.core(n).ledger.flush_now(fed.core(n).clock.now(), report=True)
    run(fed.settle())


def custody_receipts(fed: Federation, node: str) -> list[str]:
    """What ``node`` keeps in custody for its children, read from its file."""
    conn = sqlite3.connect(f"file:{fed.core(node).store.path}?mode=ro", uri=True)
    try:
        return [r for (r,) in conn.execute("SELECT receipt FROM case_custody ORDER BY receipt")]
    finally:
        conn.close()


def test_a_restored_village_gets_back_the_cases_it_owned_itself(fed: Federation, tmp_path: Path) -> None:
    # 村（社区）居住情况证明: decided at the village itself, so no one above holds it whole.
    early = submit(fed, VILLAGE, "MZ-0005", 1)
    run(fed.settle())
    snapshot_store(fed, VILLAGE, tmp_path / "village.db")
    late = [submit(fed, VILLAGE, "MZ-0005", 10 + i) for i in range(3)]
    fed.act(VILLAGE, late[0], "accept")
    fed.act(VILLAGE, late[0], "approve")
    handed_up = submit(fed, VILLAGE, "MZ-0001", 20)  # decided by the township: no custody needed
    run(fed.settle())
    flush_statistics(fed)
    assert custody_receipts(fed, TOWN) == sorted([early, *late])
    before = {r: history(fed, VILLAGE, r) for r in [early, *late]}

    fed.restore(VILLAGE, tmp_path / "village.db")
    assert not set(late) & set(fed.owner_view(VILLAGE))
    run(fed.settle())
    flush_statistics(fed)

    view = fed.owner_view(VILLAGE)
    for r in late:  # back, owned where they were received, with their whole history and applicant
        assert view[r][0] == VILLAGE
        assert history(fed, VILLAGE, r) == before[r]
        case = fed.core(VILLAGE).store.get_case(r)
        assert case is not None and case.applicant.name
    assert view[late[0]][1] == "approved"
    assert history(fed, VILLAGE, early) == before[early]  # held in the backup: nothing doubled
    assert view[handed_up][0] == TOWN
    submitted = [(r, VILLAGE) for r in [early, *late, handed_up]]
    result = self_check(fed, submitted)
    assert result.ok, result.problems  # one owner each, and the city's figures equal the village's count
    assert quarantined(fed) == {}

    # The village goes on with them, and its custody above follows.
    fed.act(VILLAGE, late[1], "accept")
    run(fed.settle())
    assert custody_receipts(fed, TOWN) == sorted([early, *late])


def test_a_restored_township_is_given_its_villages_cases_to_keep_again(fed: Federation, tmp_path: Path) -> None:
    snapshot_store(fed, VILLAGE, tmp_path / "village.db")
    snapshot_store(fed, TOWN, tmp_path / "town.db")
    own = [submit(fed, VILLAGE, "MZ-0005", i) for i in range(2)]
    run(fed.settle())

    fed.restore(TOWN, tmp_path / "town.db")  # it forgets what it kept
    assert custody_receipts(fed, TOWN) == []
    fed.restart(VILLAGE)
    run(fed.settle())
    assert custody_receipts(fed, TOWN) == sorted(own)  # the village sent them again

    fed.restore(VILLAGE, tmp_path / "village.db")  # and now the village loses them: they come back
    run(fed.settle())
    assert all(fed.owner_view(VILLAGE)[r][0] == VILLAGE for r in own)
    assert quarantined(fed) == {}


def kept_rows(fed: Federation, at: str, node: str) -> dict[tuple[str, str, str], dict[str, int]]:
    """The statistics rows ``at`` keeps for ``node``, by day, item and department (counts only)."""
    return {(r.key.day, r.key.item_code, r.key.department): {k: v for k, v in r.counters.items() if v}
            for r in own_rows(fed.core(at).store, node)}


def test_a_restored_county_gets_back_its_villages_cases_and_figures_from_two_levels_down(
        fed: Federation, tmp_path: Path) -> None:
    early = submit(fed, VILLAGE, "HB-0002", 1)  # decided at the county, carried up through the township
    run(fed.settle())
    flush_statistics(fed)
    snapshot_store(fed, COUNTY, tmp_path / "county.db")
    late = [submit(fed, VILLAGE, "HB-0002", 10 + i) for i in range(2)]
    run(fed.settle())
    fed.act(COUNTY, late[0], "accept")
    run(fed.settle())
    flush_statistics(fed)
    at_village = {r: history(fed, VILLAGE, r) for r in late}
    assert kept_rows(fed, COUNTY, VILLAGE) == kept_rows(fed, VILLAGE, VILLAGE)

    fed.restore(COUNTY, tmp_path / "county.db")
    assert not set(late) & set(fed.owner_view(COUNTY))
    assert kept_rows(fed, COUNTY, VILLAGE) != kept_rows(fed, VILLAGE, VILLAGE)  # it forgot the village's figures
    fed.restart(TOWN)  # it has never met the new county in this process: the old one is on disk
    run(fed.settle())
    flush_statistics(fed)

    # The township saw the new incarnation and told the village, which handed these over itself.
    view = fed.owner_view(COUNTY)
    for r in late:
        assert view[r][0] == COUNTY
        assert history(fed, COUNTY, r) == at_village[r]
    assert view[early][0] == COUNTY
    assert kept_rows(fed, COUNTY, VILLAGE) == kept_rows(fed, VILLAGE, VILLAGE)
    assert kept_rows(fed, COUNTY, TOWN) == kept_rows(fed, TOWN, TOWN)
    submitted = [(r, VILLAGE) for r in [early, *late]]
    result = self_check(fed, submitted)
    assert result.ok, result.problems
    assert quarantined(fed) == {}


def test_a_restored_node_raises_no_alarm_until_it_has_caught_up_with_its_parent(fed: Federation,
                                                                               tmp_path: Path) -> None:
    receipt = submit(fed, VILLAGE, "MZ-0005", 1)  # the village's own case, waiting for acceptance
    run(fed.settle())
    snapshot_store(fed, VILLAGE, tmp_path / "village.db")
    fed.clock.set(fed.clock.now() + timedelta(days=10))
    assert fed.scan(VILLAGE) > 0  # its acceptance is overdue: alarms on the case
    for _ in range(5):  # one alarm can make the next one due (deemed accepted, then its limit)
        if not fed.scan(VILLAGE):
            break
    run(fed.settle())
    before = history(fed, VILLAGE, receipt)

    fed.restore(VILLAGE, tmp_path / "village.db")  # back to before the alarms
    assert len(history(fed, VILLAGE, receipt)) < len(before)
    assert fed.scan(VILLAGE) == 0  # not yet: the alarms it forgot are on their way back
    run(fed.settle())
    assert history(fed, VILLAGE, receipt) == before  # came back from custody, not raised twice
    assert fed.scan(VILLAGE) == 0
    assert quarantined(fed) == {}
    submit(fed, VILLAGE, "MZ-0005", 2)
    fed.clock.set(fed.clock.now() + timedelta(days=10))
    assert fed.scan(VILLAGE) > 0  # caught up: alarms due are raised as usual
