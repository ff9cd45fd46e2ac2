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

from pathlib import Path
from typing import Any

from govnet.ops import processes
from govnet.ops.simulation.harness import create_store


def init_node(directory: Path, node_id: str, level: str, parent: str | None = None,
              listen: str = "127.0.0.1:0", **options: Any) -> Path:
    """``govnet.ops.processes.init_node`` (its configuration and enrolment), with the store
    from ``create_store``."""
    return processes.init_node(directory, node_id, level, parent, listen, make_store=create_store, **options)
