"""One window receives, one window delivers (一窗受理、一窗出件), in the deterministic simulation
(real node cores, in-memory links): a village agent point hands over the result of a case the
county decided, and takes the applicant's rating, while its link up is down; both reach the
county owner exactly once after the link comes back (re-sent copies and late copies included),
and the county's history and the city's summary say delivered. A delivery request from any
node but the case's origin is refused on the owner's record.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from govnet.node.app import replication
from govnet.node.app.desk import DeskError, ErrorKind
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.sync.transport.memory import Faults

from support.simulation import Federation, applicant

CITY, COUNTY, TOWN, VILLAGE = "371100", "371102", "371102001", "371102001201"
ITEM = "WL-0001"  # 音像制品零售单位许可证换证: county, immediate, may be carried by an agent


def test_a_village_delivers_and_rates_a_county_decision_offline_and_the_owner_records_both_once(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        with Federation(tmp_path, [CITY, COUNTY, TOWN, VILLAGE], seed=11) as fed:
            fed.publish(CITY, load_catalog_file(sample_catalog_path()))
            await fed.settle()
            receipt = fed.submit(VILLAGE, ITEM, "k1", **applicant(1), agent="村代办员").record.state.receipt
            await fed.settle()
            for action in ("accept", "approve", "complete"):
                fed.act(COUNTY, receipt, action)
            village = fed.core(VILLAGE).desk
            with pytest.raises(DeskError) as early:  # the decision has not reached the village yet
                fed.act(VILLAGE, receipt, "deliver")
            assert early.value.kind is ErrorKind.PRECONDITION and "completed" in str(early.value)
            await fed.settle()
            assert village.get(receipt)[0].state.status.value == "completed"

            fed.partition(VILLAGE)
            acted = fed.act(VILLAGE, receipt, "deliver", actor="agent-li (李)")
            assert acted.forwarded_to == COUNTY
            shown, _ = village.get(receipt)  # at once, at the window, with the link down
            assert shown.state.status.value == "delivered"
            assert shown.window_delivery is not None and shown.window_delivery.actor == "agent-li (李)"
            with pytest.raises(DeskError) as twice:
                fed.act(VILLAGE, receipt, "deliver")
            assert twice.value.kind is ErrorKind.PRECONDITION and "already delivered" in str(twice.value)
            rated = fed.evaluate(VILLAGE, receipt, "satisfied", "当场领证")
            assert rated.forwarded_to == COUNTY
            assert fed.actions(COUNTY, receipt)[-1] == "complete"  # nothing has left the village yet

            # The link comes back with copies re-sent and held back: each request still applies once.
            fed.partition(VILLAGE, cut=False)
            fed.set_faults(Faults(duplicate=0.5, delay=0.3, drop_reply=0.2))
            for _ in range(6):
                await fed.step(VILLAGE)
                await fed.step(TOWN)
            await fed.settle()
            county = fed.actions(COUNTY, receipt)
            assert county[-2:] == ["deliver", "evaluate"]
            assert county.count("deliver") == 1 and county.count("evaluate") == 1
            (delivered,) = [e for e in fed.events(COUNTY, receipt) if e.action == "deliver"]
            assert delivered.detail == {"at": VILLAGE}
            assert delivered.actor == f"agent-li (李)@{VILLAGE}"
            assert fed.owner_view(COUNTY)[receipt][1] == "delivered"
            assert fed.actions(VILLAGE, receipt)[-2:] == ["deliver", "evaluate"]
            assert fed.summaries(CITY)[receipt].status == "delivered"
            assert fed.summaries(CITY)[receipt].event_count == len(county)
            assert sum(fed.quarantined(n) for n in fed.nodes) == 0

    asyncio.run(scenario())


def test_a_delivery_request_from_a_node_that_is_not_the_origin_is_refused_on_the_owners_record(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        with Federation(tmp_path, [CITY, COUNTY, TOWN, VILLAGE], seed=3) as fed:
            fed.publish(CITY, load_catalog_file(sample_catalog_path()))
            await fed.settle()
            receipt = fed.submit(VILLAGE, ITEM, "k1", **applicant(2), agent="村代办员").record.state.receipt
            await fed.settle()
            for action in ("accept", "approve", "complete"):
                fed.act(COUNTY, receipt, action)
            await fed.settle()
            # The township (a relay, not the window where it was applied for) asks the owner to record a delivery.
            town = fed.core(TOWN).store
            with town.transaction() as s:
                replication.request_to(s, town.meta, receipt, COUNTY, "deliver",
                                       {"actor": "someone", "delivered_at": fed.clock.now().isoformat()},
                                       fed.clock.now())
            await fed.settle()
            (refused,) = [e for e in fed.events(COUNTY, receipt) if e.action == "request_refused"]
            assert refused.detail == {"requested": "deliver"}
            assert "applied for (371102001201), not at 371102001" in refused.reason
            assert fed.owner_view(COUNTY)[receipt][1] == "completed"

    asyncio.run(scenario())
