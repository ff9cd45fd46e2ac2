"""Complaints over a real county ← township ← village chain: filed at any node, tracked by the
supervising level with its deadline until resolved, a copy kept by the node complained about
(and by the filing node), bad input refused with nothing written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from govnet.node.domain.calendar import local_date
from govnet.node.rpc.client import ClientError, GovnetClient
from govnet.ops.processes import init_node

from support.accounts import TESTER_ACTOR, start_in_process
from support.helpers import govnet, statistics_settled, store_snapshot, submit, wait_for
from support.inprocess import BackgroundLoop, InProcessNode

S = grpc.StatusCode
FAST = {"flush_interval_s": 0.1, "digest_interval_s": 5.0}
COUNTY, TOWN, VILLAGE = "371102", "371102001", "371102001201"


def held(client: GovnetClient, complaint_id: str):
    return next((c for c in client.complaints().complaints if c.complaint_id == complaint_id), None)


def quiet_snapshot(chain: dict[str, tuple[InProcessNode, GovnetClient]], node_id: str) -> dict[str, tuple[int, str]]:
    """``node_id``'s store once the whole chain is quiet: every ledger has counted what it holds
    and no link between the three has anything waiting, so that comparing it before and after a
    call sees only what the call did (and not a village's statistics still passing through)."""
    for node, _ in chain.values():
        statistics_settled(node.data_dir)

    def drained() -> bool:
        return all(link.outbox_depth == 0 and link.inbox_depth == 0
                   for _, client in chain.values() for link in client.sync_status().links if link.neighbour in chain)

    wait_for(drained, 20, lambda: "the links between the three nodes did not drain")
    return store_snapshot(chain[node_id][0].data_dir)


@pytest.fixture
def chain(loop: BackgroundLoop, tmp_path: Path, sample_catalog) -> Iterator[dict[str, tuple[InProcessNode, GovnetClient]]]:
    """County, township and village on the real clock, the catalog loaded at the county."""
    started: dict[str, tuple[InProcessNode, GovnetClient]] = {}
    parent = "127.0.0.1:1"  # the county's city is not running: the county works offline
    for node_id, level in ((COUNTY, "county"), (TOWN, "township"), (VILLAGE, "village")):
        node = start_in_process(loop, init_node(tmp_path / node_id, node_id, level, parent, sync=FAST))
        started[node_id] = (node, GovnetClient(node.address))
        parent = node.address
    started[COUNTY][1].put_catalog(sample_catalog)
    v = started[VILLAGE][1]
    wait_for(lambda: bool(v.list_items().items), 20, lambda: "catalog did not reach the village")
    yield started
    for node, client in reversed(list(started.values())):
        client.close()
        node.stop()


def test_a_complaint_about_a_case_goes_to_the_owners_parent_and_is_tracked_until_resolved(chain) -> None:
    (county, c), (town, t), (_, v) = chain[COUNTY], chain[TOWN], chain[VILLAGE]
    receipt = submit(v, "MZ-0002", agent="村代办员-李四").case.receipt  # owned by the township
    wait_for(lambda: bool(t.list(limit=5).cases), 20, lambda: "case did not reach the township")
    filed = v.file_complaint("代办员三次让我补材料", receipt=receipt)
    today = local_date(datetime.now(UTC))
    assert (filed.about_node, filed.supervisor, filed.filed_at_node, filed.status) == (TOWN, COUNTY, VILLAGE, "open")
    assert (filed.receipt, filed.item_code, filed.filed_on) == (receipt, "MZ-0002", today.isoformat())
    assert filed.due > filed.filed_on  # 10 working days (exact arithmetic: tests/test_deadlines.py)
    cid = filed.complaint_id
    # Tracked by the county; a copy at the township complained about (its figures count it).
    wait_for(lambda: held(c, cid) is not None and held(t, cid) is not None, 20, lambda: "complaint did not arrive")
    assert held(c, cid).due == filed.due and held(t, cid).about_node == TOWN

    before = quiet_snapshot(chain, TOWN)
    with pytest.raises(ClientError) as info:
        t.resolve_complaint(cid, resolution="已处理", actor="镇长")
    assert info.value.code is S.FAILED_PRECONDITION and f"tracked by node {COUNTY}" in str(info.value)
    assert store_snapshot(town.data_dir) == before

    out = govnet("complaint", "resolve", cid, "--resolution", "约谈代办员，一次性告知", "--node", county.address)
    assert out.returncode == 0, out.stderr
    assert held(c, cid).status == "resolved"
    wait_for(lambda: held(t, cid).status == "resolved" and held(v, cid).status == "resolved", 20,
             lambda: f"{held(t, cid).status} {held(v, cid).status}")
    assert held(v, cid).resolution == "约谈代办员，一次性告知" and held(t, cid).resolved_by == TESTER_ACTOR  # the signed-in supervisor
    with pytest.raises(ClientError) as info:
        c.resolve_complaint(cid, resolution="again", actor="x")
    assert info.value.code is S.FAILED_PRECONDITION and "already resolved" in str(info.value)


def test_a_complaint_about_a_window_goes_to_that_nodes_parent(chain) -> None:
    (county, _), (town, t), (_, v) = chain[COUNTY], chain[TOWN], chain[VILLAGE]
    out = govnet("complaint", "file", "--text", "窗口无人", "--about", VILLAGE, "--department", "民政办",
              "--node", county.address, "--json")
    assert out.returncode == 0, out.stderr
    filed = json.loads(out.stdout)
    assert (filed["supervisor"], filed["about_node"], filed["department"]) == (TOWN, VILLAGE, "民政办")
    cid = filed["complaint_id"]
    assert cid.startswith(f"{COUNTY}-")
    wait_for(lambda: held(t, cid) is not None and held(v, cid) is not None, 20, lambda: "complaint did not arrive")
    listing = govnet("complaint", "list", "--status", "open", "--node", town.address)
    assert listing.returncode == 0 and cid in listing.stdout and "民政办" in listing.stdout
    assert [x.complaint_id for x in v.complaints(about_node=VILLAGE).complaints] == [cid]


@pytest.mark.parametrize("kwargs, code, fragment", [
    ({"text": " "}, S.INVALID_ARGUMENT, "what the complaint is about"),
    ({"text": "x"}, S.INVALID_ARGUMENT, "give exactly one"),
    ({"text": "x", "receipt": "371102-01-000001-3", "about_node": TOWN}, S.INVALID_ARGUMENT, "give exactly one"),
    ({"text": "x", "receipt": "371102-01-000001-0"}, S.INVALID_ARGUMENT, "check digit"),
    ({"text": "x", "receipt": "371102-01-000001-3"}, S.NOT_FOUND, "does not know case"),
    ({"text": "x", "about_node": "37110"}, S.INVALID_ARGUMENT, "malformed"),
    ({"text": "x", "about_node": "381100", "department": "d"}, S.INVALID_ARGUMENT, "not in this network"),
    ({"text": "x", "about_node": TOWN}, S.INVALID_ARGUMENT, "give the department"),
])
def test_bad_complaints_are_refused_with_nothing_written(make_node, kwargs, code, fragment) -> None:
    town, t = make_node(TOWN, "township")
    before = store_snapshot(town.data_dir)
    text = kwargs.pop("text")
    with pytest.raises(ClientError) as info:
        t.file_complaint(text, **kwargs)
    assert info.value.code is code, f"{info.value.code.name}: {info.value}"
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert store_snapshot(town.data_dir) == before


def test_resolving_an_unknown_complaint_is_one_line_and_writes_nothing(make_node) -> None:
    town, _ = make_node(TOWN, "township")
    before = store_snapshot(town.data_dir)
    out = govnet("complaint", "resolve", "371102001-99", "--resolution", "r", "--node", town.address)
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "no complaint 371102001-99" in out.stderr
    out = govnet("complaint", "file", "--text", "x", "--node", town.address)
    assert out.returncode == 1 and "give exactly one" in out.stderr
    assert store_snapshot(town.data_dir) == before
