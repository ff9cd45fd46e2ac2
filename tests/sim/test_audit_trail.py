"""The tamper-evident trail on real stores: every node's events form one hash chain, heads
travel up with sync, and both kinds of tampering are caught.

* A plain edit of the SQLite file (an event's actor, time or reason changed with sqlite3, an
  event deleted, two swapped) is named by ``govnet audit verify DIR``, run as a user runs it.
* A careful rewrite (the event edited and every hash after it recomputed, so the file alone
  looks intact) is caught by the node's ancestors: the next head it sends does not extend the
  one they hold — a supervision alarm, the metrics, at the parent and at the city.

The federation is the deterministic in-process one (real node cores and SQLite files,
in-memory links); the file is edited with ``sqlite3`` as a person with a shell would.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner
from sqlmodel import create_engine

from govnet.node.app.audit import use_configured_algorithm
from govnet.node.cli.supervision import format_alarms
from govnet.node.domain.audit import GENESIS, chain, link
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.process.config import ConfigError, build_config, load_config, write_config
from govnet.node.rpc.supervision import alarm_to_proto
from govnet.node.store import audit as audit_chain
from govnet.node.store.backup import restore_as_new_incarnation, snapshot
from govnet.node.store.engine import DB_FILE, STORE_FILES, Store, _alembic_config
from govnet.ops.cli import main
from govnet.ops.simulation.harness import Federation, applicant
from govnet.v1 import supervision_pb2 as sv

CITY, COUNTY, TOWN, VILLAGE = "371100", "371102", "371102001", "371102001201"
FIELDS = ("receipt", "seq", "action", "from_status", "to_status", "actor", "reason", "detail", "happened_at",
          "recorded_at", "origin", "origin_incarnation", "origin_seq", "superseded")


def verify(data_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", "verify", str(data_dir)])
    return result.exit_code, result.output.strip()


def copy_store(src: Path, dst: Path) -> Path:
    """A consistent copy of a live store's file (its WAL included), as an inspector would take."""
    dst.mkdir()
    with sqlite3.connect(src / DB_FILE) as a, sqlite3.connect(dst / DB_FILE) as b:
        a.backup(b)
    return dst


def rechain(db: sqlite3.Connection) -> None:
    """What a careful forger does after an edit: recompute every link and the head."""
    (algorithm,) = db.execute("SELECT algorithm FROM audit_head").fetchone()
    head, count = GENESIS, 0
    for row in db.execute(f"SELECT id, {', '.join(FIELDS)} FROM case_event ORDER BY chain_pos").fetchall():
        head, count = link(algorithm, head, dict(zip(FIELDS, row[1:]))), count + 1
        db.execute("UPDATE case_event SET chain_hash = ? WHERE id = ?", (head, row[0]))
    db.execute("UPDATE audit_head SET head = ?, count = ?", (head, count))


def report_heads(fed: Federation) -> None:
    for node in (COUNTY, TOWN, VILLAGE):
        fed.core(node).audit.report_now(fed.clock.now(), force=True)


