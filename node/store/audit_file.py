"""A data directory's audit chain read without opening its store (``govnet audit verify``).

Apart from ``node.store.audit`` because it needs the store's file name from the engine, which
imports the case repositories that seal events through that module.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from govnet.node.domain.audit import CHAINED_FIELDS, GENESIS, ChainRow, Recorded
from govnet.node.store.audit import HEAD_SQL
from govnet.node.store.engine import DB_FILE
from govnet.node.store.unit import StoreError


def read_chain_file(data_dir: Path) -> tuple[list[ChainRow], Recorded, dict[str, int]]:
    """The chain rows, recorded head and each case's event count of the store in ``data_dir``, read through a read-only
    connection: verifying changes nothing (no migration, no write, the node may be running).
    Raises ``StoreError`` for a directory without a store or a store older than the chain."""
    path = data_dir / DB_FILE
    if not path.is_file():
        raise StoreError(f"no store at {path}")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path} read-only: {exc}") from None
    try:
        columns = {r[1] for r in db.execute("PRAGMA table_info(case_event)")}
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "case_event" not in tables:
            raise StoreError(f"{path} is not a govnet store (it has no case_event table)")
        if "chain_pos" not in columns or "audit_head" not in tables:
            raise StoreError(f"{path} predates the audit chain: start its node with this release once to upgrade it")
        rows = [ChainRow(r[0], r[1], dict(zip(CHAINED_FIELDS, r[2:])))
                for r in db.execute(f"SELECT chain_pos, chain_hash, {', '.join(CHAINED_FIELDS)} FROM case_event")]
        head = db.execute(HEAD_SQL).fetchone()
        counts = {str(r): int(c) for r, c in db.execute("SELECT receipt, event_count FROM case_record")}
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from None
    finally:
        db.close()
    recorded = Recorded(str(head[0]), int(head[1]), str(head[2])) if head else Recorded("sha256", 0, GENESIS)
    return rows, recorded, counts
