"""What a city sees of its whole tree (issue #13, point 9), over a real city ← county ← township
chain: a complaint about the township and a rectification the township must make (opened by an
applicant's dissatisfied rating) both reach the city, which is two levels up and neither
supervises the township nor holds the case; the rectification leaves the city's alarms once
the township closes it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from govnet.node.rpc.client import GovnetClient

from support.accounts import start_in_process
from support.helpers import CHIEF, CLERK, govnet, submit, wait_for
from support.inprocess import BackgroundLoop, InProcessNode, in_process_nodes

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
        assert [a["receipt"] for a in rectifications(town.address)] == [receipt]  # the owner lists its own too
        shown = govnet("alarms", "--node", city.address)
        assert shown.returncode == 0 and receipt in shown.stdout and TOWN in shown.stdout

        t.rectify(receipt, note="增加窗口人员", actor=CLERK)
        assert rectifications(town.address) == []
        wait_for(lambda: rectifications(city.address) == [], 30, lambda: f"still open at the city: "
                 f"{rectifications(city.address)}")