def test_edits_in_the_file_are_named_and_a_rewritten_history_raises_the_ancestors_alarm(tmp_path: Path) -> None:
    async def scenario() -> None:
        with Federation(tmp_path / "fed", [CITY, COUNTY, TOWN, VILLAGE], seed=3) as fed:
            fed.publish(CITY, load_catalog_file(sample_catalog_path()))
            # The village's chain is configured for SM3 (audit.hash) while it has no events yet.
            assert use_configured_algorithm(fed.core(VILLAGE).store, "sm3") == "sm3"
            await fed.settle()
            receipts = [fed.submit(VILLAGE, "MZ-0002", f"k{i}", **applicant(i), agent="村代办员").record.state.receipt
                        for i in range(3)]
            await fed.settle()
            for r in receipts:
                fed.act(TOWN, r, "accept")
                fed.act(TOWN, r, "review")
            await fed.settle()
            report_heads(fed)
            await fed.settle()

            # Every store's chain holds: own events and replicated ones (the township holds the
            # village's submissions and its own decisions; the village holds the decisions back).
            for node in (CITY, COUNTY, TOWN, VILLAGE):
                code, line = verify(tmp_path / "fed" / node)
                assert code == 0 and line.startswith("chain intact: "), (node, line)
            town_events = sum(len(fed.events(TOWN, r)) for r in receipts)
            assert verify(tmp_path / "fed" / VILLAGE)[1].endswith("(sm3)")
            assert verify(tmp_path / "fed" / TOWN)[1].endswith("(sha256)")
            assert verify(tmp_path / "fed" / TOWN)[1].startswith(f"chain intact: {town_events} events, head ")
            for ancestor in (COUNTY, CITY):
                assert [a for a in fed.supervisors[ancestor].alarms() if a.kind == "audit_chain_broken"] == []

            # Plain edits, each on its own copy of the township's file, each named.
            town = tmp_path / "fed" / TOWN
            accept = [e.seq for e in fed.events(TOWN, receipts[1]) if e.action == "accept"][0]
            edits = {
                "actor": ("UPDATE case_event SET actor = '首席代表' WHERE receipt = ? AND seq = ?", accept),
                "time": ("UPDATE case_event SET happened_at = '2026-03-01T00:00:00.000000+00:00' "
                         "WHERE receipt = ? AND seq = ?", accept),
                "reason": ("UPDATE case_event SET reason = '材料齐全' WHERE receipt = ? AND seq = ?", accept),
                "deleted": ("DELETE FROM case_event WHERE receipt = ? AND seq = ?", accept),
                "swapped": ("UPDATE case_event SET seq = CASE seq WHEN ?2 THEN ?2 + 1 ELSE ?2 END "
                            "WHERE receipt = ?1 AND seq IN (?2, ?2 + 1)", accept),
            }
            for name, (sql, seq) in edits.items():
                copy = copy_store(town, tmp_path / name)
                with sqlite3.connect(copy / DB_FILE) as db:
                    if name == "swapped":  # through a free seq: (receipt, seq) is unique
                        db.execute("UPDATE case_event SET seq = -99 WHERE receipt = ? AND seq = ?", (receipts[1], seq))
                        db.execute("UPDATE case_event SET seq = ? WHERE receipt = ? AND seq = ?",
                                   (seq, receipts[1], seq + 1))
                        db.execute("UPDATE case_event SET seq = ? WHERE receipt = ? AND seq = -99",
                                   (seq + 1, receipts[1]))
                    else:
                        assert db.execute(sql, (receipts[1], seq)).rowcount == 1
                code, line = verify(copy)
                expected = {"deleted": "missing", "swapped": "out of order"}.get(name, "edited")
                assert code == 4, (name, line)
                assert line.startswith(f"chain broken: {expected}: receipt {receipts[1]} seq {seq} "), (name, line)

            # The careful forger: the township's accept rewritten in the live file, the chain
            # recomputed; the file alone now looks intact.
            with sqlite3.connect(town / DB_FILE) as db:
                db.execute("UPDATE case_event SET actor = '首席代表', reason = '材料齐全' "
                           "WHERE receipt = ? AND seq = ?", (receipts[0], accept))
                rechain(db)
            assert verify(town)[0] == 0
            # Its next head (a heartbeat, or after new work) no longer extends what the
            # ancestors hold: the county and the city raise the alarm.
            fed.act(TOWN, receipts[2], "approve")
            report_heads(fed)
            await fed.settle()
            for ancestor in (COUNTY, CITY):
                found = [a for a in fed.supervisors[ancestor].alarms() if a.kind == "audit_chain_broken"]
                (alarm,) = found
                assert (alarm.owner, alarm.card, alarm.open) == (TOWN, "red", True)
                assert "rewritten" in alarm.detail["reason"], alarm.detail
                shown = format_alarms(sv.ListAlarmsResponse(node_id=ancestor, alarms=[alarm_to_proto(alarm)]))
                assert f"audit chain: chain of {TOWN} rewritten or rolled back at or before position" in shown
                registry = fed.core(ancestor).metrics.registry
                assert registry.get_sample_value("govnet_audit_chains_broken") == 1
                assert registry.get_sample_value("govnet_audit_chain_breaks_total") == 1
            # The village, whose history nobody touched, is not named.
            assert all(a.owner != VILLAGE for a in fed.supervisors[CITY].alarms() if a.kind == "audit_chain_broken")

    asyncio.run(scenario())


