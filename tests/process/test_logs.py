"""Logs are JSON lines: one event per line, with the node id, and the receipt number or the
link where one is involved; the level comes from the configuration.

Two real processes, a city and its county; their stderr files are read line by line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from govnet.node.rpc.client import GovnetClient
from govnet.ops.processes import free_port, init_node

from support.accounts import spawn_node
from support.helpers import SAMPLE, submit

pytestmark = pytest.mark.slow


def events(path: Path) -> list[dict[str, Any]]:
    """Every line of a node's log, each parsed on its own (one that is not JSON fails the test)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines, f"{path} is empty"
    return [json.loads(line) for line in lines]


def test_every_line_is_one_json_event_with_the_node_id_receipt_and_link(tmp_path: Path) -> None:
    port = free_port()
    city_dir = init_node(tmp_path / "city", "371100", "city", listen=f"127.0.0.1:{port}")
    county_dir = init_node(tmp_path / "county", "371102", "county", parent=f"127.0.0.1:{port}",
                           log_level="warning", sync={"flush_interval_s": 0.1})
    city = spawn_node(city_dir, env={"GOVNET_LOG_LEVEL": "debug"})
    county = spawn_node(county_dir)
    try:
        with GovnetClient(city.address) as client:
            client.put_catalog(SAMPLE)
            receipt = submit(client, "WJ-0001").case.receipt  # a city item, submitted at the city
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(e.get("msg") == "child registered" for e in events(city.stderr_path)):
                break
            time.sleep(0.1)
    finally:
        assert city.terminate() == 0 and county.terminate() == 0

    city_log = events(city.stderr_path)
    assert all(e["node"] == "371100" for e in city_log)
    assert all({"ts", "level", "msg", "logger"} <= e.keys() for e in city_log)
    assert {e["level"] for e in city_log} >= {"debug", "info"}
    rpc = [e for e in city_log if e.get("receipt") == receipt]
    assert rpc and rpc[0]["method"] == "Submit" and rpc[0]["code"] == "OK"
    registered = [e for e in city_log if e["msg"] == "child registered"]
    assert [e["link"] for e in registered] == ["371102"]
    # The node's own lines: serving and stopping (and, from 1 November while next year's
    # holiday schedule is not published, one start-up warning saying so).
    lines = [(e["level"], e["msg"]) for e in city_log if e["logger"] == "govnet.node"]
    assert [m for lvl, m in lines if not m.startswith("calendar:")] == ["serving", "stopping"]
    assert all(lvl == "warning" for lvl, m in lines if m.startswith("calendar:"))

    # The county's level is "warning" in its file: its start and stop (info) are not logged.
    county_log = county.stderr_path.read_text(encoding="utf-8").splitlines()
    assert all(json.loads(line)["level"] in ("warning", "error") for line in county_log)
