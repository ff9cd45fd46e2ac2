"""``govnet demo``: the 15-node federation's working day, run as a user runs it.

One real run (the command as a process); the checks are what a newcomer reads in its
output, then the data it leaves behind (read with plain ``sqlite3``) and that nothing
is left running.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from govnet.ops.processes import govnet_command
from govnet.ops.topology import load_topology

from support.helpers import every_case, store_of

pytestmark = pytest.mark.slow


def test_the_demo_runs_a_day_of_the_federation_and_stops_every_node(tmp_path: Path) -> None:
    done = subprocess.run([*govnet_command(), "demo", "--dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=240, check=False)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "15 nodes serving: 1 city, 2 counties, 4 townships, 8 villages" in out
    assert "in force at every node" in out
    assert "township 371102002 is cut off" in out
    assert "township 371102002 reconnected: its villages' backlog drained" in out
    paper = next((line for line in out.splitlines() if "paper applications" in line), "(no paper line)")
    assert re.search(r"3 paper applications .* back-filled at township \d+: past their due dates, 3 red cards", paper), (
        paper + "\n" + "".join(line + "\n" for line in out.splitlines() if "refused" in line))
    assert re.search(r"evaluations: .*dissatisfied 1", out)
    assert re.search(r"complaint filed: \S+ about 371102002\d{3}-", out)
    assert "refused calls" not in out  # the clerks only do what each case allows
    assert "the city's rollup has everything" in out
    assert "覆盖：已知 15 个节点，15 个已上报" in out
    assert "15 of 15 nodes answering" in out and "DOWN" not in out
    assert "15 of 15 nodes stopped cleanly" in out
    # The consoles a newcomer clicks through, with the accounts; no terminal here, so the demo ended by itself.
    assert "consoles (HTTPS" in out
    for level, node_id in (("city", "371100"), ("township", "371101001"), ("village", "371101001201")):
        assert re.search(rf"^  {level}\s+{node_id}\s+https://127\.0\.0\.1:\d+/  log in as ", out, re.MULTILINE), level
    assert "keeps serving" not in out
    # The rollup table has a row per level and the total.
    for level in ("city", "county", "township", "village", "total"):
        assert re.search(rf"^{level}\s+\d+", out, re.MULTILINE), level

    topology = load_topology(tmp_path / "topology.toml")
    assert len(topology.nodes) == 15
    for spec in topology.nodes:  # every node has stopped: nothing answers any more
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{spec.http}/healthz", timeout=2)
    # Every case submitted at a village is owned by exactly one node of the federation.
    received: dict[str, int] = {}
    for spec in topology.nodes:
        # The demo has stopped every node: what they stored is read back through their stores.
        with store_of(spec.data_dir) as store:
            for case in every_case(store):
                if case.state.owner == spec.node_id:
                    received[case.state.receipt] = received.get(case.state.receipt, 0) + 1
    assert received and set(received.values()) == {1}
    submitted_at_villages = {r for r in received if len(r.split("-")[0]) == 12}
    assert len(submitted_at_villages) >= 40
    # The back-filled cases carry both times and their red cards, at the township that owns them.
    township = next(n for n in topology.nodes if n.node_id == "371101001")
    with store_of(township.data_dir) as store:
        events = {c.state.receipt: store.events(c.state.receipt) for c in every_case(store)}
    overdue = sum(1 for history in events.values() if any(e.action == "overdue" for e in history))
    late = sum(1 for history in events.values() for e in history if e.action == "submit" and e.detail.get("backfilled"))
    assert overdue == 3 and late == 3
