"""The attacks of issue #12 that are about what an authenticated node may send, each made
by a node with a genuine link (the simulation's in-memory links: the link's identity is the
one its session was opened with), each failing to do harm, each refusal counted.

(a) forged statistics and summaries for another node; (b) a forged acknowledgement that
would make a township delete a village's messages; (c) catalog releases under another
node's name or beyond the issuer's authority; (d) an appeal decision sent in an ancestor's
name. The rules are ``federation.authority``; see ``tests/unit/test_authority.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from govnet.node.app.inbox import Forbidden
from govnet.node.app.replication import Unauthorized
from govnet.node.app.statistics_ledger import StatsLedger, answer
from govnet.node.domain.catalog import Catalog, load_catalog_file, sample_catalog_path
from govnet.node.domain.messages import (
    CatalogMessage,
    CopyMessage,
    RequestMessage,
    StatsMessage,
    StatsReportPart,
    StatsRowPart,
    SummaryMessage,
)
from govnet.node.domain.statistics import COUNTERS
from govnet.node.store import replicas
from govnet.node.store.unit import utc_text
from govnet.ops.simulation.harness import Federation, _calendar, applicant
from govnet.sync.cursor import Cursor
from govnet.sync.envelope import Envelope

CATALOG = load_catalog_file(sample_catalog_path())
CITY, COUNTY, TOWN, OTHER_TOWN = "371100", "371102", "371102001", "371102002"
VILLAGE, OTHER_VILLAGE = "371102001201", "371102002201"
NODES = [CITY, COUNTY, TOWN, OTHER_TOWN, VILLAGE, OTHER_VILLAGE]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """One federation for the module (building six nodes is most of the cost): each test
    compares what it sees with what it found, never with a fresh federation's state."""
    with Federation(tmp_path_factory.mktemp("attacks"), NODES, seed=12, durable=False) as f:
        f.publish(CITY, CATALOG)
        run(f.settle())
        yield f


class Refused:
    """What ``node`` refuses from now on, by reason, and what it quarantines."""

    def __init__(self, f: Federation, node: str) -> None:
        self.inbox = f.core(node).inbox
        self.counts = Counter(self.inbox.refusals.counts)
        self.held = {q.id for q in self.inbox.quarantined()}

    def since(self) -> dict[str, int]:
        return dict(Counter(self.inbox.refusals.counts) - self.counts)

    def quarantined(self) -> list[Any]:
        return [q for q in self.inbox.quarantined() if q.id not in self.held]


def incarnation(f: Federation, node: str) -> int:
    return f.core(node).store.meta.incarnation


POSITIONS = itertools.count(10**6)  # link positions no real envelope of these tests reaches


def forged(origin: str, kind: str, target: str, payload: bytes) -> Envelope:
    seq = next(POSITIONS)
    return Envelope(seq, origin, 1, seq, kind, target, kind, 0, payload, "")


# --- (a) forged statistics and summaries ---


def fake_stats(node: str, cases: int, day: str) -> bytes:
    counters = dict.fromkeys(COUNTERS, 0) | {"received": cases}
    row = StatsRowPart(node, day, "HB-0002", "生态环境局", counters, 10**6, "")
    return StatsMessage(StatsReportPart(node, 10**6, "2026-03-10T00:00:00+00:00"), (row,)).encode()


def test_forged_statistics_for_another_node_change_nothing(fed: Federation) -> None:
    fed.submit(OTHER_VILLAGE, "HB-0002", "stats-1", agent="李代办", **applicant(1))
    run(fed.settle())
    for node in (OTHER_VILLAGE, OTHER_TOWN, COUNTY, TOWN, VILLAGE):
        StatsLedger(fed.core(node).store, _calendar()).flush_now(fed.clock.now(), report=True)
    run(fed.settle())
    city = fed.core(CITY).store
    before = answer(city, "node", "", "", fed.clock.now())
    assert before.groups[OTHER_VILLAGE]["received"] >= 1
    watch = Refused(fed, COUNTY)
    day = fed.clock.now().date().isoformat()

    county = fed.core(COUNTY).children
    # A genuine township pushes 5,000 cases "from" its sibling, from the sibling's village
    # (so a relay seems to vouch), from its parent: each batch refused whole.
    for victim in (OTHER_TOWN, OTHER_VILLAGE, COUNTY):
        with pytest.raises(Forbidden, match=f"child {TOWN} may send only what its own subtree created"):
            county.push(TOWN, incarnation(fed, TOWN), [forged(victim, "stats", CITY, fake_stats(victim, 5000, day))])
    # In its own name, rows about the sibling: through the door (its origin is its own), refused where read.
    county.push(TOWN, incarnation(fed, TOWN), [forged(TOWN, "stats", CITY, fake_stats(OTHER_TOWN, 5000, day))])
    assert watch.since() == {"outside_subtree": 3, "payload_mismatch": 1}
    [held] = watch.quarantined()
    assert held.origin == TOWN and "names node 371102002" in held.error

    run(fed.settle())
    after = answer(city, "node", "", "", fed.clock.now())
    assert after.total == before.total and after.groups == before.groups  # the city's totals: unchanged
    assert not [e for e in fed.counts.errors if TOWN in e]  # the real township's link still flows


