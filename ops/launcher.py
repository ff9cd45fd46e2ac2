"""Running a federation from a topology file: one ``govnet node serve`` process per node.

``Federation.prepare`` creates the data directories that do not exist yet (as ``govnet
node init`` would) and checks the others belong to the node the file names.
``Federation.start`` starts the nodes level by level, parents first, and waits for each
level's banners (a child does not need its parent up — it retries — but starting in
that order means the first exchanges succeed). The topology stays the source of truth
for addresses: every process gets its listen, HTTP and parent addresses, log level and
sync settings as GOVNET_* environment overrides, so editing the file and starting again
is enough.

Certificates: ``Federation.prepare`` also makes the city's PKI beside the topology file if
there is none (``pki/ca``, the root CA; ``pki/client``, an ``ops`` client certificate for the
CLI: ``govnet --certs pki/client …``) and enrols every node it creates (its key made in its
data directory, a certificate issued by that CA), so the federation runs with mutual TLS.

``Federation.stop`` sends SIGTERM to every node at once; each stops taking calls, lets
the batch in flight finish and closes its store (outboxes are in SQLite and persist).
After a bounded wait the stragglers get SIGKILL, which loses nothing acknowledged
either, only time. Node processes run in their own session, so a Ctrl-C at the
terminal reaches the launcher only and the launcher stops the nodes in order.

``read_statuses`` / ``format_status`` are ``govnet status``: every node's ``/status``
read with httpx; a node that does not answer is shown as down, never skipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from govnet.federation.tree import Level, ancestor_at
from govnet.node.process.config import CONFIG_FILE, ConfigError, env_name, load_config
from govnet.node.process.tls import CERT_FILE, TLS_DIR
from govnet.ops.pki import CityPki, PkiError, city_pki, enrol_node
from govnet.ops.processes import (
    SERVING,
    AccountSpec,
    add_accounts,
    govnet_command,
    init_node,
    read_banner,
    stop_process,
)
from govnet.ops.topology import NodeSpec, Topology, TopologyError

STOP_WAIT_S = 20.0  # a node's own grace is 5 s per phase; beyond this it is stuck
LOG_FILE = "node.log"


class LaunchError(Exception):
    """A node could not be prepared or started; ``str()`` says which and why."""


def node_environment(spec: NodeSpec, topology: Topology) -> dict[str, str]:
    """The overrides that make a node's process match its topology entry."""
    env = {
        env_name("node", "listen"): str(spec.listen),
        env_name("http", "listen"): str(spec.http),
        env_name("log", "level"): spec.log_level,
    }
    for section, values in topology.settings.items():
        env.update({env_name(section, key): str(value) for key, value in values.items()})
    if spec.parent_address is not None:
        env[env_name("node", "parent")] = str(spec.parent_address)
    if spec.console is not None:
        env[env_name("console", "listen")] = str(spec.console)
    return env


def _clean_environment() -> dict[str, str]:
    """This process's environment without GOVNET_ settings meant for some other node."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GOVNET_")}


def federation_pki(topology: Topology) -> CityPki:
    """The city's PKI beside the topology file, created if missing."""
    try:
        return city_pki(topology.path.parent / "pki", ancestor_at(topology.nodes[0].node_id, Level.CITY))
    except PkiError as exc:
        raise LaunchError(f"pki: {exc}") from None


