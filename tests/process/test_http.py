"""The node's HTTP endpoints: /healthz, /readyz, /status (and /metrics, see test_metrics.py).

Real nodes: in-process for what depends on the store, real processes for the banner, the
port in use and the stop.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess

import httpx
import pytest

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
