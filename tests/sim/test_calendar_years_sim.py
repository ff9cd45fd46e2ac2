"""A calendar year published at the city reaches every node and moves open cases' due dates.

Real nodes (``build_node`` over their stores) joined by in-memory links, on a controlled clock
in December 2026, when the shipped holiday data ends with 2026: a case accepted on 21 December
with 10 working days is due in January 2027, counted Monday–Friday (provisional). The 2027
schedule is a labelled test fixture (tests/data/2027-test-fixture.toml), not official data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from govnet.node.app.inbox import Forbidden
from govnet.node.app.replication import Unauthorized
from govnet.node.domain.calendar import CHINA_TZ, CalendarError
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.domain.messages import CalendarMessage
from govnet.node.store.unit import Conflict
from govnet.sync.envelope import Envelope

from support.simulation import Federation, applicant

CITY, COUNTY, TOWN, VILLAGE = "371100", "371102", "371102001", "371102001201"
FIXTURE = (Path(__file__).parent.parent / "data" / "2027-test-fixture.toml").read_text(encoding="utf-8")
DECEMBER = datetime(2026, 12, 21, 9, 0, tzinfo=CHINA_TZ)  # a Monday
ITEM = "HB-0005"  # promised, 10 working days, decided at the county


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    with Federation(tmp_path, [CITY, COUNTY, TOWN, VILLAGE], seed=5, start=DECEMBER, durable=False) as f:
        f.publish(CITY, load_catalog_file(sample_catalog_path()))
        asyncio.run(f.settle())
        yield f


def accepted_at_the_county(fed: Federation) -> str:
    receipt = fed.submit(VILLAGE, ITEM, "k1", agent="李代办", **applicant(1)).record.state.receipt
    asyncio.run(fed.settle())
    fed.act(COUNTY, receipt, "accept", actor="王敏")
    asyncio.run(fed.settle())
    return receipt


def test_a_2027_schedule_published_at_the_city_reaches_the_village_and_moves_the_due_date(fed: Federation) -> None:
    receipt = accepted_at_the_county(fed)
    village = fed.core(VILLAGE)
    due = village.store.get_case(receipt).state.due  # type: ignore[union-attr]
    assert due == date(2027, 1, 4) and village.calendar.is_provisional(due)

    county = fed.core(COUNTY).metrics.registry
    assert county.get_sample_value("govnet_calendar_provisional_cases") == 1  # the owner counts it
    assert county.get_sample_value("govnet_calendar_last_year") == 2026
    assert county.get_sample_value("govnet_calendar_next_year_missing") == 1

    done = fed.publish_calendar(CITY, FIXTURE)
    assert (done.year, done.new) == (2027, True)
    asyncio.run(fed.settle())

    for node in (CITY, COUNTY, TOWN, VILLAGE):
        assert 2027 in fed.core(node).calendar.covered_years, node
    held = village.store.get_case(receipt)
    assert held is not None and held.state.due == date(2027, 1, 6)  # 1 and 4 January are off in 2027
    assert not village.calendar.is_provisional(held.state.due)
    recounts = [e for e in fed.events(VILLAGE, receipt) if e.action == "due_recomputed"]
    assert len(recounts) == 1
    assert recounts[0].detail["dues"]["due"] == {"old": "2027-01-04", "new": "2027-01-06"}
    assert recounts[0].detail["years"] == [2027]
    assert county.get_sample_value("govnet_calendar_provisional_cases") == 0
    assert county.get_sample_value("govnet_calendar_last_year") == 2027
    assert county.get_sample_value("govnet_calendar_next_year_missing") == 0
    # The owner recorded it once: the village holds its copy of the owner's event.
    assert [e.action for e in fed.events(COUNTY, receipt)].count("due_recomputed") == 1

    # Publishing the same year again changes nothing; another schedule for it is refused.
    assert fed.publish_calendar(CITY, FIXTURE).new is False
    with pytest.raises(Conflict, match="published already"):
        fed.publish_calendar(CITY, FIXTURE.replace('"2027-01-04",', ""))
    asyncio.run(fed.settle())
    assert [e.action for e in fed.events(VILLAGE, receipt)].count("due_recomputed") == 1


def test_only_the_city_publishes_and_a_bad_file_changes_nothing(fed: Federation) -> None:
    with pytest.raises(Unauthorized, match="only the city"):
        fed.publish_calendar(COUNTY, FIXTURE)
    with pytest.raises(CalendarError, match="listed twice"):
        fed.publish_calendar(CITY, FIXTURE.replace('"2027-01-04",', '"2027-01-04", "2027-01-04",'))
    asyncio.run(fed.settle())
    for node in (CITY, COUNTY, VILLAGE):
        assert 2027 not in fed.core(node).calendar.covered_years


def test_a_red_card_raised_on_a_provisional_date_is_no_longer_open_once_the_date_moves(fed: Federation) -> None:
    receipt = accepted_at_the_county(fed)
    fed.clock.advance(timedelta(days=15))  # Tuesday 5 January 2027: past the provisional due date
    assert fed.scan(COUNTY) == 1
    red = [a for a in fed.supervisors[COUNTY].alarms() if a.receipt == receipt and a.kind == "overdue"]
    assert len(red) == 1 and red[0].open

    fed.publish_calendar(CITY, FIXTURE)  # late: the notice arrives after the provisional date passed
    asyncio.run(fed.settle())
    cards = [a for a in fed.supervisors[COUNTY].alarms() if a.receipt == receipt]
    overdue = [a for a in cards if a.kind == "overdue"]
    assert len(overdue) == 1 and not overdue[0].open  # kept in the history, not an open alarm
    fed.scan(COUNTY)  # no new false red card: 5 January is before the new due date, 6 January
    after = [a for a in fed.supervisors[COUNTY].alarms() if a.receipt == receipt]
    assert [a.kind for a in after if a.open] == ["warn"]
    assert after[0].due == "2027-01-06"


def forged(origin: str, target: str, payload: bytes) -> Envelope:
    seq = 10**6
    return Envelope(seq, origin, 1, seq, "calendar", target, "calendar", 0, payload, "")


def test_a_year_from_below_or_in_another_name_is_refused_and_changes_nothing(fed: Federation) -> None:
    year = CalendarMessage(2027, COUNTY, FIXTURE, "2026-12-21T01:00:00.000000+00:00").encode()
    # From a child: a calendar year flows only down.
    with pytest.raises(Forbidden, match="flows only down"):
        fed.core(COUNTY).children.push(TOWN, fed.core(TOWN).store.meta.incarnation, [forged(TOWN, "", year)])
    # From the parent, under the county's name (a township cannot take a county's calendar): set aside, counted.
    town = fed.core(TOWN)
    before = dict(town.inbox.refusals.counts)
    held = len(town.inbox.quarantined())
    parent_incarnation, _ = fed.uplink(TOWN).down_position()
    fed.uplink(TOWN).apply_down(parent_incarnation, [forged(COUNTY, "", year)])
    assert len(town.inbox.quarantined()) == held + 1
    assert town.inbox.refusals.counts.get("calendar_issuer", 0) == before.get("calendar_issuer", 0) + 1
    for node in (CITY, COUNTY, TOWN, VILLAGE):
        assert 2027 not in fed.core(node).calendar.covered_years