def prepare_node(spec: NodeSpec, topology: Topology, ca: Path | None = None,
                 accounts: Sequence[AccountSpec] = ()) -> bool:
    """Create the node's data directory if it has none (enrolled with the CA in ``ca``, with
    ``accounts`` in its store); True if it was created."""
    if (spec.data_dir / CONFIG_FILE).exists():
        try:
            config = load_config(spec.data_dir, {})
        except ConfigError as exc:
            raise LaunchError(f"node {spec.node_id}: {exc}") from None
        if config.node_id != spec.node_id:
            raise LaunchError(f"node {spec.node_id}: {spec.data_dir} holds node {config.node_id}; "
                              "fix the data dir in the topology")
        if ca is not None and not config.tls.plaintext and not (spec.data_dir / TLS_DIR / CERT_FILE).exists():
            try:
                enrol_node(spec.data_dir, spec.node_id, spec.level.value, ca)  # made before certificates existed
            except PkiError as exc:
                raise LaunchError(f"node {spec.node_id}: {exc}") from None
        return False
    try:
        init_node(spec.data_dir, spec.node_id, spec.level.value,
                  str(spec.parent_address) if spec.parent_address else None, listen=str(spec.listen),
                  http_listen=str(spec.http), log_level=spec.log_level, ca=ca,
                  **dict[str, Any](topology.settings, **({"console": {"listen": str(spec.console)}} if spec.console else {})))  # sections of the configuration, by name
        add_accounts(spec.data_dir, accounts)
    except (ConfigError, OSError, PkiError) as exc:
        raise LaunchError(f"node {spec.node_id}: cannot create {spec.data_dir}: {exc}") from None
    return True


@dataclass
class Member:
    spec: NodeSpec
    proc: subprocess.Popen[str]
    log_path: Path
    reported: bool = False  # an unexpected exit has been reported once

    def alive(self) -> bool:
        return self.proc.poll() is None


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    if not lines:
        return ""
    try:
        return str(json.loads(lines[-1]).get("msg", lines[-1]))
    except (ValueError, AttributeError):
        return lines[-1]


@dataclass
class Federation:
    topology: Topology
    members: dict[str, Member] = field(default_factory=dict)
    # The people a new data directory starts with (the demo's; none for 'govnet up', whose
    # operator adds the first account with 'govnet user add … --data-dir DIR').
    accounts: Callable[[NodeSpec], Sequence[AccountSpec]] = field(default=lambda spec: ())

    pki: CityPki | None = None

    def prepare(self) -> list[str]:
        """The city's PKI, then missing data directories; the ids of the nodes created."""
        self.pki = federation_pki(self.topology)
        return [spec.node_id for spec in self.topology.nodes
                if prepare_node(spec, self.topology, self.pki.ca, self.accounts(spec))]

    def _spawn(self, spec: NodeSpec) -> Member:
        log_path = spec.data_dir / LOG_FILE
        with open(log_path, "a", encoding="utf-8") as log:
            proc = subprocess.Popen(
                [*govnet_command(), "node", "serve", str(spec.data_dir)],
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
                env={**_clean_environment(), "PYTHONUNBUFFERED": "1", **node_environment(spec, self.topology)},
                start_new_session=True,
            )
        return Member(spec, proc, log_path)

    def start(self, timeout: float = 60.0, on_started: Callable[[Member], None] | None = None) -> None:
        """Start every node, parents' level first; on any failure stop what started and raise."""
        levels = sorted({spec.level.rank for spec in self.topology.nodes})
        try:
            for rank in levels:
                batch = [self._spawn(spec) for spec in self.topology.nodes if spec.level.rank == rank]
                for member in batch:
                    self.members[member.spec.node_id] = member
                deadline = time.monotonic() + timeout
                for member in batch:
                    found = read_banner(member.proc, SERVING, max(0.1, deadline - time.monotonic()))
                    if found is None:
                        raise LaunchError(f"node {member.spec.node_id} did not start: "
                                          f"{_last_line(member.log_path) or 'no output'} (log: {member.log_path})")
                    if on_started is not None:
                        on_started(member)
        except BaseException:
            self.stop()
            raise

    def stop_node(self, node_id: str, wait: float = STOP_WAIT_S) -> int:
        """Stop one node the way ``stop`` stops them all (SIGTERM, bounded wait, SIGKILL)."""
        member = self.members[node_id]
        stop_process(member.proc, wait)
        member.reported = True  # stopped on purpose: not an unexpected exit
        if member.proc.stdout is not None:
            member.proc.stdout.close()
        return int(member.proc.returncode)

    def start_node(self, node_id: str, timeout: float = 60.0) -> Member:
        """Start one node again (on the data it left) and wait for its banner."""
        old = self.members.get(node_id)
        if old is not None and old.alive():
            raise LaunchError(f"node {node_id} is already running (pid {old.proc.pid})")
        spec = self.topology.get(node_id)
        if spec is None:
            raise LaunchError(f"node {node_id} is not in {self.topology.path}")
        member = self._spawn(spec)
        self.members[node_id] = member
        if read_banner(member.proc, SERVING, timeout) is None:
            raise LaunchError(f"node {node_id} did not start: {_last_line(member.log_path) or 'no output'}")
        return member

    def exited(self) -> list[Member]:
        """Nodes that ended on their own since the last call (each reported once)."""
        out = []
        for member in self.members.values():
            if not member.alive() and not member.reported:
                member.reported = True
                out.append(member)
        return out

    def stop(self, wait: float = STOP_WAIT_S) -> dict[str, int]:
        """SIGTERM to every node, a bounded wait, SIGKILL for the rest; each node's exit code
        (negative: the signal that ended it)."""
        for member in self.members.values():
            if member.alive():
                member.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + wait
        for member in self.members.values():
            try:
                member.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                member.proc.kill()
                member.proc.wait(10)
        for member in self.members.values():
            if member.proc.stdout is not None:
                member.proc.stdout.close()
        return {node_id: int(m.proc.returncode) for node_id, m in self.members.items()}


