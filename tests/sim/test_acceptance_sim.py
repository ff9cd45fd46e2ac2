"""The acceptance deadline across the tree (deterministic simulation: real node cores, in-memory
links, ManualClock): a case a village agent carries to the township counts its 5 working days from
the day it arrived there, not from the day it was submitted at the village; the township's
scanner warns, then deems it accepted as of that day, and the village hears of it."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from govnet.node.domain.calendar import CHINA_TZ
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path

from support.simulation import Federation, applicant

CITY, COUNTY, TOWN, VILLAGE = "371100", "371102", "371102001", "371102001201"


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T09:00:00").replace(tzinfo=CHINA_TZ)


def test_a_carried_case_counts_its_acceptance_deadline_from_its_arrival(tmp_path: Path) -> None:
    async def scenario() -> None:
        with Federation(tmp_path, [CITY, COUNTY, TOWN, VILLAGE], seed=11) as fed:
            fed.publish(CITY, load_catalog_file(sample_catalog_path()))
            await fed.settle()
            fed.partition(VILLAGE)  # the agent point is offline when the applicant comes
            fed.clock.set(at("2026-03-10"))  # Tuesday
            receipt = fed.submit(VILLAGE, "MZ-0002", "k1", **applicant(1), agent="村代办员").record.state.receipt
            assert fed.scan(VILLAGE) == 0  # the agent point forwards it: the township accepts it
            fed.clock.set(at("2026-03-13"))  # Friday: the link is back and the case arrives
            fed.heal()
            await fed.settle()
            assert fed.actions(TOWN, receipt)[-1] == "take_over"

            # Counted from Mar 10 the 5 days would end Tue Mar 17; from its arrival they end Fri Mar 20.
            fed.clock.set(at("2026-03-18"))
            assert fed.scan(TOWN) == 0
            fed.clock.set(at("2026-03-19"))  # Thursday: the 4th working day after arrival
            assert fed.scan(TOWN) == 1 and fed.actions(TOWN, receipt)[-1] == "warn"
            fed.clock.set(at("2026-03-23"))  # Monday: the 5 working days have run out
            assert fed.scan(TOWN) == 1 and fed.scan(TOWN) == 0
            (case,) = [c for c in fed.cases(TOWN) if c.state.receipt == receipt]
            assert case.state.status.value == "accepted" and case.state.accepted_on.isoformat() == "2026-03-13"
            assert case.state.due.isoformat() == "2026-03-27"  # 10 working days from Fri Mar 13
            await fed.settle()
            assert fed.actions(VILLAGE, receipt)[-2:] == ["warn", "deem_accept"]  # the origin hears of it

    asyncio.run(scenario())