def test_a_store_from_before_the_chain_is_chained_by_its_upgrade_and_keeps_its_algorithm(tmp_path: Path) -> None:
    # A store as release 0007 wrote it, with two events (written here as that release did).
    engine = create_engine(f"sqlite:///{tmp_path / DB_FILE}")
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0007")
    engine.dispose()
    events = [dict(receipt="371102-01-000001-3", seq=n, action=a, from_status=f, to_status=t, actor="王科员",
                   reason="", detail="{}", happened_at=f"2026-03-10T01:0{n}:00.000000+00:00",
                   recorded_at=f"2026-03-10T01:0{n}:00.000000+00:00", origin="371102", origin_incarnation=1,
                   origin_seq=n, superseded=0)
              for n, a, f, t in [(1, "submit", "", "received"), (2, "accept", "received", "accepted")]]
    with sqlite3.connect(tmp_path / DB_FILE) as db:
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("node_id", "371102"), ("level", "county"),
                                                         ("incarnation", "1"), ("created_at", "2026-03-10")])
        db.executemany(f"INSERT INTO case_event ({', '.join(FIELDS)}) VALUES ({', '.join('?' for _ in FIELDS)})",
                       [tuple(e[f] for f in FIELDS) for e in events])
    assert verify(tmp_path)[0] == 1  # the old schema: told to upgrade, not a trace
    store = Store.open(tmp_path)
    try:
        assert use_configured_algorithm(store, "sm3") == "sha256"  # a chain keeps the algorithm it started with
    finally:
        store.close()
    assert verify(tmp_path) == (0, f"chain intact: 2 events, head {chain('sha256', events)[-1]} (sha256)")


def bring_back(fed: Federation, node: str, backup: Path, new_incarnation: bool) -> None:
    """Stop ``node`` and put ``backup`` in place of its store: as ``govnet restore`` does (a new
    incarnation), or by hand (the old file copied back over the new one, same incarnation)."""
    old = fed.core(node)
    data_dir, incarnation = old.store.path.parent, old.store.meta.incarnation + 1
    old.store.close()
    staging = data_dir / "restoring.db"
    staging.write_bytes(backup.read_bytes())
    if new_incarnation:
        restore_as_new_incarnation(staging, incarnation)
    for name in STORE_FILES:
        (data_dir / name).unlink(missing_ok=True)
    staging.replace(data_dir / DB_FILE)
    fed.open_node(node)


