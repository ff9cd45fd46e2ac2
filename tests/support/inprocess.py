"""Nodes served from the test process, on a background event loop (so a test can inject its
clock); each serves real gRPC on loopback and keeps a real SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from govnet.node.domain.clock import Clock
from govnet.node.process.config import load_config
from govnet.node.process.server import RunningNode, start_node
from govnet.node.store.engine import Store
from govnet.ops.simulation.harness import BackgroundLoop

T = TypeVar("T")


@dataclass
class InProcessNode:
    """A node served from this process (so a test can inject its clock)."""

    loop: BackgroundLoop
    node: RunningNode
    data_dir: Path

    @property
    def address(self) -> str:
        return self.node.address

    @property
    def store(self) -> Store:
        return self.node.store

    def stop(self) -> None:
        self.loop.run(self.node.stop(grace=1.0))


def start_in_process(loop: BackgroundLoop, data_dir: Path, clock: Clock | None = None) -> InProcessNode:
    node = loop.run(start_node(load_config(data_dir), clock))
    return InProcessNode(loop, node, data_dir)




def in_process_nodes(loop: BackgroundLoop, root: Path, sync: Mapping[str, float],
                     start: Callable[[BackgroundLoop, Path], InProcessNode] = start_in_process,
                     ) -> Iterator[Callable[..., InProcessNode]]:
    """The body of a ``nodes`` fixture (``yield from in_process_nodes(...)``): a function that
    initialises a node under ``root`` (``sync``: its sync settings, overridable per node) and
    starts it with ``start``; every node started is stopped after the test, also one the test
    stopped itself (a second stop of such a node may fail: that is not the test's failure)."""
    started: list[InProcessNode] = []

    def node(node_id: str, level: str, parent: str | None = None, listen: str = "127.0.0.1:0",
             sync_options: Mapping[str, float] | None = None, **options: object) -> InProcessNode:
        from govnet.ops.processes import init_node

        d = init_node(root / node_id, node_id, level, parent, listen=listen, sync={**sync, **(sync_options or {})},
                      **options)
        running = start(loop, d)
        started.append(running)
        return running

    yield node
    for running in started:
        try:
            running.stop()
        except Exception:
            pass