def test_forged_summaries_of_another_subtrees_cases_are_set_aside(fed: Federation) -> None:
    real = fed.submit(OTHER_VILLAGE, "HB-0002", "summary-1", agent="李代办", **applicant(2)).record.state
    run(fed.settle())
    before = {r: (s.status, s.owner, s.event_count) for r, s in fed.summaries(CITY).items()}
    with fed.core(COUNTY).store.reading() as s:
        row = replicas.case_row(s, real.receipt)
        assert row is not None
        view = replicas.snapshot_of(row, personal=False)
    # TOWN, in its own name, says the sibling's case was withdrawn by a new owner: a summary
    # about a case that did not start in its subtree is set aside where it is read.
    lie = dataclasses.replace(view, status="withdrawn", owner=TOWN, owner_epoch=9, event_count=99)
    watch = Refused(fed, COUNTY)
    fed.core(COUNTY).children.push(TOWN, incarnation(fed, TOWN), [forged(TOWN, "summary", CITY,
                                                                          SummaryMessage(lie).encode())])
    assert watch.since() == {"payload_mismatch": 1} and len(watch.quarantined()) == 1
    run(fed.settle())
    assert {r: (s.status, s.owner, s.event_count) for r, s in fed.summaries(CITY).items()} == before
    assert fed.summaries(CITY)[real.receipt].status == "received"


def test_a_parent_cannot_hand_a_village_another_villages_case(fed: Federation) -> None:
    """Personal data travels only on the path between the receiving node and the owner: a
    copy of a case from another village, addressed to this one, is set aside, not stored."""
    receipt = fed.submit(OTHER_VILLAGE, "HB-0002", "copy-1", agent="李代办", **applicant(4)).record.state.receipt
    run(fed.settle())
    with fed.core(COUNTY).store.reading() as s:
        row = replicas.case_row(s, receipt)
        assert row is not None
        copy = CopyMessage(*replicas.whole_case(s, row))
    watch = Refused(fed, VILLAGE)
    parent_inc, _ = fed.uplink(VILLAGE).down_position()
    fed.uplink(VILLAGE).apply_down(parent_inc, [forged(COUNTY, "copy", VILLAGE, copy.encode())])
    assert watch.since() == {"payload_mismatch": 1} and len(watch.quarantined()) == 1
    assert fed.core(VILLAGE).store.get_case(receipt) is None


# --- (b) a forged acknowledgement ---


def test_an_acknowledgement_beyond_what_was_sent_deletes_nothing(fed: Federation) -> None:
    receipt = fed.submit(VILLAGE, "HB-0002", "ack-1", agent="李代办", **applicant(3)).record.state.receipt
    run(fed.settle())
    for action in ("accept", "review", "approve", "complete"):
        fed.act(COUNTY, receipt, action)
    run(fed.step(TOWN))  # the decisions reach the township; the village has not pulled them yet
    waiting = fed.outbox(TOWN, VILLAGE)
    assert [e.kind for e in waiting].count("event") == 4
    # A pull on the village's link whose cursor claims everything up to 10^9 (and more above):
    # only what this link was handed can be settled, and it was handed nothing yet.
    town = fed.core(TOWN).children
    town.pull(VILLAGE, incarnation(fed, VILLAGE), incarnation(fed, TOWN), Cursor(10**9, frozenset({10**9 + 5})), 1)
    assert [e.seq for e in fed.outbox(TOWN, VILLAGE)] == [e.seq for e in waiting]
    run(fed.settle())
    assert [e.action for e in fed.events(VILLAGE, receipt)] == [
        "submit", "hand_over", "take_over", "accept", "review", "approve", "complete"]
    assert fed.outbox(TOWN, VILLAGE) == []  # and once the village really had them, they went


# --- (c) catalog releases ---


def city_item(code: str) -> Any:
    item = CATALOG.get(code)
    assert item is not None
    return item


