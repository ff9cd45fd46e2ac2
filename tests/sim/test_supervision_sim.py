"""Supervision in the deterministic simulation (real node cores, in-memory links, ManualClock):
the owner's scanner runs while the owner is cut off, records once, and its alarms reach
the origin and the city's summary after the network heals; a rating made at the village
reaches the township owner and opens a rectification there; a complaint filed at the
village reaches the supervising county.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from govnet.node.app.complaints import FileCommand
from govnet.node.domain.calendar import CHINA_TZ
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.ops.simulation.harness import Federation, applicant

CITY, COUNTY, TOWN, VILLAGE = "371100", "371102", "371102001", "371102001201"


def events(fed: Federation, node: str, receipt: str) -> list[str]:
    return fed.actions(node, receipt)


def test_the_owner_raises_alarms_offline_and_they_travel_once_it_reconnects(tmp_path: Path) -> None:
    async def scenario() -> None:
        with Federation(tmp_path, [CITY, COUNTY, TOWN, VILLAGE], seed=7) as fed:
            fed.publish(CITY, load_catalog_file(sample_catalog_path()))
            await fed.settle()
            receipt = fed.submit(VILLAGE, "MZ-0002", "k1", **applicant(1), agent="村代办员").record.state.receipt
            await fed.settle()
            fed.act(TOWN, receipt, "accept")
            fed.act(TOWN, receipt, "review")
            await fed.settle()
            # The township loses both links; its deadlines keep running.
            fed.partition(TOWN)
            fed.partition(VILLAGE)
            fed.clock.set(datetime(2026, 3, 26, 9, 0, tzinfo=CHINA_TZ))  # due Tue Mar 24
            assert fed.scan(TOWN) == 1
            assert fed.scan(TOWN) == 0
            assert events(fed, TOWN, receipt)[-1] == "overdue"
            assert "overdue" not in events(fed, VILLAGE, receipt)
            await fed.settle()
            assert events(fed, VILLAGE, receipt).count("overdue") == 1
            count = fed.summaries(CITY)[receipt].event_count
            assert count == len(events(fed, TOWN, receipt))
            assert fed.scan(VILLAGE) == 0  # only the owner records alarms
            # The city holds the summary only: it sees the red card as of the last state it heard.
            (seen,) = [a for a in fed.supervisors[CITY].alarms() if a.receipt == receipt]
            assert (seen.kind, seen.card, seen.owner, seen.detail["from_summary"]) == ("overdue", "red", TOWN, True)

            # A step timer: the township holds a city item it must review and send up (20 working days).
            up = fed.submit(TOWN, "HB-0001", "k2", **applicant(2)).record.state.receipt
            fed.act(TOWN, up, "accept")
            fed.act(TOWN, up, "review")  # Thu Mar 26: step due Fri Apr 24 (Qingming Apr 4-6 off)
            fed.clock.set(datetime(2026, 4, 27, 9, 0, tzinfo=CHINA_TZ))
            assert fed.scan(TOWN) == 1
            step = [e.detail for e in fed.events(TOWN, up) if e.action == "step_overdue"]
            assert step == [
                {"step": "escalation_review", "department": "生态环境局", "due": "2026-04-24"}]
            assert "overdue" not in events(fed, TOWN, up)  # the case itself is in time (due May 12)

            for action in ("approve", "complete", "deliver"):
                fed.act(TOWN, receipt, action)
            await fed.settle()
            done = fed.evaluate(VILLAGE, receipt, "very_dissatisfied", "跑了三趟")
            assert done.forwarded_to == TOWN
            await fed.settle()
            assert events(fed, TOWN, receipt)[-2:] == ["evaluate", "rectify_open"]
            assert events(fed, VILLAGE, receipt)[-2:] == ["evaluate", "rectify_open"]

            filed = fed.complaints[VILLAGE].file(FileCommand(text="差评后无人回访", receipt=receipt))
            await fed.settle()
            # The supervisor, the node complained about, the filing node and every ancestor above
            # (the city supervises the whole subtree) hold it.
            for node in (CITY, COUNTY, TOWN, VILLAGE):
                rows = [(v.row.supervisor, v.row.about_node, v.row.status) for v in fed.complaints[node].list()
                        if v.row.complaint_id == filed.complaint_id]
                assert rows == [(COUNTY, TOWN, "open")], node
            assert sum(fed.quarantined(n) for n in fed.nodes) == 0

    asyncio.run(scenario())
