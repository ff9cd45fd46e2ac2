"""What the raw-limit servers of the benchmarks share: a bare SQLite file with the node's
durability, a bare grpc.aio server that runs until told (or orphaned, or out of time), and
starting one as its own process.

A benchmark's raw limit must differ from the node only in doing no domain work, so the
database pragmas and the gRPC server options here are the node's own.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from govnet.ops.processes import read_banner, stop_process


def open_raw_db(path: Path, schema: str) -> sqlite3.Connection:
    """One connection with the node's pragmas (see ``node.store.engine._set_pragmas``); the
    caller issues BEGIN and COMMIT itself."""
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute(schema)
    return conn


TLS_ENV = "GOVNET_RAW_TLS"  # a folder like a node's tls/ (node.key, node.crt, ca.crt): serve mutual TLS


async def serve_until_stopped(handler: grpc.GenericRpcHandler, listen: str, max_seconds: float, banner: str) -> None:
    """Serve ``handler`` and print ``banner`` followed by the bound address; stop on SIGTERM or
    SIGINT, when the parent process goes away, or after ``max_seconds``. With ``$GOVNET_RAW_TLS``
    it serves mutual TLS exactly as a node does (client certificate required), so the raw limit
    pays for the same handshakes and encryption."""
    from govnet.node.process.build import SERVER_OPTIONS  # the node's exact server options

    server = grpc.aio.server(options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    tls = os.environ.get(TLS_ENV)
    if tls:
        folder = Path(tls)
        credentials = grpc.ssl_server_credentials(
            [((folder / "node.key").read_bytes(), (folder / "node.crt").read_bytes())],
            root_certificates=(folder / "ca.crt").read_bytes(), require_client_auth=True)
        port = server.add_secure_port(listen, credentials)
    else:
        port = server.add_insecure_port(listen)
    if port == 0:
        raise SystemExit(f"{banner.strip()}: cannot listen on {listen}")
    await server.start()
    print(f"{banner}{listen.rpartition(':')[0]}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent, deadline = os.getppid(), time.monotonic() + max_seconds
    while not stop.is_set() and os.getppid() == parent and time.monotonic() < deadline:
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            pass
    await server.stop(1.0)


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    address: str

    def stop(self, timeout: float = 10.0) -> None:
        stop_process(self.proc, timeout)


def spawn_server(module_args: list[str], banner: str, log_path: Path, timeout: float = 20.0,
                 tls: Path | None = None) -> ServerProcess:
    """Run ``python -m MODULE ARGS…`` and wait until it prints ``banner`` and its address
    (``tls``: its certificate folder, to serve mutual TLS)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop(TLS_ENV, None)
    if tls is not None:
        env[TLS_ENV] = str(tls)
    with open(log_path, "a") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([sys.executable, "-m", *module_args], stdout=subprocess.PIPE, stderr=log,
                                text=True, env=env)
    found = read_banner(proc, re.compile(re.escape(banner) + r"(\S+)"), timeout)
    if found:
        return ServerProcess(proc, found.group(1))
    proc.kill()
    proc.wait(5)
    raise RuntimeError(f"{' '.join(module_args)} did not start: {log_path.read_text()[-2000:]}")
