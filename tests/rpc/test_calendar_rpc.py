"""A calendar year published at the city over real gRPC nodes (served in this process, real
SQLite files, linked child to parent) and the command line: it reaches the village and moves an
open case's due date, which ``case show`` no longer calls provisional.

The nodes run on a controlled clock: real time shifted to 21 December 2026 (the link drivers
need time to pass), when the shipped holiday data ends with 2026. The 2027 schedule is a
labelled test fixture (tests/data/2027-test-fixture.toml), not official data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from govnet.node.domain.calendar import CHINA_TZ
from govnet.node.rpc.client import ClientError, GovnetClient
from govnet.ops.processes import init_node

from support.accounts import start_in_process
from support.helpers import govnet, submit, wait_for
from support.inprocess import BackgroundLoop, InProcessNode

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "2027-test-fixture.toml"
FAST = {"flush_interval_s": 0.1, "digest_interval_s": 5.0}
CITY, COUNTY, TOWN, VILLAGE = "371100", "371102", "371102001", "371102001201"


class December2026:
    """Real time, shifted so that the test starts on Monday 21 December 2026, 09:00 in Beijing."""

    def __init__(self) -> None:
        self.offset = datetime(2026, 12, 21, 9, 0, tzinfo=CHINA_TZ) - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def tree(loop: BackgroundLoop, tmp_path: Path) -> Iterator[Callable[[str, str, str | None], InProcessNode]]:
    started: list[InProcessNode] = []
    clock = December2026()

    def start(node_id: str, level: str, parent: str | None = None) -> InProcessNode:
        d = init_node(tmp_path / node_id, node_id, level, parent, sync=FAST)
        node = start_in_process(loop, d, clock)
        started.append(node)
        return node

    yield start
    for n in reversed(started):
        n.stop()


def recounts(client: GovnetClient, receipt: str) -> list[dict]:
    return [json.loads(e.detail_json) for e in client.get(receipt).events if e.action == "due_recomputed"]


def test_a_2027_schedule_published_at_the_city_moves_a_village_case_due_date(tree, sample_catalog, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="govnet.node")
    city = tree(CITY, "city", None)
    # December, and 2027 is not published: the node said so when it started.
    assert any("holiday schedule of 2027 is not published yet" in r.getMessage() for r in caplog.records)
    county = tree(COUNTY, "county", city.address)
    town = tree(TOWN, "township", county.address)
    village = tree(VILLAGE, "village", town.address)
    with GovnetClient(city.address) as c, GovnetClient(county.address) as k, GovnetClient(village.address) as v:
        c.put_catalog(sample_catalog)
        wait_for(lambda: bool(v.list_items().items), 30, lambda: "catalog did not reach the village")
        receipt = submit(v, "HB-0005", agent="村代办员-李四").case.receipt  # 10 working days, decided at the county
        wait_for(lambda: bool(k.list(limit=10).cases), 30, lambda: "case did not reach the county")
        k.act(receipt, "accept")
        wait_for(lambda: v.get(receipt).due != "", 30, lambda: v.get(receipt).status)
        before = v.get(receipt)
        assert (before.due, before.provisional) == ("2027-01-04", True)
        assert v.track(receipt).provisional
        shown = govnet("case", "show", receipt, "--node", village.address)
        assert shown.returncode == 0, shown.stderr
        assert "2027-01-04 (provisional" in shown.stdout

        out = govnet("calendar", "publish", str(FIXTURE), "--node", city.address)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("calendar 2027 published")

        wait_for(lambda: v.get(receipt).due == "2027-01-06", 30, lambda: f"due at the village: {v.get(receipt).due}")
        after = v.get(receipt)
        assert not after.provisional and not v.track(receipt).provisional
        assert [r["dues"]["due"] for r in recounts(v, receipt)] == [{"old": "2027-01-04", "new": "2027-01-06"}]
        shown = govnet("case", "show", receipt, "--node", village.address)
        assert "2027-01-06" in shown.stdout and "provisional" not in shown.stdout.split("history")[0]

        # Again: nothing changes. Another schedule for 2027, or one published below the city: refused.
        again = govnet("calendar", "publish", str(FIXTURE), "--node", city.address, "--json")
        assert again.returncode == 0 and json.loads(again.stdout).get("published", False) is False
        with pytest.raises(ClientError) as info:
            k.publish_calendar(FIXTURE.read_text(encoding="utf-8"))
        assert info.value.code is grpc.StatusCode.PERMISSION_DENIED and "only the city" in str(info.value)
        with pytest.raises(ClientError) as info:
            c.publish_calendar(FIXTURE.read_text(encoding="utf-8").replace('"2027-01-04",', ""))
        assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION and "published already" in str(info.value)
        assert len(recounts(v, receipt)) == 1


def test_a_bad_schedule_is_refused_in_one_line_and_nothing_changes(tree, tmp_path: Path) -> None:
    city = tree(CITY, "city", None)
    bad = tmp_path / "2027.toml"
    bad.write_text(FIXTURE.read_text(encoding="utf-8").replace('"2027-01-04",', '"2027-01-04", "2027-01-04",'),
                   encoding="utf-8")
    out = govnet("calendar", "publish", str(bad), "--node", city.address)
    assert out.returncode == 1 and out.stdout == ""
    assert "listed twice" in out.stderr and out.stderr.strip().count("\n") == 0
    with GovnetClient(city.address) as c:
        with pytest.raises(ClientError) as info:
            c.publish_calendar(bad.read_text(encoding="utf-8"))
        assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT and "listed twice" in str(info.value)
        with pytest.raises(ClientError) as info:
            c.publish_calendar("")
        assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    with GovnetClient(city.address) as c:
        ok = c.publish_calendar(FIXTURE.read_text(encoding="utf-8"))
        assert (ok.year, ok.published) == (2027, True)  # the refusals stored nothing
