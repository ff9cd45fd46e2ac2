"""Running real node processes from Python: initialise a data directory, spawn
``govnet node serve``, read its banner, stop it.

The launcher, the demo, the benchmarks and the tests use them; each node serves real
gRPC on loopback and keeps a real SQLite file.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any, TypeVar

from govnet.federation.tree import Level
from govnet.node.process.config import build_config, write_config
from govnet.node.store.engine import Store

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


@dataclass(frozen=True)
class AccountSpec:
    """An account a tool writes into a node's store before the node serves (as ``govnet user
    add --data-dir`` does): the demo's people, a benchmark's own clerk."""

    login: str
    roles: tuple[str, ...]
    password: str
    name: str = ""
    departments: tuple[str, ...] = ()
    backup_for: str = ""


def add_accounts(data_dir: Path, accounts: Sequence[AccountSpec]) -> None:
    """Write ``accounts`` into the node's store (those whose login exists already are left as they are)."""
    from govnet.node.app.accounts import Accounts
    from govnet.node.domain.clock import SystemClock
    from govnet.node.domain.people import Role

    if not accounts:
        return
    store = Store.open(data_dir)
    try:
        people = Accounts(store, SystemClock())
        held = {a.login for a in people.list()}
        for a in accounts:
            if a.login not in held:
                people.add(a.login, a.name, [Role(r) for r in a.roles], a.password, a.departments, a.backup_for)
    finally:
        store.close()


def tool_token(data_dir: Path, address: str, login: str = "govnet-tool", certs: Path | None = None) -> str:
    """A token for a tool driving a node it started itself (a benchmark): an account for every
    department with signing power and ops, its password random and never shown. ``certs``: the
    tool's client certificate folder (mutual TLS)."""
    import secrets

    from govnet.node.rpc.client import GovnetClient

    password = secrets.token_urlsafe(16)
    add_accounts(data_dir, [AccountSpec(login, ("window_clerk", "chief_representative", "ops", "supervisor"),
                                        password, name="工具", departments=("*",))])
    with GovnetClient(address, token="", certs=certs) as client:
        return client.login(login, password).token


CA_ENV = "GOVNET_CA_DIR"  # the CA that init_node (and 'govnet pki issue') uses when none is named


def init_node(directory: Path, node_id: str, level: str, parent: str | None = None,
              listen: str = "127.0.0.1:0", *, ca: Path | None = None,
              make_store: Callable[[Path, str, Level], None] | None = None, **options: Any) -> Path:
    """What 'govnet node init' does, from Python, and the node's enrolment: its key made in its
    data directory and a certificate issued by the CA in ``ca`` (default ``$GOVNET_CA_DIR``).
    With ``tls={"plaintext": True}`` in ``options`` there is no certificate; with neither, the
    node is initialised without one and refuses to start until it is enrolled. ``make_store``
    creates the empty store (default ``Store.create``; a test suite may hand out copies of one)."""
    from datetime import datetime

    from govnet.ops.pki import enrol_node

    config = build_config(directory, node_id=node_id, level=level, listen=listen, parent=parent, **options)
    directory.mkdir(parents=True, exist_ok=True)
    if make_store is None:
        Store.create(directory, config.node_id, config.level, datetime.now(UTC)).close()
    else:
        make_store(directory, config.node_id, config.level)
    write_config(config)
    ca = ca or (Path(os.environ[CA_ENV]) if os.environ.get(CA_ENV) else None)
    if not config.tls.plaintext and ca is not None:
        enrol_node(directory, config.node_id, config.level.value, ca)
    return directory


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
    return [sys.executable, "-m", "govnet.ops.cli"]


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
