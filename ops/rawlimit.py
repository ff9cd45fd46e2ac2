"""The raw limit of this machine for one durable intake: a bare gRPC call + one SQLite insert.

This is the yardstick ``govnet bench intake`` compares the node with. It serves ONE
unary method, registered under the node's own path ``/govnet.v1.CaseService/Submit``,
so the benchmark's client code (the generated ``CaseServiceStub``, the same channels,
the same request messages) is byte-for-byte identical for both runs. The handler:

* takes the request as raw bytes (no deserializer: parsing is work the node must do
  but the raw limit does not),
* inserts those bytes into one table of a SQLite file opened with exactly the node's
  durability pragmas (``journal_mode=WAL``, ``synchronous=FULL``, ``foreign_keys=ON``,
  ``busy_timeout``), committing once per call, so every acknowledged call has been
  fsynced to the WAL just like an acknowledged case,
* does that in a worker thread (``asyncio.to_thread``) on one connection guarded by a
  lock, the same threading shape as ``Store.transaction()`` (one writer, a Python
  lock, blocking sqlite3 work off the event loop),
* answers a ``SubmitCaseResponse`` whose case carries a receipt (``raw-<rowid>``), so
  the client can check the answer the same way it checks the node's.

The server runs with the node's ``SERVER_OPTIONS`` in its own process (the same Python
as the node), like the node does. It stops on SIGTERM/SIGINT, when its parent process
goes away, or after ``--max-seconds`` at the latest, so a crashed benchmark never
leaves it behind.

Run: ``python -m ops.rawlimit DB_FILE [--listen 127.0.0.1:0] [--max-seconds 600]``;
it prints ``raw limit serving on HOST:PORT`` once it accepts calls.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import threading
from pathlib import Path

import grpc

from govnet.ops.rawserver import ServerProcess, open_raw_db, serve_until_stopped, spawn_server
from govnet.v1 import cases_pb2

SERVICE = "govnet.v1.CaseService"
METHOD = "Submit"
BANNER = "raw limit serving on "
DEFAULT_MAX_SECONDS = 600.0

SCHEMA = "CREATE TABLE IF NOT EXISTS submission (id INTEGER PRIMARY KEY, body BLOB NOT NULL)"


class RawWriter:
    """One connection, one lock, one committed insert per call."""

    def __init__(self, path: Path) -> None:
        self.conn = open_raw_db(path, SCHEMA)
        self.lock = threading.Lock()

    def insert(self, body: bytes) -> int:
        with self.lock:
            self.conn.execute("BEGIN")
            cur = self.conn.execute("INSERT INTO submission (body) VALUES (?)", (body,))
            self.conn.execute("COMMIT")
            rowid = cur.lastrowid
        assert rowid is not None
        return rowid

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def make_handler(writer: RawWriter) -> grpc.GenericRpcHandler:
    async def submit(request: bytes, context: grpc.aio.ServicerContext) -> cases_pb2.SubmitCaseResponse:
        rowid = await asyncio.to_thread(writer.insert, request)
        return cases_pb2.SubmitCaseResponse(case=cases_pb2.Case(receipt=f"raw-{rowid}", status="received"))

    method: grpc.RpcMethodHandler[bytes, cases_pb2.SubmitCaseResponse] = grpc.unary_unary_rpc_method_handler(
        submit,
        request_deserializer=None,  # raw bytes in
        response_serializer=cases_pb2.SubmitCaseResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(SERVICE, {METHOD: method})


async def serve(db: Path, listen: str, max_seconds: float) -> None:
    writer = RawWriter(db)
    try:
        await serve_until_stopped(make_handler(writer), listen, max_seconds, BANNER)
    finally:
        writer.close()


def count_rows(db: Path) -> int:
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute("SELECT count(*) FROM submission").fetchone()[0]
    finally:
        conn.close()


def spawn_raw(db: Path, max_seconds: float = DEFAULT_MAX_SECONDS, timeout: float = 20.0,
              tls: Path | None = None) -> ServerProcess:
    """Start the raw-limit server as its own process and wait until it serves (``tls``: its
    certificate folder, to serve mutual TLS like the node)."""
    return spawn_server(["govnet.ops.rawlimit", str(db), "--max-seconds", str(max_seconds)], BANNER,
                        db.parent / "rawlimit.stderr.log", timeout, tls=tls)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ops.rawlimit", description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.db, args.listen, args.max_seconds))


if __name__ == "__main__":
    main()
