"""The node's HTTP port: /healthz, /readyz, /status (and /metrics, see test_metrics.py), and
the rules of its edge (405 with Allow, 404, the time limit, bounded heads and bodies, the head
deadline, no traceback for a malformed request, a start that cannot bind leaving nothing held).

Real nodes: in-process for what depends on the store, real processes for the banner, the
port in use and the stop. The edge's rules are also checked on the same app builder and
server the node uses, served on loopback with test-only routes of their own (a handler that
never finishes, one that fails), so the time limit is met by a real wait, not a mock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
import subprocess
import time

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from govnet.node.process.config import Address, HttpSettings, load_config
from govnet.node.process.http import MAX_CONNECTIONS, HttpServer, bind, build_app
from govnet.node.process.server import StartError, start_node
from govnet.node.store.engine import DB_FILE, schema_head
from govnet.ops.processes import govnet_command, init_node

from support.accounts import spawn_node

pytestmark = pytest.mark.slow


def test_healthz_readyz_and_status_of_a_serving_node(make_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("371102", "county", parent="127.0.0.1:1", http_listen="127.0.0.1:0")
    base = f"http://{node.node.http_address}"
    assert httpx.get(base + "/healthz").json() == {"alive": True}
    ready = httpx.get(base + "/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    status = httpx.get(base + "/status").json()
    assert status["node"] == "371102" and status["level"] == "county"
    assert status["address"] == node.address and status["ready"] is True
    assert [(link["neighbour"], link["direction"]) for link in status["links"]] == [("371100", "up")]
    assert status["links"][0]["health"] != "connected"  # its city does not exist
    assert status["open_alarms"] == 0
    # In March (the test's clock) no year is missing yet; the shipped data covers this one.
    assert status["calendar"]["next_year_missing"] is None and status["calendar"]["provisional_cases"] == 0
    assert status["calendar"]["last_year"] >= 2026
    missing = httpx.get(base + "/nothing-here")
    assert missing.status_code == 404 and "/metrics" in missing.json()["error"]


def test_readyz_says_not_ready_when_the_schema_is_not_at_head(make_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("371100", "city", http_listen="127.0.0.1:0")
    base = f"http://{node.node.http_address}"
    # Storage on purpose: the test puts the store's schema behind the release, then back.
    with sqlite3.connect(node.data_dir / DB_FILE) as db:
        db.execute("UPDATE alembic_version SET version_num = '0003'")
    reply = httpx.get(base + "/readyz")
    assert reply.status_code == 503
    assert reply.json() == {"ready": False, "reason": f"the store's schema is at 0003, this release needs {schema_head()}"}
    assert httpx.get(base + "/healthz").status_code == 200  # alive, just not ready
    with sqlite3.connect(node.data_dir / DB_FILE) as db:
        db.execute("UPDATE alembic_version SET version_num = ?", (schema_head(),))
    assert httpx.get(base + "/readyz").status_code == 200


def test_a_node_process_prints_its_http_address_and_stops_serving_it_on_sigterm(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = init_node(tmp_path / "city", "371100", "city", http_listen="127.0.0.1:0")
    proc = spawn_node(data)
    try:
        assert proc.http is not None and proc.http != proc.address
        assert httpx.get(f"http://{proc.http}/readyz", timeout=5).status_code == 200
        assert proc.terminate() == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{proc.http}/healthz", timeout=2)
    finally:
        if proc.alive():
            proc.kill()


def test_an_http_port_in_use_is_refused_in_one_line_naming_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data = init_node(tmp_path / "city", "371100", "city", http_listen=f"127.0.0.1:{port}")
        done = subprocess.run([*govnet_command(), "node", "serve", str(data)], capture_output=True, text=True,
                              timeout=60, check=False)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("govnet: error: http.listen: cannot listen on"), done.stderr
    assert "serving on" not in done.stdout


# --- the edge: methods, paths, time limits, bind failures (issue #11 point 6) ---------------------

ENDPOINTS = ("/metrics", "/healthz", "/readyz", "/status")


def test_the_read_only_endpoints_answer_405_with_allow_to_every_other_method(make_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("371100", "city", http_listen="127.0.0.1:0", catalog=False)
    with httpx.Client(base_url=f"http://{node.node.http_address}", timeout=5) as http:
        for path in ENDPOINTS:
            for method in ("POST", "PUT", "DELETE", "PATCH", "BREW"):
                reply = http.request(method, path, content=b"x=1")
                assert reply.status_code == 405, (method, path, reply.text)
                assert reply.headers["allow"] == "GET, HEAD"
                assert reply.json() == {"error": f"{method} is not allowed on {path}; use GET, HEAD"}
            head, get = http.head(path), http.get(path)
            assert head.status_code == get.status_code == 200, (path, get.text)
            assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
        # The refusals changed nothing the endpoints report, and /metrics still scrapes.
        assert "govnet_node_info" in http.get("/metrics").text
        for method in ("GET", "POST"):
            missing = http.request(method, "/admin")
            assert missing.status_code == 404
            assert missing.json() == {"error": "no page /admin; try /metrics, /healthz, /readyz, /status"}


@pytest.fixture
def edge_app(loop):  # type: ignore[no-untyped-def]
    """The node's app builder with test routes of our own: one that waits on an event nobody
    sets (so only the time limit can end it), one that fails, one that answers."""
    waits: list[str] = []

    async def forever(request: Request) -> Response:
        waits.append("started")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            waits.append("cancelled")
            raise
        return Response("never")

    async def broken(request: Request) -> Response:
        raise RuntimeError("secret detail of the failure")

    async def fine(request: Request) -> Response:
        return Response("fine")

    app = build_app([Route("/forever", forever), Route("/broken", broken), Route("/fine", fine)],
                    HttpSettings(handler_timeout_s=0.3))
    server = HttpServer(app, bind(Address("127.0.0.1", 0)), HttpSettings(head_deadline_s=0.5))
    loop.run(server.start())
    yield f"http://{server.address}", waits
    loop.run(server.stop(1.0))


def test_a_request_over_the_time_limit_gets_503_and_one_warning_line(edge_app, caplog) -> None:  # type: ignore[no-untyped-def]
    base, waits = edge_app
    with httpx.Client(base_url=base, timeout=5) as http, caplog.at_level(logging.WARNING, logger="govnet.http"):
        began = time.monotonic()
        reply = http.get("/forever")
        took = time.monotonic() - began
        assert http.get("/fine").text == "fine"  # the port still serves
    assert reply.status_code == 503 and 0.3 <= took < 2.0, (reply.status_code, took)
    assert reply.json() == {"error": "no answer within 0.3 s; try again later"}
    assert waits == ["started", "cancelled"]  # the handler did not go on running
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        ("WARNING", "http request over its time limit", None)]


def test_an_unexpected_error_answers_500_without_its_details(edge_app) -> None:  # type: ignore[no-untyped-def]
    base, _ = edge_app
    reply = httpx.get(base + "/broken", timeout=5)
    assert reply.status_code == 500
    assert reply.json() == {"error": "internal error; see the node's log"}
    assert "secret" not in reply.text and "Traceback" not in reply.text


def test_a_request_head_or_body_over_the_limit_is_refused(edge_app) -> None:  # type: ignore[no-untyped-def]
    base, _ = edge_app
    with httpx.Client(base_url=base, timeout=5) as http:
        assert http.get("/fine", headers={"X-Filler": "a" * 8_000}).status_code == 200
        whole = http.get("/fine", headers={"X-Filler": "a" * 20_000})
        assert whole.status_code == 431
        assert whole.json() == {"error": "the request's line and headers exceed 16384 bytes"}
        assert http.post("/fine", content=b"a" * 100_000).status_code == 413  # a body over 64 KiB
    # A head that trickles in is cut off by h11 once its buffer passes the limit.
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"GET /fine HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 20_000)
        answer = raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"Traceback" not in answer


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _nothing_holds(port: int) -> bool:
    """Nobody listens on ``port`` and it can be bound again (no server, started or not, holds it)."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_start_that_cannot_bind_either_port_leaves_nothing_listening(tmp_path, loop) -> None:  # type: ignore[no-untyped-def]
    grpc_port, http_port = _free_port(), _free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        # The HTTP port is in use: the gRPC port was never bound.
        city = init_node(tmp_path / "city", "371100", "city", listen=f"127.0.0.1:{grpc_port}",
                         http_listen=f"127.0.0.1:{busy}")
        with pytest.raises(StartError, match=rf"^http.listen: cannot listen on 127.0.0.1:{busy}: "):
            loop.run(start_node(load_config(city)))
        assert _nothing_holds(grpc_port)
        # The gRPC port is in use: the HTTP socket bound first is let go.
        county = init_node(tmp_path / "county", "371102", "county", "127.0.0.1:1", listen=f"127.0.0.1:{busy}",
                           http_listen=f"127.0.0.1:{http_port}")
        with pytest.raises(StartError, match=rf"^node.listen: cannot listen on 127.0.0.1:{busy}"):
            loop.run(start_node(load_config(county)))
        assert _nothing_holds(http_port)
    # Both ports free now: the same node starts on them, and stops.
    node = loop.run(start_node(load_config(city)))
    try:
        assert node.http_address == f"127.0.0.1:{busy}"
        assert httpx.get(f"http://{node.http_address}/healthz", timeout=5).json() == {"alive": True}
    finally:
        loop.run(node.stop(grace=1.0))
    assert _nothing_holds(busy) and _nothing_holds(grpc_port)


