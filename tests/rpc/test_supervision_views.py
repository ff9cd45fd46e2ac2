"""What a city sees of its whole tree (issue #13, point 9), over a real city ← county ← township
chain: a complaint about the township and a rectification the township must make (opened by an
applicant's dissatisfied rating) both reach the city, which is two levels up and neither
supervises the township nor holds the case; the rectification leaves the city's alarms once
the township closes it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from govnet.federation.tree import Level
from govnet.node.app.supervision import apply_rectification
from govnet.node.domain.messages import RectificationMessage
from govnet.node.rpc.client import GovnetClient
from govnet.node.store.engine import Store
from govnet.node.store.models import Rectification
from govnet.node.store.supervision import open_rectifications

from support.accounts import start_in_process
from support.helpers import CHIEF, CLERK, govnet, submit, wait_for
from support.inprocess import BackgroundLoop, InProcessNode, in_process_nodes
from support.stores import create_store

CITY, COUNTY, TOWN = "371100", "371102", "371102001"


@pytest.fixture
def nodes(loop: BackgroundLoop, tmp_path: Path) -> Iterator[Callable[..., InProcessNode]]:
    yield from in_process_nodes(loop, tmp_path, {"flush_interval_s": 0.1, "digest_interval_s": 5.0},
                                start=start_in_process)


def alarms(address: str) -> list[dict]:
    out = govnet("alarms", "--open", "--json", "--node", address)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout).get("alarms", [])


def rectifications(address: str) -> list[dict]:
    return [a for a in alarms(address) if a["kind"] == "rectification"]


def test_the_city_sees_a_townships_complaint_and_open_rectification(nodes, sample_catalog) -> None:
    city = nodes(CITY, "city")
    county = nodes(COUNTY, "county", city.address)
    town = nodes(TOWN, "township", county.address)
    with GovnetClient(city.address) as c, GovnetClient(town.address) as t:
        c.put_catalog(sample_catalog)
        wait_for(lambda: bool(t.list_items().items), 30, lambda: "catalog did not reach the township")

        # A complaint about the township's window: tracked by the county, seen at the city.
        filed = t.file_complaint("窗口无人", about_node=TOWN, department="民政办")
        assert filed.supervisor == COUNTY
        wait_for(lambda: any(x.complaint_id == filed.complaint_id for x in c.complaints().complaints), 30,
                 lambda: "the complaint did not reach the city")
        listing = govnet("complaint", "list", "--node", city.address)
        assert listing.returncode == 0, listing.stderr
        assert filed.complaint_id in listing.stdout and TOWN in listing.stdout and "民政办" in listing.stdout
        # Drilled down: about the county or below has it, about another county does not.
        assert [x.complaint_id for x in c.complaints(about_node=COUNTY).complaints] == [filed.complaint_id]
        assert list(c.complaints(about_node="371103").complaints) == []

        # A case the township decides and delivers; the applicant rates it dissatisfied.
        submitted = submit(t, "MZ-0002")
        receipt, code = submitted.case.receipt, submitted.rating_code
        for action, actor in (("accept", CLERK), ("review", CLERK), ("approve", CHIEF), ("complete", CLERK),
                              ("deliver", CLERK)):
            t.act(receipt, action, actor=actor)
        with GovnetClient(town.address, token="") as applicant:
            rated = applicant.evaluate(receipt, "dissatisfied", "等太久", rating_code=code)
        assert rated.rectification_due

        wait_for(lambda: [a["receipt"] for a in rectifications(city.address)] == [receipt], 30,
                 lambda: f"the city's alarms: {alarms(city.address)}")
        (seen,) = rectifications(city.address)
        assert (seen["owner"], seen["due"], seen["item_code"], seen["card"]) == (TOWN, rated.rectification_due,
                                                                                 "MZ-0002", "yellow")
        assert [a["receipt"] for a in rectifications(county.address)] == [receipt]
        assert [a.receipt for a in c.alarms(about_node=COUNTY).alarms if a.kind == "rectification"] == [receipt]
        assert list(c.alarms(about_node="371103").alarms) == []
        assert [a["receipt"] for a in rectifications(town.address)] == [receipt]  # the owner lists its own too
        shown = govnet("alarms", "--node", city.address)
        assert shown.returncode == 0 and receipt in shown.stdout and TOWN in shown.stdout

        t.rectify(receipt, note="增加窗口人员", actor=CLERK)
        assert rectifications(town.address) == []
        wait_for(lambda: rectifications(city.address) == [], 30, lambda: f"still open at the city: "
                 f"{rectifications(city.address)}")


def test_a_closed_rectification_stays_closed_and_only_ancestors_keep_one(tmp_path: Path) -> None:
    """The city's copy, made from the envelopes as they arrive: a late 'open' never reopens a
    closed one; a node that is not above the owner refuses the envelope (it goes to quarantine)."""
    create_store(tmp_path, CITY, Level.CITY)
    store = Store.open(tmp_path)
    opened = RectificationMessage(receipt="371102001-1-000001-5", owner=TOWN, item_code="MZ-0002",
                                  department="民政办", rating="dissatisfied", opened_at="2026-03-10T01:00:00+00:00",
                                  due="2026-03-31", closed_on="", updated_at="2026-03-10T01:00:00+00:00")
    closed = dataclasses.replace(opened, closed_on="2026-03-20", updated_at="2026-03-20T01:00:00+00:00")
    try:
        with store.transaction() as s:
            apply_rectification(s, store.meta, opened)
        with store.reading() as s:
            assert [r.receipt for r in open_rectifications(s)] == [opened.receipt]
        with store.transaction() as s:
            apply_rectification(s, store.meta, closed)
            apply_rectification(s, store.meta, opened)  # late or repeated: changes nothing
        with store.reading() as s:
            assert open_rectifications(s) == []
            assert s.get(Rectification, opened.receipt).closed_on == "2026-03-20"
        stranger = dataclasses.replace(opened, receipt="381100-1-000001-1", owner="381100")
        with pytest.raises(ValueError, match="does not concern node 371100"), store.transaction() as s:
            apply_rectification(s, store.meta, stranger)
    finally:
        store.close()
