"""Fresh stores for tests: ``create_store`` (from the simulation harness) makes each with
``Store.create`` over an empty schema made once per process, so the migration history (0.1-0.4 s)
is not run again for every node a test starts.
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