def test_silent_and_trickling_connections_are_closed_at_the_head_deadline(edge_app) -> None:  # type: ignore[no-untyped-def]
    base, _ = edge_app
    host, port = base.removeprefix("http://").rsplit(":", 1)
    crowd = [socket.create_connection((host, int(port)), timeout=5) for _ in range(MAX_CONNECTIONS)]
    try:
        crowd[0].sendall(b"GET /fine HTTP/1.1\r\n")  # a head begun and never finished
        with httpx.Client(base_url=base, timeout=5) as http:
            assert http.get("/fine").status_code == 503  # every connection is taken
            began = time.monotonic()
            for sock in crowd:
                assert sock.recv(1024) == b""  # closed by the node
            assert time.monotonic() - began < 2.0
            assert http.get("/fine").text == "fine"
    finally:
        for sock in crowd:
            sock.close()


def _raw(base: str, request: bytes) -> bytes:
    """What the port answers to ``request`` sent as raw bytes (to the connection's close)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    answer = b""
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(request)
        while chunk := raw.recv(65536):
            answer += chunk
    return answer


def test_malformed_requests_get_a_short_answer_and_leave_no_traceback(edge_app, caplog) -> None:  # type: ignore[no-untyped-def]
    base, _ = edge_app
    with caplog.at_level(logging.DEBUG):
        bad_byte = _raw(base, b"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n")
        bad_chunk = _raw(base, b"GET /fine HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        long_path = _raw(base, b"GET /" + b"a" * 5_000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert bad_byte.startswith(b"HTTP/1.1 400 ") and bad_chunk.startswith(b"HTTP/1.1 400 ")
    assert long_path.startswith(b"HTTP/1.1 404 ")
    body = long_path.split(b"\r\n\r\n", 1)[1]
    assert json.loads(body) == {"error": f"no page /{'a' * 59}…; try /forever, /broken, /fine"}
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
