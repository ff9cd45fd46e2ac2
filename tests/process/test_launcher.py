"""Topology files, ``govnet up`` and ``govnet status``.

The topology parser is tested table-driven; the launcher runs as a real ``govnet up``
process that starts real node processes, is stopped with SIGTERM and SIGINT, and is
checked through ``govnet status`` (HTTP) and the nodes' SQLite files.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from govnet.node.rpc.client import GovnetClient
from govnet.node.store import links, outbox
from govnet.ops.processes import free_ports, govnet_command
from govnet.ops.topology import TopologyError, city_topology, dump_topology, parse_topology

from support.accounts import sign_in_tester
from support.helpers import SAMPLE, govnet, store_of, submit

HERE = Path("/srv/fed/topology.toml")


def doc(*nodes: str, defaults: str = "") -> str:
    return defaults + "\n".join(f"[[node]]\n{n}\n" for n in nodes)


CITY = 'id = "371100"\nlisten = "127.0.0.1:51000"\nhttp = "127.0.0.1:52000"'
COUNTY = 'id = "371102"\nlisten = "127.0.0.1:51001"\nhttp = "127.0.0.1:52001"'
TOWN = 'id = "371102001"\nlisten = "127.0.0.1:51002"\nhttp = "127.0.0.1:52002"'


def test_a_topology_orders_parents_first_and_reads_parent_addresses_from_the_file() -> None:
    topo = parse_topology(doc(TOWN, COUNTY, CITY, defaults='[defaults]\nsync = { flush_interval_s = 0.2 }\n'), HERE)
    assert [n.node_id for n in topo.nodes] == ["371100", "371102", "371102001"]
    city, county, town = topo.nodes
    assert city.parent_address is None and str(county.parent_address) == "127.0.0.1:51000"
    assert str(town.parent_address) == "127.0.0.1:51001" and town.parent_id == "371102"
    assert town.data_dir == Path("/srv/fed/data/371102001")  # relative to the file
    assert topo.settings == {"sync": {"flush_interval_s": 0.2}}
    assert [(d, n.node_id) for d, n in topo.walk()] == [(0, "371100"), (1, "371102"), (2, "371102001")]


def test_a_node_whose_parent_runs_elsewhere_names_its_address() -> None:
    topo = parse_topology(doc(TOWN + '\nparent = "10.0.0.7:50051"\ndata = "/var/lib/govnet/t"'), HERE)
    assert str(topo.nodes[0].parent_address) == "10.0.0.7:50051"
    assert topo.nodes[0].data_dir == Path("/var/lib/govnet/t")


@pytest.mark.parametrize("text, message", [
    (doc(CITY, CITY), "node 371100: listed twice"),
    (doc(COUNTY), "node 371102: its parent 371100 is not in this file; add it, or give parent"),
    (doc(CITY, COUNTY + '\nparent = "127.0.0.1:51000"'), "node 371102: parent 371100 is in this file; remove parent"),
    (doc(CITY.replace("52000", "0")), "node 371100: http: port 0 is not allowed in a topology"),
    (doc(CITY, COUNTY.replace("52001", "51000")), "node 371102: http 127.0.0.1:51000 is already used by node 371100"),
    (doc(CITY.replace('"371100"', '"3711"')), "node 3711: node id 3711 is malformed"),
    (doc(CITY + '\nlevel = "county"'), "node 371100: node id 371100 does not fit level county"),
    (doc(CITY + '\ncolour = "red"'), "node 371100: unknown key 'colour'"),
    (doc(CITY.replace('listen = "127.0.0.1:51000"\n', "")), "node 371100: listen is missing"),
    (doc(CITY, defaults='[defaults]\nsync = { batch_max = 0 }\n'), "defaults.sync.batch_max: 0 is outside 1 … 10000"),
    ("", "no nodes; add a [[node]] table"),
    ("[[node]\n", "not valid TOML"),
])
def test_a_bad_topology_is_refused_in_one_line_naming_node_and_key(text: str, message: str) -> None:
    with pytest.raises(TopologyError) as info:
        parse_topology(text, HERE)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith(str(HERE))


def test_a_generated_city_has_1911_nodes_on_distinct_ports_and_loads() -> None:
    document = city_topology()
    topo = parse_topology(dump_topology(document), HERE)
    assert len(topo.nodes) == 1911
    levels = [n.level.value for n in topo.nodes]
    assert (levels.count("city"), levels.count("county"), levels.count("township"), levels.count("village")) == (
        1, 10, 100, 1800)
    ports = [a.port for n in topo.nodes for a in (n.listen, n.http)]
    assert len(set(ports)) == len(ports)
    with pytest.raises(TopologyError, match="need .* ports"):
        city_topology(first_port=64000)


# --- govnet up / govnet status, real processes ---


def start_up(topology: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """Run 'govnet up' and read its output until every node is up."""
    proc = subprocess.Popen([*govnet_command(), "up", str(topology)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if "nodes up" in line:
            return proc, lines
    proc.kill()
    raise AssertionError(f"govnet up did not come up: {lines} {proc.stderr.read() if proc.stderr else ''}")


def pids(lines: list[str]) -> list[int]:
    return [int(m.group(1)) for line in lines if (m := re.search(r"pid (\d+)", line))]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie waiting for its (exited) parent to be reaped also counts as stopped.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] == "Z"


@pytest.mark.slow
def for_the_city(county_dir: Path) -> set[tuple[int, str]]:
    """(link position, case key) of what the county's outbox holds for the city."""
    with store_of(county_dir) as store, store.reading() as s:
        return {(e.seq, e.case_key) for e in outbox.pending(s, "371100")}


