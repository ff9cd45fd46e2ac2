"""The store's schema is under migrations: a data directory from an earlier release upgrades in place.

These tests build and read the SQLite file directly on purpose: an old schema, its rows and
what the upgrade left are claims about the file, which no call of the current release reads."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlmodel import create_engine

from govnet.federation.tree import Level
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.store.engine import DB_FILE, Store, _alembic_config, schema_head
from govnet.node.store.unit import StoreError

NOW = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)


def _store_at(revision: str, data_dir: Path) -> Path:
    """A store written by the release whose newest migration was ``revision``."""
    path = data_dir / DB_FILE
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), revision)
    engine.dispose()
    return path


RECEIPT = "371102-01-000001-3"


def _release_0001_store_with_a_case(data_dir: Path) -> Path:
    """A county's store as release 0001 wrote it, holding one case with its first event."""
    path = _store_at("0001", data_dir)
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("node_id", "371102"), ("level", "county"), ("incarnation", "1"), ("created_at", NOW.isoformat())])
        item = load_catalog_file(sample_catalog_path()).get("SJ-0001")
        assert item is not None
        db.execute("INSERT INTO catalog_version VALUES (1, '371100', ?, 1)", (NOW.isoformat(),))
        db.execute("INSERT INTO catalog_item VALUES (1, 'SJ-0001', ?, 'county', 'immediate', ?)",
                   (item.department, json.dumps(item.to_dict(), ensure_ascii=False)))
        db.execute(
            "INSERT INTO case_record (receipt, item_code, item_name, department, case_type, status, origin, owner,"
            " owner_epoch, agent, applicant_name, applicant_id, applicant_phone, materials, missing_core,"
            " pending_materials, requested_materials, joint, submitted_at, paused_days, extended, decision,"
            " decision_reason, notice, catalog_version, possible_duplicate, duplicate_of, event_count, updated_at)"
            " VALUES ('371102-01-000001-3', 'SJ-0001', '企业设立登记', '市场监督管理局', 'immediate', 'received',"
            " '371102', '371102', 1, '', '张三', '11010519491231002X', '13812345678', '[]', '[]', '[]', '[]', '[]',"
            " ?, 0, 0, '', '', '', 1, 0, '', 1, ?)", (NOW.isoformat(), NOW.isoformat()))
        db.execute(
            "INSERT INTO case_event (receipt, seq, action, from_status, to_status, actor, reason, detail,"
            " happened_at, recorded_at, origin, origin_incarnation, origin_seq) VALUES"
            " ('371102-01-000001-3', 1, 'submit', '', 'received', 'clerk', '', '{}', ?, ?, '371102', 1, 1)",
            (NOW.isoformat(), NOW.isoformat()))
    return path


def test_a_release_0001_store_with_a_case_is_upgraded_on_open(tmp_path: Path) -> None:
    path = _release_0001_store_with_a_case(tmp_path)
    store = Store.open(tmp_path)
    try:
        assert store.schema_revision() == schema_head() != "0001"
        record = store.get_case("371102-01-000001-3")
        assert record is not None and record.applicant.name == "张三" and record.state.status == "received"
        assert [e.action for e in store.events("371102-01-000001-3")] == ["submit"]
        assert store.meta.node_id == "371102" and store.meta.level is Level.COUNTY
        # 0003: the old single version became the city's release; the case names its issuer.
        assert store.catalog().releases == {"371100": 1} and "SJ-0001" in store.catalog().items
        assert record.state.catalog_issuer == "371100"
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"outbox", "inbound_cursor", "applied_envelope", "quarantine", "case_summary"} <= tables
        # The column added by 0002 got its default on the old row instead of breaking it.
        assert db.execute("SELECT superseded FROM case_event").fetchall() == [(0,)]


def test_opening_twice_is_a_no_op(tmp_path: Path) -> None:
    Store.create(tmp_path, "371100", Level.CITY, NOW).close()
    for _ in range(2):
        store = Store.open(tmp_path)
        assert store.schema_revision() == schema_head()
        store.close()