# --- govnet status ---


def read_status(client: httpx.Client, spec: NodeSpec) -> dict[str, Any] | None:
    """A node's /status, or None when it does not answer (or answers nonsense)."""
    try:
        reply = client.get(f"http://{spec.http}/status")
        reply.raise_for_status()
        body = reply.json()
    except (httpx.HTTPError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def read_statuses(topology: Topology, timeout: float = 2.0, workers: int = 32) -> dict[str, dict[str, Any] | None]:
    with httpx.Client(timeout=timeout) as client, ThreadPoolExecutor(max_workers=workers) as pool:
        replies = pool.map(lambda spec: read_status(client, spec), topology.nodes)
        return {spec.node_id: reply for spec, reply in zip(topology.nodes, replies)}


def _age(seconds: float) -> str:
    if seconds < 1:
        return "0s"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


def status_line(spec: NodeSpec, status: dict[str, Any] | None) -> str:
    """One node's line: health, its up-link's lag, what waits for its children, alarms."""
    head = f"{spec.node_id} {spec.name} {spec.level.value}" if spec.name else f"{spec.node_id} {spec.level.value}"
    if status is None:
        return f"{head}  DOWN  no answer at http://{spec.http}/status"
    if status.get("node") != spec.node_id:
        return f"{head}  WRONG  http://{spec.http} answers as node {status.get('node')}; fix the topology"
    parts = [head, " " + ("serving" if status.get("ready") else f"not ready ({status.get('reason', '')})")]
    links = status.get("links", [])
    for link in links:
        if link["direction"] == "up":
            parts.append(f"  up {link['health']}, outbox {link['outbox_depth']}, oldest {_age(link['oldest_age_s'])}")
    down = [link for link in links if link["direction"] == "down"]
    if down:
        waiting = sum(link["outbox_depth"] for link in down)
        oldest = max(link["oldest_age_s"] for link in down)
        quiet = sum(1 for link in down if link["health"] != "connected")
        parts.append(f"  children {len(down)} ({quiet} not connected), outbox {waiting}, oldest {_age(oldest)}")
    parts.append(f"  alarms {status.get('open_alarms', 0)}")
    if status.get("overdue"):
        parts.append(f"  overdue {status['overdue']}")
    return "".join(parts)


def format_status(topology: Topology, statuses: dict[str, dict[str, Any] | None]) -> str:
    """The tree, one line per node, children indented under their parent."""
    lines = []
    for depth, spec in topology.walk():
        lines.append("  " * depth + status_line(spec, statuses.get(spec.node_id)))
    down = sum(1 for s in statuses.values() if s is None)
    lines.append(f"\n{len(statuses) - down} of {len(statuses)} nodes answering" + (f", {down} down" if down else ""))
    return "\n".join(lines)


def down_nodes(statuses: dict[str, dict[str, Any] | None]) -> Sequence[str]:
    return [node_id for node_id, status in statuses.items() if status is None]


__all__ = ["Federation", "LaunchError", "Member", "TopologyError", "format_status", "read_statuses"]
