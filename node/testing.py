"""Running real nodes from Python: in-process on a background event loop, or as processes.

Both serve real gRPC on loopback and keep real SQLite files. Tests, the demo and the
benchmarks use them; nothing here fakes a component.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Coroutine, TypeVar

from node.clock import Clock
from node.config import build_config, write_config
from node.server import RunningNode, start_node
from node.store import Store

T = TypeVar("T")
SERVING = re.compile(r"serving on (\S+)")
HTTP = re.compile(r"\(http (\S+)\)")  # on the same banner line, when the node serves HTTP


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports that were free a moment ago: all bound to port 0 at once
    (so the kernel cannot hand out one twice), then released for the caller to listen on."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """One loopback port that was free a moment ago."""
    return free_ports(1)[0]


def init_node(directory: Path, node_id: str, level: str, parent: str | None = None,
              listen: str = "127.0.0.1:0", **options: Any) -> Path:
    """What 'govnet node init' does, from Python."""
    from datetime import datetime, timezone

    config = build_config(directory, node_id=node_id, level=level, listen=listen, parent=parent, **options)
    directory.mkdir(parents=True, exist_ok=True)
    Store.create(directory, config.node_id, config.level, datetime.now(timezone.utc)).close()
    write_config(config)
    return directory


class BackgroundLoop:
    """An asyncio loop on its own thread, so blocking test code can drive async servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="govnet-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


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
    from node.config import load_config

    node = loop.run(start_node(load_config(data_dir), clock))
    return InProcessNode(loop, node, data_dir)


@dataclass
class NodeProcess:
    """A node running as its own 'govnet node serve' process."""

    data_dir: Path
    proc: subprocess.Popen[str]
    address: str
    stderr_path: Path
    _closed: bool = field(default=False, repr=False)
    http: str | None = None  # HOST:PORT of /metrics, /healthz, /readyz, /status (when configured)

    def kill(self) -> None:
        """SIGKILL: no chance to flush or clean up, like a power cut for the process."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 15.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop it if it still runs: SIGTERM, SIGKILL after ``timeout`` s (see ``stop_process``)."""
        stop_process(self.proc, timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None


def stop_process(proc: subprocess.Popen[str], timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` s; nothing if it already
    has. A graceful stop first, so it can finish in-flight work; the kill bounds the wait."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def read_banner(proc: subprocess.Popen[str], pattern: re.Pattern[str], timeout: float) -> re.Match[str] | None:
    """Read the process's stdout until a line matches ``pattern`` (None if it exits or time runs out)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            return None
        found = pattern.search(line)
        if found:
            return found
    return None


def govnet_command() -> list[str]:
    return [sys.executable, "-m", "node.cli"]


def spawn_node(data_dir: Path, timeout: float = 20.0, env: dict[str, str] | None = None) -> NodeProcess:
    """Start 'govnet node serve DATA_DIR' and wait until it says where it serves
    (``env``: extra environment, e.g. GOVNET_LOG_LEVEL overrides)."""
    stderr_path = data_dir / "node.stderr.log"
    err = open(stderr_path, "a")
    proc = subprocess.Popen(
        [*govnet_command(), "node", "serve", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    err.close()
    found = read_banner(proc, SERVING, timeout)
    if found:
        http = HTTP.search(found.string)
        return NodeProcess(data_dir, proc, found.group(1), stderr_path, http=http.group(1) if http else None)
    proc.kill()
    proc.wait(5)
    raise RuntimeError(f"node in {data_dir} did not start: {stderr_path.read_text()[-2000:]}")