def test_a_village_cannot_publish_under_the_citys_name(fed: Federation) -> None:
    cheap = dataclasses.replace(city_item("HB-0001"), promised_days=1)
    before = {n: fed.core(n).store.catalog() for n in NODES}
    with pytest.raises(Unauthorized, match=f"node {VILLAGE} publishes releases under its own name only"):
        fed.publish(VILLAGE, Catalog(items=(cheap,), issuer=CITY))
    with pytest.raises(Unauthorized, match="issues no catalog releases"):
        fed.publish(VILLAGE, Catalog(items=(dataclasses.replace(city_item("YB-0001"), code="CUN-0001"),),
                                     issuer=VILLAGE))
    run(fed.settle())
    for node in NODES:
        catalog = fed.core(node).store.catalog()
        assert catalog.releases == before[node].releases and catalog.items == before[node].items
        assert VILLAGE not in catalog.releases and catalog.items["HB-0001"].promised_days != 1


def test_a_county_release_cannot_change_a_city_item(fed: Federation) -> None:
    hijack = dataclasses.replace(city_item("HB-0001"), promised_days=1)  # a city-level item
    lowered = dataclasses.replace(hijack, authority_level=city_item("HB-0002").authority_level)  # "now a county's"
    for items in ((hijack,), (lowered,)):
        with pytest.raises(Unauthorized, match="HB-0001"):
            fed.publish(COUNTY, Catalog(items=items, issuer=COUNTY))
    # Its own version of a county-level item is its to make.
    assert fed.publish(COUNTY, Catalog(items=(dataclasses.replace(city_item("HB-0002"), promised_days=5),),
                                       issuer=COUNTY)) >= 1
    run(fed.settle())
    assert fed.core(VILLAGE).store.catalog().items["HB-0002"].promised_days == 5
    # The city raises HB-0002 to city level: the county's version no longer overrides it.
    raised = dataclasses.replace(city_item("HB-0002"), authority_level=city_item("HB-0001").authority_level)
    version = fed.publish(CITY, Catalog(items=tuple(raised if i.code == "HB-0002" else i for i in CATALOG.items),
                                        issuer=CITY))
    run(fed.settle())
    catalog = fed.core(VILLAGE).store.catalog()
    assert catalog.sources["HB-0002"] == (CITY, version) and catalog.items["HB-0002"] == raised


def test_a_release_from_the_parent_outside_its_issuers_authority_is_set_aside(fed: Federation) -> None:
    """A parent (relaying, say, a forged release) may send only its ancestors' releases,
    each within its issuer's authority; anything else is quarantined and counted."""
    uplink = fed.uplink(VILLAGE)
    watch, before = Refused(fed, VILLAGE), fed.core(VILLAGE).store.catalog()
    hijack = dataclasses.replace(city_item("HB-0001"), promised_days=1).to_dict()
    bad = [
        CatalogMessage(99, COUNTY, (hijack,)),  # a county redefining a city item
        CatalogMessage(99, TOWN, (dataclasses.replace(city_item("SJ-0002"), code="XZ-0001").to_dict(),)),  # a township
        CatalogMessage(99, VILLAGE, (hijack,)),  # in the receiver's own name
    ]
    parent_inc, _ = uplink.down_position()
    envelopes = [forged(TOWN, "catalog", "", m.encode()) for m in bad]
    uplink.apply_down(parent_inc, envelopes)
    assert watch.since() == {"catalog_authority": 1, "not_an_issuer": 1, "catalog_issuer": 1}
    assert len(watch.quarantined()) == 3
    catalog = fed.core(VILLAGE).store.catalog()
    assert catalog.releases == before.releases and catalog.items == before.items


# --- (d) an appeal decided in an ancestor's name ---


def test_nobody_below_or_beside_speaks_in_an_ancestors_name(fed: Federation) -> None:
    """An appeal about the township is decided above it (the people rules say by whom); its
    decision travels as a request whose origin the owner trusts because the link vouches for
    it: a village cannot send one "from" the county, nor the county one "from" the township."""
    watch = Refused(fed, TOWN)
    decision = RequestMessage("R1", "appeal_decided", {"upheld": True}, COUNTY, utc_text(fed.clock.now())).encode()
    with pytest.raises(Forbidden, match=f"child {VILLAGE} may send only what its own subtree created"):
        fed.core(TOWN).children.push(VILLAGE, incarnation(fed, VILLAGE), [forged(COUNTY, "request", TOWN, decision)])
    own = RequestMessage("R1", "appeal_decided", {"upheld": True}, TOWN, utc_text(fed.clock.now())).encode()
    parent_inc, _ = fed.uplink(TOWN).down_position()
    with pytest.raises(Forbidden, match=f"parent {COUNTY} may not speak for {TOWN}"):
        fed.uplink(TOWN).apply_down(parent_inc, [forged(TOWN, "request", TOWN, own)])
    assert watch.since() == {"outside_subtree": 1, "speaks_for_receiver": 1}
    assert watch.quarantined() == [] and fed.core(TOWN).inbox.depth == 0