def test_a_store_from_a_newer_release_is_refused_with_what_to_do(tmp_path: Path) -> None:
    Store.create(tmp_path, "371100", Level.CITY, NOW).close()
    with sqlite3.connect(tmp_path / DB_FILE) as db:
        db.execute("UPDATE alembic_version SET version_num = '0999'")
    with pytest.raises(StoreError, match="newer than this govnet release.*upgrade govnet"):
        Store.open(tmp_path)


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / DB_FILE).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open store"):
        Store.open(tmp_path)


def test_the_models_and_the_migrations_describe_the_same_schema(tmp_path: Path) -> None:
    """A model changed without its migration (or the reverse) would break upgrades silently."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    import govnet.node.store.models  # noqa: F401  (registers every table)

    store = Store.create(tmp_path, "371100", Level.CITY, NOW)
    store.close()
    engine = create_engine(f"sqlite:///{tmp_path / DB_FILE}")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = [d for d in compare_metadata(context, SQLModel.metadata) if d[0] != "remove_table" or
                d[1].name != "alembic_version"]
    engine.dispose()
    assert diff == []


@pytest.mark.slow
def test_a_node_process_started_on_a_release_0001_data_dir_upgrades_it_and_serves_its_cases(tmp_path: Path) -> None:
    """What an operator does after installing a new release: start the node on its old data dir."""
    import httpx

    from govnet.node.process.config import build_config, write_config
    from govnet.node.rpc.client import GovnetClient
    from govnet.ops.pki import enrol_node
    from govnet.ops.processes import CA_ENV

    from support.accounts import spawn_node

    path = _release_0001_store_with_a_case(tmp_path)
    write_config(build_config(tmp_path, node_id="371102", level="county", listen="127.0.0.1:0",
                              parent="127.0.0.1:1", http_listen="127.0.0.1:0"))
    enrol_node(tmp_path, "371102", "county", Path(os.environ[CA_ENV]))  # a node of today speaks mutual TLS
    proc = spawn_node(tmp_path)
    try:
        assert proc.http is not None
        ready = httpx.get(f"http://{proc.http}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["reason"].endswith(schema_head())
        with GovnetClient(proc.address) as client:
            case = client.get(RECEIPT)
            assert case.status == "received" and case.applicant.name == "张三"
            assert client.list_items().releases  # the old single catalog version is the city's release
    finally:
        assert proc.terminate() == 0
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(schema_head(),)]


def test_envelopes_waiting_in_a_release_0006_inbox_become_batches_of_one_and_back(tmp_path: Path) -> None:
    from govnet.sync.transport.wire import decode_envelopes

    path = _store_at("0006", tmp_path)
    waiting = [("371102001", 7, "371102001201", 1, 40, "transfer", "371102", "R-1", 0, '{"case": 1}', "t1", "r1"),
               ("371102001", 8, "371102001201", 1, 41, "event", "371102", "R-1", 2, '{"案": 2}', "t2", "r1"),
               ("371102002", 3, "371102002201", 2, 9, "summary", "371100", "R-2", 0, '{"case": 3}', "t3", "r2")]
    columns = "link, seq, origin, origin_incarnation, origin_seq, kind, target, case_key, priority, payload, " \
              "created_at, received_at"
    with sqlite3.connect(path) as db:
        db.executemany(f"INSERT INTO inbox ({columns}) VALUES ({', '.join('?' * 12)})", waiting)
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0007")
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT link, first_seq, last_seq, count, applied, envelopes, received_at FROM inbox "
                          "ORDER BY id").fetchall()
    assert [(r[0], r[1], r[2], r[3], r[4], r[6]) for r in rows] == [
        (w[0], w[1], w[1], 1, 0, w[11]) for w in waiting]  # in order, one envelope each, none applied
    envelopes = [decode_envelopes(r[5])[0] for r in rows]
    assert [(e.seq, e.origin, e.origin_incarnation, e.origin_seq, e.kind, e.target, e.case_key, e.priority,
             e.payload.decode(), e.created_at) for e in envelopes] == [w[1:11] for w in waiting]
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0006")
    with sqlite3.connect(path) as db:
        assert db.execute(f"SELECT {columns} FROM inbox ORDER BY id").fetchall() == waiting
    engine.dispose()


def test_0008_keeps_quarantine_entries_as_receiver_entries_and_goes_back(tmp_path: Path) -> None:
    path = _store_at("0007", tmp_path)
    entry = ("371102001", 7, "371102001201", 1, 40, "event", "371102", "R-1", 0, '{"案": 2}', "t1",
             "ApplyError: gap", "q1")
    columns = "link, seq, origin, origin_incarnation, origin_seq, kind, target, case_key, priority, payload, " \
              "created_at, error, quarantined_at"
    with sqlite3.connect(path) as db:
        db.execute(f"INSERT INTO quarantine ({columns}) VALUES ({', '.join('?' * 13)})", entry)
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0008")
    with sqlite3.connect(path) as db:
        assert db.execute(f"SELECT {columns}, side, reason, size FROM quarantine").fetchall() == [
            (*entry, "receiver", "apply", 0)]
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0007")
    with sqlite3.connect(path) as db:
        assert db.execute(f"SELECT {columns} FROM quarantine").fetchall() == [entry]
        assert not {"side", "reason", "size"} & {c[1] for c in db.execute("PRAGMA table_info(quarantine)")}
    engine.dispose()


def test_0016_gives_stored_proxy_cases_their_kind_keeps_them_carried_and_goes_back(tmp_path: Path) -> None:
    """Cases an older node stored as 'proxy' (a village agent carried them) get the kind they have:
    escalated when decided above the node that received them, else their item's own type."""
    path = _store_at("0015", tmp_path)
    catalog = load_catalog_file(sample_catalog_path())
    village, county_item, village_item = "371102001201", "HB-0002", "MZ-0005"
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO catalog_release VALUES ('371100', 1, ?, 2)", (NOW.isoformat(),))
        for code in (county_item, village_item):
            it = catalog.get(code)
            assert it is not None
            db.execute("INSERT INTO catalog_release_item VALUES ('371100', 1, ?, ?, ?, ?, ?)",
                       (code, it.department, it.authority_level.value, it.item_type.value,
                        json.dumps(it.to_dict(), ensure_ascii=False)))
        cases = [("R-1", county_item, "received"), ("R-2", village_item, "delivered"), ("R-3", county_item, "returned")]
        for receipt, code, status in cases:
            db.execute(
                "INSERT INTO case_record (receipt, item_code, item_name, department, case_type, status, origin, owner,"
                " owner_epoch, agent, applicant_name, applicant_id, applicant_phone, materials, missing_core,"
                " pending_materials, requested_materials, joint, submitted_at, paused_days, extended, decision,"
                " decision_reason, notice, catalog_version, catalog_issuer, possible_duplicate, duplicate_of,"
                " event_count, updated_at) VALUES (?, ?, '', '', 'proxy', ?, ?, ?, 1, '李代办', '张三',"
                " '11010519491231002X', '13812345678', '[]', '[]', '[]', '[]', '[]', ?, 0, 0, '', '', '', 1,"
                " '371100', 0, '', 1, ?)",
                (receipt, code, status, village, village, NOW.isoformat(), NOW.isoformat()))
        db.execute("INSERT INTO case_summary VALUES ('R-9', ?, '371102', 2, ?, '', 'proxy', 'received', NULL, ?, NULL,"
                   " 3, ?, ?)", (village, county_item, NOW.isoformat(), json.dumps({"case_type": "proxy"}),
                                 NOW.isoformat()))
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0016")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT receipt, case_type, agent, fees_due_fen, fees_paid_fen, fees_waived, green_channel "
                          "FROM case_record ORDER BY receipt").fetchall() == [
            ("R-1", "escalated", "李代办", 0, 0, 0, 0), ("R-2", "immediate", "李代办", 0, 0, 0, 0),
            ("R-3", "returned", "李代办", 0, 0, 0, 0)]
        kind, state = db.execute("SELECT case_type, state FROM case_summary").fetchone()
        assert (kind, json.loads(state)["case_type"]) == ("escalated", "escalated")
        assert db.execute("SELECT carried, fees_collected_fen, green_channel FROM stat_row").fetchall() == []
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0015")
    with sqlite3.connect(path) as db:
        assert not {"fees_due_fen", "green_channel"} & {c[1] for c in db.execute("PRAGMA table_info(case_record)")}
        assert "carried" not in {c[1] for c in db.execute("PRAGMA table_info(stat_row)")}
    engine.dispose()
