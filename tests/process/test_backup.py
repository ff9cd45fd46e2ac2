"""``govnet backup`` while the node serves, and ``govnet restore`` as a new incarnation.

* A backup taken while a thread submits cases over gRPC holds every case acknowledged
  before the backup began, each with its whole history, and consistent counters and
  outbox; restored, it is incarnation 2 and its new receipts never collide with old ones.
* A village restored from a backup older than its last exchanges syncs again with its
  township: every case ever acknowledged at the village is at its owner exactly once,
  with one copy of each event; the cases the village forgot come back to it whole from
  their owner; its cursor on the township's stream waits for nothing; and what happens
  after the restore flows both ways. (A restored township: ``tests/test_restore_sync.py``.)

Real node processes, real gRPC; stores read through the store's own reads, and with plain
``sqlite3`` where the claim is about the file (what a backup or a restore wrote, cursors,
every event's global identity); every wait is bounded.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from govnet.node.rpc.client import GovnetClient
from govnet.node.store import inbox, links, outbox
from govnet.node.store.cases import CaseRecord
from govnet.node.store.engine import DB_FILE
from govnet.ops.processes import NodeProcess, free_port, init_node

from support.accounts import spawn_node
from support.helpers import SAMPLE, all_materials, every_case, govnet, resident_id, store_of, submit, wait_for

pytestmark = pytest.mark.slow

TOWNSHIP, VILLAGE = "371102001", "371102001201"
AGENT = "代办员 李四"
CLERK = "窗口-王芳"


def rows(data_dir: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Plain sqlite3, read-only: for what a backup or restore left in the file itself."""
    db = sqlite3.connect(f"file:{data_dir / DB_FILE}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def one(data_dir: Path, sql: str, args: tuple[Any, ...] = ()) -> Any:
    return rows(data_dir, sql, args)[0][0]


def histories_are_whole(data_dir: Path) -> list[str]:
    """Receipts whose events are not exactly 1..event_count, once each (empty: all whole).
    Superseded events are kept apart at negative places: they are not the case's history."""
    bad = []
    with store_of(data_dir) as store:
        for case in every_case(store):
            count = case.state.event_count
            seqs = [e.seq for e in store.events(case.state.receipt) if e.seq > 0]
            if seqs != list(range(1, count + 1)):
                bad.append(f"{case.state.receipt}: events {seqs}, event_count {count}")
    return bad


# --- backup under load ---


def test_a_backup_under_load_restores_every_acknowledged_case_as_a_new_incarnation(tmp_path: Path) -> None:
    data = init_node(tmp_path / "county", "371102", "county", parent="127.0.0.1:1")
    node = spawn_node(data)
    acknowledged: list[tuple[float, str]] = []  # (when the answer came, receipt)
    stop = threading.Event()
    failures: list[BaseException] = []

    def intake() -> None:
        try:
            with GovnetClient(node.address) as client:
                i = 0
                while not stop.is_set() and i < 2000:
                    i += 1
                    done = submit(client, "SJ-0001", id_number=resident_id(f"37110219850312{i % 1000:03d}"))
                    acknowledged.append((time.monotonic(), done.case.receipt))
        except BaseException as exc:  # noqa: BLE001 (reported by the test below)
            failures.append(exc)

    try:
        with GovnetClient(node.address) as client:
            client.put_catalog(SAMPLE)
        worker = threading.Thread(target=intake, name="intake")
        worker.start()
        wait_for(lambda: len(acknowledged) >= 30, 30, lambda: f"{len(acknowledged)} cases submitted")
        began = time.monotonic()
        done = govnet("backup", str(data), str(tmp_path / "backup"), "--json")
        ended = time.monotonic()
        wait_for(lambda: len(acknowledged) > 0 and acknowledged[-1][0] > ended, 30, lambda: "intake after the backup")
        stop.set()
        worker.join(30)
    finally:
        stop.set()
        node.terminate()
    assert not failures, failures
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    before = {r for t, r in acknowledged if t < began}
    after = {r for t, r in acknowledged if t > ended}
    assert before and after

    restored = tmp_path / "restored"
    result = govnet("restore", str(tmp_path / "backup"), str(restored))
    assert result.returncode == 0, result.stderr
    assert "as incarnation 2 (backup was 1)" in result.stdout
    # What the restore wrote, read from the restored file itself (no node serves it yet).
    held = {r for (r,) in rows(restored, "SELECT receipt FROM case_record")}
    assert before <= held  # every case acknowledged before the backup began
    assert not held & after  # nothing that was acknowledged only after it ended
    assert len(held) == manifest["cases"]
    assert histories_are_whole(restored) == []
    assert one(restored, "SELECT value FROM meta WHERE key = 'incarnation'") == "2"
    highest = max(int(r.split("-")[2]) for r in held)
    assert one(restored, "SELECT value FROM counter WHERE name = 'case_seq'") == highest
    # The outbox (summaries for the unreachable city) is numbered 1..n, its counter at n.
    seqs = [s for (s,) in rows(restored, "SELECT seq FROM outbox WHERE link = '371100' ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= len(held)
    assert one(restored, "SELECT value FROM counter WHERE name = 'link:371100'") == len(seqs)

    # The restored node serves, and its receipts carry the new incarnation. A backup holds no
    # private key (it stays on its machine): restored here, the node keeps its certificate.
    shutil.copytree(data / "tls", restored / "tls")
    again = spawn_node(restored)
    try:
        with GovnetClient(again.address) as client:
            receipt = submit(client, "SJ-0001").case.receipt
            assert receipt.split("-")[1] == "02" and receipt not in held | after
            some = min(before)
            assert client.get(some).receipt == some
    finally:
        again.terminate()


def test_restore_refuses_a_directory_in_use_and_a_damaged_backup(tmp_path: Path) -> None:
    data = init_node(tmp_path / "city", "371100", "city")
    assert govnet("backup", str(data), str(tmp_path / "b")).returncode == 0
    busy = govnet("restore", str(tmp_path / "b"), str(data))
    assert busy.returncode == 1 and busy.stderr.count("\n") == 1
    assert "is not empty" in busy.stderr and "--force" in busy.stderr
    again = govnet("backup", str(data), str(tmp_path / "b"))
    assert again.returncode == 1 and "is not empty" in again.stderr
    with open(tmp_path / "b" / DB_FILE, "r+b") as f:
        f.seek(200)
        f.write(b"\x00garbage")
    damaged = govnet("restore", str(tmp_path / "b"), str(tmp_path / "new"))
    assert damaged.returncode == 1 and "does not match its checksum" in damaged.stderr
    assert not (tmp_path / "new").exists()
    lower = govnet("restore", str(tmp_path / "b"), str(data), "--force", "--incarnation", "1")
    assert lower.returncode == 2  # below 2 is a usage error: 1 is every store's first incarnation


# --- a village restored from an older backup ---


def application(client: GovnetClient, code: str, i: int) -> str:
    return submit(client, code, agent=AGENT, actor=AGENT, materials=all_materials(code),
                  id_number=resident_id(f"37110219900708{i % 1000:03d}")).case.receipt


def decide(client: GovnetClient, receipt: str) -> None:
    client.act(receipt, "accept", actor=CLERK)
    client.act(receipt, "approve", actor=CLERK)


class TownAndVillage:
    """A township and one of its villages as real processes, syncing fast (the township's own
    parent never answers: nothing here needs it)."""

    def __init__(self, base: Path) -> None:
        town_port = free_port()
        sync = {"flush_interval_s": 0.1, "digest_interval_s": 1.0}
        self.town_dir = init_node(base / "township", TOWNSHIP, "township", parent=f"127.0.0.1:{free_port()}",
                                  listen=f"127.0.0.1:{town_port}", sync=sync)
        self.village_dir = init_node(base / "village", VILLAGE, "village", parent=f"127.0.0.1:{town_port}",
                                     sync=sync)
        self.procs: list[NodeProcess] = []

    def start(self, data: Path) -> NodeProcess:
        self.procs.append(spawn_node(data))
        return self.procs[-1]

    def start_with_catalog(self) -> tuple[NodeProcess, NodeProcess]:
        """Start both, load the sample catalog at the township, wait until the village has it."""
        town, village = self.start(self.town_dir), self.start(self.village_dir)
        with GovnetClient(town.address) as t:
            t.put_catalog(SAMPLE)
        with GovnetClient(village.address) as v:
            wait_for(lambda: len(v.list_items().releases) == 1, 30, lambda: "catalog at village")
        return town, village

    def settled(self) -> bool:
        """Nothing waits on the link in either direction, nothing waits to be applied."""
        with store_of(self.village_dir) as village, village.reading() as v, \
                store_of(self.town_dir) as town, town.reading() as t:
            return (outbox.depth(v, TOWNSHIP)[0] == 0 and outbox.depth(t, VILLAGE)[0] == 0
                    and inbox.waiting(t) == 0 and inbox.waiting(v) == 0)

    def close(self) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.terminate()


def case_at(data: Path, receipt: str) -> CaseRecord | None:
    with store_of(data) as store:
        return store.get_case(receipt)


def status_at(data: Path, receipt: str) -> str:
    case = case_at(data, receipt)
    return case.state.status.value if case else "absent"


def quarantined(data: Path) -> list[tuple[str, str]]:
    """(kind, error) of every envelope the node quarantined."""
    with store_of(data) as store, store.reading() as s:
        return [(q.kind, q.error) for q in inbox.quarantined(s)]


def test_a_village_restored_from_an_older_backup_syncs_again_with_nothing_lost_or_doubled(tmp_path: Path) -> None:
    pair = TownAndVillage(tmp_path)
    town_dir, village_dir, start, settled = pair.town_dir, pair.village_dir, pair.start, pair.settled

    try:
        town, village = pair.start_with_catalog()

        # Before the backup: cases handed to the township, one kept at the village.
        with GovnetClient(village.address) as v:
            early = [application(v, "SJ-0002", i) for i in range(4)]
            kept = application(v, "YB-0001", 99)
        wait_for(lambda: settled() and all(status_at(town_dir, r) == "received" for r in early), 30,
                 lambda: f"early cases at the township: {[status_at(town_dir, r) for r in early]}")
        assert govnet("backup", str(village_dir), str(tmp_path / "backup")).returncode == 0

        # After the backup, lost to the restored village: more cases, and decisions sent down.
        with GovnetClient(village.address) as v:
            late = [application(v, "RS-0002", 10 + i) for i in range(3)]
        with GovnetClient(town.address) as t:
            wait_for(lambda: all(status_at(town_dir, r) == "received" for r in late), 30, lambda: "late cases")
            for r in early + late:
                decide(t, r)
        wait_for(lambda: settled() and all(status_at(village_dir, r) == "approved" for r in early + late), 30,
                 lambda: f"decisions at the village: {[status_at(village_dir, r) for r in early + late]}")

        village.terminate()
        restored = govnet("restore", str(tmp_path / "backup"), str(village_dir), "--force")
        assert restored.returncode == 0, restored.stderr
        # What the restore wrote, read from the file before the village serves it.
        assert set(late).isdisjoint(r for (r,) in rows(village_dir, "SELECT receipt FROM case_record"))
        village = start(village_dir)

        # After the restore: new cases (new incarnation) go up and their decisions come down.
        with GovnetClient(village.address) as v:
            fresh = [application(v, "SJ-0002", 20 + i) for i in range(2)]
        assert all(r.split("-")[1] == "02" for r in fresh)
        with GovnetClient(town.address) as t:
            wait_for(lambda: all(status_at(town_dir, r) == "received" for r in fresh), 30, lambda: "fresh cases")
            for r in fresh:
                decide(t, r)
        everything = early + late + fresh
        wait_for(lambda: settled() and all(status_at(village_dir, r) == "approved" for r in early + fresh), 60,
                 lambda: f"village: {[(r, status_at(village_dir, r)) for r in everything]}, "
                         f"quarantine: {quarantined(village_dir)}")
        # The village's own case is still there, and still the village's.
        kept_case = case_at(village_dir, kept)
        assert kept_case is not None and kept_case.state.owner == VILLAGE
        # The cases the restored village forgot come back from their owner, decided. Their applicant
        # does not travel in clear and the township knows no certificate of the village to seal it
        # to (README, "Personal data": a copy back to a restored node carries no applicant), so the
        # village shows it empty while the owner keeps it whole.
        wait_for(lambda: all(status_at(village_dir, r) == "approved" for r in late), 30,
                 lambda: f"forgotten cases: {[(r, status_at(village_dir, r)) for r in late]}")
        forgotten = [case_at(village_dir, r) for r in late]
        assert all(case is not None and not case.applicant.id_number for case in forgotten), forgotten
        assert all((c := case_at(town_dir, r)) is not None and c.applicant.id_number for r in late)
    finally:
        pair.close()

    # Nothing lost: every case ever acknowledged at the village is owned by the township, once.
    with store_of(town_dir) as town:
        owned = [c.state.receipt for c in every_case(town) if c.state.owner == TOWNSHIP]
    assert sorted(owned) == sorted(everything)
    assert all(status_at(town_dir, r) == "approved" for r in everything)
    # Nothing doubled: each history is whole and once, in both stores; no message was refused.
    assert histories_are_whole(town_dir) == []
    assert histories_are_whole(village_dir) == []
    assert quarantined(town_dir) == []
    assert quarantined(village_dir) == []
    # Every event's global identity, superseded ones included: no read returns them.
    history = "SELECT seq, action, origin, origin_incarnation, origin_seq FROM case_event WHERE receipt = ? ORDER BY seq"
    assert all(rows(village_dir, history, (r,)) == rows(town_dir, history, (r,)) for r in everything)
    # Its cursor on the township's stream skipped what its former self had acknowledged (the
    # cursor row itself, every incarnation's, from the file).
    assert [a for (a,) in rows(village_dir, "SELECT above FROM inbound_cursor WHERE link = ?", (TOWNSHIP,))] \
        == ["[]"]
    # The restored village is a new incarnation on both sides of the link.
    with store_of(village_dir) as village:
        assert village.meta.incarnation == 2
    with store_of(town_dir) as town, town.reading() as s:
        assert [(c.child_id, c.incarnation) for c in links.child_links(s)] == [(VILLAGE, 2)]