def test_a_restore_is_a_new_baseline_and_a_file_copied_back_by_hand_is_an_alarm(tmp_path: Path) -> None:
    async def scenario() -> None:
        with Federation(tmp_path / "fed", [CITY, COUNTY, TOWN, VILLAGE], seed=5, durable=False) as fed:
            fed.publish(CITY, load_catalog_file(sample_catalog_path()))
            await fed.settle()

            def work(first: int) -> None:
                for i in range(first, first + 2):
                    fed.submit(VILLAGE, "MZ-0002", f"k{i}", **applicant(i), agent="村代办员")

            def broken() -> list[tuple[str, str, str]]:
                with fed.core(TOWN).store.reading() as s:
                    return audit_chain.broken_chains(s)

            work(0)
            fed.core(VILLAGE).audit.report_now(fed.clock.now())
            await fed.settle()
            snapshot(fed.core(VILLAGE).store.path, tmp_path / "backup-1.db")
            work(10)
            fed.core(VILLAGE).audit.report_now(fed.clock.now())
            await fed.settle()

            # The township is backed up while a head of the village waits in its outbox; brought
            # back, it sends that old head to the county again: a repeat, not a rollback.
            fed.partition(TOWN)
            fed.core(VILLAGE).audit.report_now(fed.clock.now(), force=True)
            await fed.step(VILLAGE)
            assert any(e.kind == "audit" for e in fed.outbox(TOWN, COUNTY))
            snapshot(fed.core(TOWN).store.path, tmp_path / "town.db")
            fed.heal()
            await fed.settle()
            work(40)
            fed.core(VILLAGE).audit.report_now(fed.clock.now())
            await fed.settle()
            bring_back(fed, TOWN, tmp_path / "town.db", new_incarnation=True)
            await fed.settle()
            with fed.core(COUNTY).store.reading() as s:
                assert audit_chain.broken_chains(s) == []

            bring_back(fed, VILLAGE, tmp_path / "backup-1.db", new_incarnation=True)
            await fed.settle()
            fed.core(VILLAGE).audit.report_now(fed.clock.now(), force=True)
            await fed.settle()
            assert broken() == []
            with fed.core(TOWN).store.reading() as s:
                (held,) = [h for h in audit_chain.peer_heads(s) if h["node"] == VILLAGE]
            assert (held["incarnation"], held["restores"], held["breaks"]) == (2, 1, 0)
            assert verify(tmp_path / "fed" / VILLAGE)[0] == 0

            snapshot(fed.core(VILLAGE).store.path, tmp_path / "backup-2.db")
            work(20)
            fed.core(VILLAGE).audit.report_now(fed.clock.now())
            await fed.settle()
            bring_back(fed, VILLAGE, tmp_path / "backup-2.db", new_incarnation=False)
            # The copied-back file reuses the link positions of what it sent after the backup:
            # the township drops those as repeats, so the village's work goes on until a head
            # gets through — and that head does not extend the one the township holds.
            for i in range(5):
                work(30 + 2 * i)
                fed.core(VILLAGE).audit.report_now(fed.clock.now(), force=True)
                await fed.settle()
                if broken():
                    break
            ((node, why, _),) = broken()
            assert node == VILLAGE and "rolled back" in why, why

            # The township's head row deleted from its file: intake goes on (the row is put
            # back from the chain), and the county is told.
            fed.core(TOWN).audit.report_now(fed.clock.now())
            await fed.settle()
            with sqlite3.connect(tmp_path / "fed" / TOWN / DB_FILE) as db:
                db.execute("DELETE FROM audit_head")
            fed.submit(TOWN, "MZ-0002", "k-after", **applicant(99))
            fed.core(TOWN).audit.report_now(fed.clock.now(), force=True)
            await fed.settle()
            with fed.core(COUNTY).store.reading() as s:
                assert [n for n, _, _ in audit_chain.broken_chains(s)] == [TOWN, VILLAGE]

    asyncio.run(scenario())


def test_audit_hash_is_configured_by_file_or_environment_and_checked(tmp_path: Path) -> None:
    config = build_config(tmp_path, node_id="371102", level="county", listen="127.0.0.1:0", parent="127.0.0.1:1",
                          audit_hash="sm3")
    write_config(config)
    assert load_config(tmp_path, environ={}).audit_hash == "sm3"
    assert load_config(tmp_path, environ={"GOVNET_AUDIT_HASH": "sha256"}).audit_hash == "sha256"
    with pytest.raises(ConfigError, match=r"audit.hash: 'md5' is not one of sha256, sm3 \(set by GOVNET_AUDIT_HASH\)"):
        load_config(tmp_path, environ={"GOVNET_AUDIT_HASH": "md5"})