def test_up_starts_the_tree_status_reads_it_and_sigterm_stops_it_with_outboxes_kept(tmp_path: Path) -> None:
    county_port, county_http, town_port, town_http, absent_city = free_ports(5)
    topology = tmp_path / "fed.toml"
    topology.write_text(doc(
        f'id = "371102"\nlisten = "127.0.0.1:{county_port}"\nhttp = "127.0.0.1:{county_http}"\n'
        f'parent = "127.0.0.1:{absent_city}"',
        f'id = "371102001"\nlisten = "127.0.0.1:{town_port}"\nhttp = "127.0.0.1:{town_http}"',
        defaults='[defaults]\nsync = { flush_interval_s = 0.1 }\n'))
    proc, lines = start_up(topology)
    try:
        assert any(line.startswith("initialised 371102 ") for line in lines)
        assert len(pids(lines)) == 2
        for node_id, port in (("371102", county_port), ("371102001", town_port)):  # the operator's first account
            sign_in_tester(tmp_path / "data" / node_id, f"127.0.0.1:{port}")
        with GovnetClient(f"127.0.0.1:{county_port}") as county:
            county.put_catalog(SAMPLE)  # the city's catalog, loaded at the top of this tree
        with GovnetClient(f"127.0.0.1:{town_port}") as town:
            deadline = time.monotonic() + 30
            while not town.list_items().releases and time.monotonic() < deadline:
                time.sleep(0.1)  # the catalog flows down with the township's next exchange
            receipts = [submit(town, "SJ-0002").case.receipt for _ in range(3)]
        county_dir = tmp_path / "data" / "371102"
        deadline = time.monotonic() + 30
        waiting = 0
        while time.monotonic() < deadline:
            # The outbox that holds the absent city's share, and the summaries the county keeps.
            queued = for_the_city(county_dir)
            with store_of(county_dir) as county_store, county_store.reading() as s:
                held = len(links.summaries_from(s, ""))
            waiting = len(queued)
            if held == len(receipts) and waiting >= len(receipts):
                break
            time.sleep(0.2)
        assert waiting >= len(receipts)  # summaries for the city, which is not running

        shown = govnet("status", str(topology))
        assert shown.returncode == 0, shown.stdout + shown.stderr
        tree = shown.stdout.splitlines()
        assert tree[0].startswith("371102 county serving") and "up " in tree[0]
        assert tree[1].startswith("  371102001 township serving  up connected")
        assert "2 of 2 nodes answering" in shown.stdout

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    assert "2 nodes stopped" in out and "killed" not in out
    assert all(gone(pid) for pid in pids(lines))
    kept = for_the_city(county_dir)  # kept across the stop
    assert queued <= kept and set(receipts) <= {key for _, key in kept}

    down = govnet("status", str(topology))
    assert down.returncode == 3
    assert f"371102001 township  DOWN  no answer at http://127.0.0.1:{town_http}/status" in down.stdout
    assert "0 of 2 nodes answering, 2 down" in down.stdout

    # Again, on the data it left: nothing is initialised twice; Ctrl-C (SIGINT) stops it too.
    proc, lines = start_up(topology)
    try:
        assert not any(line.startswith("initialised") for line in lines)
        with GovnetClient(f"127.0.0.1:{town_port}") as town:
            assert [town.get(r).receipt for r in receipts] == receipts
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0 and all(gone(pid) for pid in pids(lines))


def test_up_refuses_a_bad_topology_in_one_line(tmp_path: Path) -> None:
    topology = tmp_path / "fed.toml"
    topology.write_text(doc(COUNTY))
    done = govnet("up", str(topology))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        (f"govnet: error: {topology.resolve()}: node 371102: its parent 371100 is not in this file; "
         'add it, or give parent = "HOST:PORT"')]
    assert not (tmp_path / "data").exists()  # nothing written
