"""Fresh stores for tests, made once per process and copied after.

Why: ``Store.create`` runs the whole alembic history, a transaction and an fsync each
(about 0.1–0.4 s; in the in-process RPC tests it was a third of their time), and the tests
make the same fresh store again and again: each RPC test starts a node 371102 (county), and
the simulation builds the same 15 empty stores for every run it compares. A closed store
that ``Store.create`` just made is its database file (the WAL is checkpointed into it on
close), so a copy of that file *is* a fresh store for the same node: the same schema, meta
(node id, level, incarnation 1) and migrations, made by the product's own code. The one
difference: the store's ``created_at`` is when the first copy was made in this process
(nothing reads it but the meta itself).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from govnet.federation.tree import Level
from govnet.node.store.engine import DB_FILE, Store
from govnet.node.store.unit import StoreError
from govnet.ops import processes

# (node id, level, creation time or None for "when first made") -> the directory it was made in
_FRESH: dict[tuple[str, Level, datetime | None], Path] = {}


def create_store(data_dir: Path, node_id: str, level: Level, now: datetime | None = None) -> None:
    """What ``Store.create(data_dir, node_id, level, now).close()`` leaves in ``data_dir``
    (``now``: None for the current time): made by it the first time in this process for
    this node, level and time, copied from that one after."""
    if (data_dir / DB_FILE).exists():  # as Store.create: never over an existing store
        raise StoreError(f"{data_dir / DB_FILE} already exists: this directory already holds a node's store")
    key = (node_id, level, now)
    made = _FRESH.get(key)
    if made is None:
        made = Path(tempfile.mkdtemp(prefix="govnet-test-fresh-store-"))
        atexit.register(shutil.rmtree, made, True)
        Store.create(made, node_id, level, now or datetime.now(UTC)).close()
        _FRESH[key] = made
    for name in (DB_FILE, DB_FILE + "-wal"):  # closed: the WAL is checkpointed into the file (and gone)
        if (made / name).exists():
            shutil.copy(made / name, data_dir / name)  # with its mode: owner-only, as made


def init_node(directory: Path, node_id: str, level: str, parent: str | None = None,
              listen: str = "127.0.0.1:0", **options: Any) -> Path:
    """``govnet.ops.processes.init_node`` (its configuration and enrolment), with the store
    from ``create_store``."""
    return processes.init_node(directory, node_id, level, parent, listen, make_store=create_store, **options)
