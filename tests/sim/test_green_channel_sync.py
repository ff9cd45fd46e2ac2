"""The green channel (绿色通道) in sync, and fees at the window that delivers, over simulated nodes.

A flagged case's messages leave before the backlog.

Seeded in-process federation (``support.simulation``): a village carries applications to the
county that decides them; the county works a backlog of cases and flags one of them for the
green channel. Everything the flagged case causes is queued at the urgent priority, and the
next batch the county sends up and down starts with it, ahead of envelopes queued earlier
(``sync.batching.select_batch`` promotes a case's group as a whole, keeping its order).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govnet.node.app.desk import DeskError, ErrorKind
from govnet.node.app.replication import NORMAL, URGENT
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.sync.batching import select_batch

from support.simulation import Federation, applicant

CATALOG = load_catalog_file(sample_catalog_path())
CITY, COUNTY, TOWN, VILLAGE = "371100", "371102", "371102001", "371102001201"
ITEM = "HB-0002"  # decided at the county, carried up by the village agent


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    f = Federation(tmp_path, [CITY, COUNTY, TOWN, VILLAGE], seed=11)
    f.publish(CITY, CATALOG)
    run(f.settle())
    yield f
    f.close()


def test_a_green_case_travels_before_the_backlog(fed: Federation) -> None:
    receipts = [fed.submit(VILLAGE, ITEM, f"key-{i}", agent=f"agent@{VILLAGE}", **applicant(i)).record.state.receipt
                for i in range(5)]
    run(fed.settle())
    for r in receipts:
        fed.act(COUNTY, r, "accept")  # a backlog of ordinary progress, queued first
    green = receipts[3]
    flagged = fed.act(COUNTY, green, "green_channel", reason="市重点项目")
    assert flagged.record.state.green_channel
    fed.act(COUNTY, green, "review")  # what follows a flagged case is urgent too
    for link in (CITY, TOWN):  # the summary up to the city, the progress down to the village's path
        pending = fed.outbox(COUNTY, link)
        priority = {e.case_key: e.priority for e in pending if e.case_key in receipts and e.kind != "stats"}
        assert priority[green] == URGENT
        assert {priority[r] for r in receipts if r != green} == {NORMAL}
        first_green = min(e.seq for e in pending if e.case_key == green)
        assert any(e.seq < first_green for e in pending if e.case_key != green)  # queued behind others ...
        batch = select_batch(pending, max_count=2)
        assert [e.case_key for e in batch] == [green, green]  # ... sent before them, in its own order
        assert [e.seq for e in batch] == sorted(e.seq for e in batch)
    run(fed.settle())
    assert fed.core(VILLAGE).desk.get(green)[0].state.green_channel  # the origin sees the flag


def test_the_applicants_window_hands_over_a_result_only_once_its_fees_are_paid(fed: Federation) -> None:
    """一窗出件 with 统一收费: the village delivers a county decision only after the county's payment
    record has reached it (the same rule, ``may_deliver``, on the village's copy)."""
    async def scenario() -> None:
        receipt = fed.submit(VILLAGE, "ZR-0003", "fee-1", agent=f"agent@{VILLAGE}", **applicant(1)).record.state.receipt
        await fed.settle()
        for action in ("accept", "review", "approve", "complete"):
            fed.act(COUNTY, receipt, action)
        await fed.settle()
        village = fed.core(VILLAGE).desk
        assert village.get(receipt)[0].state.fees_due_fen == 8000  # first certificate free: 80.00, not 90.00
        with pytest.raises(DeskError) as owed:
            fed.act(VILLAGE, receipt, "deliver")
        assert owed.value.kind is ErrorKind.PRECONDITION and "fees of 80.00 yuan are due" in str(owed.value)
        fed.act(COUNTY, receipt, "pay", amount_fen=8000, method="alipay", number="ALI-2026031000001")
        await fed.settle()
        assert fed.act(VILLAGE, receipt, "deliver").forwarded_to == COUNTY
        await fed.settle()
        assert fed.actions(COUNTY, receipt)[-2:] == ["pay", "deliver"]

    run(scenario())
