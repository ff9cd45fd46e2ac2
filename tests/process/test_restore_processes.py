"""A township restored from an older backup, with real node processes over gRPC.

A backup taken before a village handed the township more cases: the restored township
(a new incarnation) gets them all back, once each, and its decisions reach the village.
The same recovery in one process, with every fault the in-memory transport has:
``tests/sim/test_restore_sync.py``; a restored village: ``tests/process/test_backup.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_backup import (
    TOWNSHIP,
    VILLAGE,
    TownAndVillage,
    application,
    decide,
    histories_are_whole,
    quarantined,
    rows,
    status_at,
)

from govnet.node.rpc.client import GovnetClient

from support.helpers import every_case, govnet, store_of, wait_for


@pytest.mark.slow
def test_a_township_restored_from_an_older_backup_takes_back_every_case_once(tmp_path: Path) -> None:
    pair = TownAndVillage(tmp_path)
    town_dir, village_dir, start, settled = pair.town_dir, pair.village_dir, pair.start, pair.settled

    def take_overs(receipt: str) -> int:
        return take_overs_at(town_dir, receipt)

    try:
        town, village = pair.start_with_catalog()
        with GovnetClient(village.address) as v:
            early = [application(v, "SJ-0002", i) for i in range(3)]
        wait_for(lambda: settled() and all(status_at(town_dir, r) == "received" for r in early), 30,
                 lambda: f"early cases at the township: {[status_at(town_dir, r) for r in early]}")
        assert govnet("backup", str(town_dir), str(tmp_path / "backup")).returncode == 0

        # After the backup, forgotten by the restored township: more cases, and a decision.
        with GovnetClient(village.address) as v:
            late = [application(v, "RS-0002", 10 + i) for i in range(4)]
        with GovnetClient(town.address) as t:
            wait_for(lambda: all(status_at(town_dir, r) == "received" for r in late), 30, lambda: "late cases")
            decide(t, early[0])
        wait_for(lambda: settled() and status_at(village_dir, early[0]) == "approved"
                 and all(status_at(village_dir, r) == "received" and take_overs_at(village_dir, r) for r in late), 30,
                 lambda: f"village: {[(r, status_at(village_dir, r)) for r in early + late]}")

        town.terminate()
        restored = govnet("restore", str(tmp_path / "backup"), str(town_dir), "--force")
        assert restored.returncode == 0, restored.stderr
        # What the restore wrote, read from the file before the township serves it.
        assert set(late).isdisjoint(r for (r,) in rows(town_dir, "SELECT receipt FROM case_record"))
        town = start(town_dir)

        # The village sees the new incarnation and hands every case over again; the township
        # takes back the ones it lost (and the decision it forgot), once each.
        wait_for(lambda: settled() and all(status_at(town_dir, r) == "received" for r in late)
                 and status_at(town_dir, early[0]) == "approved", 60,
                 lambda: f"township: {[(r, status_at(town_dir, r)) for r in early + late]}, "
                         f"quarantine: {quarantined(town_dir)}")
        assert [take_overs(r) for r in early + late] == [1] * len(early + late)
        # No event anywhere in the file was kept apart as superseded (no read counts them all).
        assert rows(town_dir, "SELECT count(*) FROM case_event WHERE superseded")[0][0] == 0

        # Decisions made after the restore flow back to the village.
        with GovnetClient(town.address) as t:
            for r in early[1:] + late:
                decide(t, r)
        wait_for(lambda: settled() and all(status_at(village_dir, r) == "approved" for r in early + late), 30,
                 lambda: f"village: {[(r, status_at(village_dir, r)) for r in early + late]}")
    finally:
        pair.close()

    # The stores after a restore: event identities, cursors and quarantine as the files keep them.
    with store_of(town_dir) as town:
        owned = [c.state.receipt for c in every_case(town) if c.state.owner == TOWNSHIP]
    assert sorted(owned) == sorted(early + late)
    for r in early + late:  # the same history on both sides, whole and once
        assert rows(town_dir, HISTORY, (r,)) == rows(village_dir, HISTORY, (r,))
    assert histories_are_whole(town_dir) == [] and histories_are_whole(village_dir) == []
    assert quarantined(town_dir) == []
    assert quarantined(village_dir) == []
    # The township's cursor on the village's stream skipped what its former self had
    # acknowledged, and waits for nothing; the village knows both township incarnations.
    assert rows(town_dir, "SELECT above FROM inbound_cursor WHERE link = ?", (VILLAGE,)) == [("[]",)]
    assert rows(village_dir, "SELECT incarnation FROM inbound_cursor WHERE link = ? ORDER BY incarnation",
                (TOWNSHIP,)) == [(1,), (2,)]


HISTORY = "SELECT seq, action, to_status, origin, origin_incarnation, origin_seq FROM case_event WHERE receipt = ? " \
          "ORDER BY seq"


def take_overs_at(data: Path, receipt: str) -> int:
    with store_of(data) as store:
        return sum(1 for e in store.events(receipt) if e.action == "take_over")
