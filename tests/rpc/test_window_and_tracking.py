"""One window receives, one window delivers, and a receipt tracked from any node — over real
gRPC nodes with mutual TLS, on loopback (a city, a county, a township and three villages):

* a village agent point hands over the result of a case the county decided, and the applicant
  rates it there; the county records both, the city's summary says delivered;
* the receipt is tracked at the city (from its summary), at a sibling village (which asks up the
  tree: the township answers from its summary), and at a village whose link up is down (which
  says so), each in Chinese, without personal data or internal steps; the CLI prints the
  Chinese text for people and JSON for machines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from govnet.node.domain.people import Role
from govnet.node.rpc.client import ClientError, GovnetClient

from support.accounts import staff, start_in_process
from support.helpers import CHIEF, CLERK, ID_NUMBER, NAME, PHONE, govnet, submit, wait_for
from support.inprocess import BackgroundLoop, InProcessNode
from support.stores import init_node

FAST = {"flush_interval_s": 0.1, "digest_interval_s": 5.0}
CITY, COUNTY, TOWN = "371100", "371102", "371102001"
VILLAGE, SIBLING, CUT_OFF = "371102001201", "371102001202", "371102001203"


@pytest.fixture
def live(loop: BackgroundLoop, tmp_path: Path) -> Iterator[Callable[..., InProcessNode]]:
    """Nodes on the real clock, linked child to parent (the link driver runs on it)."""
    started: list[InProcessNode] = []

    def start(node_id: str, level: str, parent: str | None = None) -> InProcessNode:
        node = start_in_process(loop, init_node(tmp_path / node_id, node_id, level, parent, sync=FAST))
        started.append(node)
        return node

    yield start
    for n in reversed(started):
        n.stop()


def actions(client: GovnetClient, receipt: str) -> list[str]:
    return [e.action for e in client.get(receipt).events]


def test_a_village_delivers_a_county_decision_and_any_node_tracks_it(live, sample_catalog) -> None:
    city = live(CITY, "city")
    county = live(COUNTY, "county", city.address)
    town = live(TOWN, "township", county.address)
    village = live(VILLAGE, "village", town.address)
    sibling = live(SIBLING, "village", town.address)
    cut_off = live(CUT_OFF, "village", "127.0.0.1:1")  # its link up never comes
    with GovnetClient(city.address) as c, GovnetClient(county.address) as k, GovnetClient(village.address) as v:
        c.put_catalog(sample_catalog)
        wait_for(lambda: bool(v.list_items().items), 30, lambda: "catalog did not reach the village")
        submitted = submit(v, "WL-0001", agent="村代办员-李四")  # decided at the county
        receipt, code = submitted.case.receipt, submitted.rating_code
        wait_for(lambda: bool(k.list(limit=10).cases), 30, lambda: "case did not reach the county")
        for action, actor in (("accept", CLERK), ("approve", CHIEF), ("complete", CLERK)):
            k.act(receipt, action, actor=actor)
        wait_for(lambda: v.get(receipt).status == "completed", 30, lambda: v.get(receipt).status)
        assert "deliver" in v.get(receipt).allowed_actions  # the window where it was applied for hands it over

        agent = staff(village, "agent-li", Role.VILLAGE_AGENT, name="李四")
        done = agent.act_response(receipt, "deliver")
        assert (done.forwarded_to, done.case.status) == (COUNTY, "delivered")
        shown = v.get(receipt)  # at once, before the county has heard of it
        assert (shown.status, shown.window_delivered_by) == ("delivered", "agent-li (李四)")
        assert shown.window_delivered_at.endswith("+00:00")
        with GovnetClient(village.address, token="") as applicant:  # the code on the receipt, no login
            rated = applicant.evaluate(receipt, "very_satisfied", "村里就能领证", rating_code=code)
        assert rated.forwarded_to == COUNTY
        wait_for(lambda: actions(k, receipt)[-2:] == ["deliver", "evaluate"], 30, lambda: str(actions(k, receipt)))
        (delivered,) = [e for e in k.get(receipt).events if e.action == "deliver"]
        assert json.loads(delivered.detail_json) == {"at": VILLAGE}
        assert delivered.actor == f"agent-li (李四)@{VILLAGE}" and delivered.node == COUNTY
        assert k.get(receipt).status == "delivered"

        # The city holds the summary only.
        wait_for(lambda: c.track(receipt).status == "delivered", 30, lambda: c.track(receipt).status)
        at_city = c.track(receipt)
        assert (at_city.known, at_city.source, at_city.answered_by, at_city.stage) == (True, "summary", CITY,
                                                                                       "delivered")
        assert at_city.headline == "已办结，结果已领取" and "以上为上级掌握的办理概况" in at_city.text

        # At the village where it was applied for: the whole history, public steps only.
        at_village = v.track(receipt)
        assert (at_village.source, at_village.answered_by) == ("case", VILLAGE)
        assert [s.text for s in at_village.steps] == [
            "村便民服务站 提交申请", "县级政务服务中心 已受理", "县级政务服务中心 作出决定：准予",
            "县级政务服务中心 已办结，结果已制作", "村便民服务站 结果已领取"]
        assert all(s.at.endswith("+08:00") for s in at_village.steps)

        # A sibling village knows nothing of it: it asks up, and the township answers from its summary.
        with GovnetClient(sibling.address) as s:
            # The township's summary is refreshed by the owner's events passing it on their way to the village.
            wait_for(lambda: s.track(receipt).stage == "delivered", 30, lambda: s.track(receipt).headline)
            asked = s.track(receipt)
        assert (asked.known, asked.answered_by, asked.source, asked.stage) == (True, TOWN, "summary", "delivered")
        for shown in (at_city, at_village, asked):
            body = shown.text.split("\n", 1)[1]
            for secret in (NAME, ID_NUMBER, PHONE, "李四", "hand_over", "take_over", COUNTY, TOWN):
                assert secret not in body, (secret, shown.text)

        # A village with its link up down says it does not know and cannot ask.
        with GovnetClient(cut_off.address) as x:
            alone = x.track(receipt)
            assert (alone.known, alone.link_down, alone.stage) == (False, True, "unknown")
            assert "本节点不掌握此件，上级链路中断" in alone.text
            with pytest.raises(ClientError) as bad:
                x.track(receipt[:-1] + str((int(receipt[-1]) + 1) % 10))  # one mistyped digit
            assert bad.value.code is grpc.StatusCode.INVALID_ARGUMENT

        # The city does not know a receipt nobody issued: NOT_FOUND, asked of no one.
        with pytest.raises(ClientError) as unknown:
            c.track("371102001299-01-000001-" + _damm_digit("371102001299-01-000001"))
        assert unknown.value.code is grpc.StatusCode.NOT_FOUND

    people = govnet("case", "track", receipt, "--node", sibling.address)
    assert people.returncode == 0, people.stderr
    assert "进度：已办结，结果已领取" in people.stdout and "受理编号" in people.stdout
    machines = govnet("case", "track", receipt, "--node", sibling.address, "--json")
    assert machines.returncode == 0, machines.stderr
    answer = json.loads(machines.stdout)
    assert answer["answered_by"] == TOWN and answer["steps"][0]["at"].endswith("+08:00")


def _damm_digit(body: str) -> str:
    from govnet.node.domain.receipt import Receipt

    node, incarnation, seq = body.split("-")
    return str(Receipt(node, int(incarnation), int(seq))).rsplit("-", 1)[1]
