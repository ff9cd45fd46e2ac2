"""The node's Prometheus metrics: RPCs counted as they happen, store gauges read at scrape time.

Scrapes go over real HTTP to a real node (in-process, so the test holds its clock) and are
parsed with prometheus-client's own text parser; the expected numbers come from the node's
SQLite file read with plain ``sqlite3``, not from the code under test.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from govnet.node.app.links import LinkReport
from govnet.node.process.metrics import EXPORTED, StoreFacts, gauges
from govnet.node.rpc.client import ClientError
from govnet.node.store import outbox
from govnet.node.store.engine import DB_FILE
from govnet.sync.envelope import PROTOCOL_VERSION
from govnet.sync.transport.base import Hello, Refused

from support.helpers import CLERK, every_case, push_one, statistics_settled, store_of, submit, uplink_as

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(http: str) -> Samples:
    reply = httpx.get(f"http://{http}/metrics", timeout=10)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def counted(data_dir: Path, status: str, case_type: str) -> int:
    """Cases with ``status`` and ``case_type``, counted from the store's case list (not from
    the count the gauge itself reads)."""
    with store_of(data_dir) as store:
        return sum(1 for c in every_case(store) if (c.state.status.value, c.state.case_type.value) == (status, case_type))


def waiting_for(data_dir: Path, link: str) -> int:
    """Envelopes the outbox holds for ``link``, listed one by one (not the depth the gauge reads)."""
    with store_of(data_dir) as store, store.reading() as s:
        return len(outbox.pending(s, link))


# --- the pure part: one snapshot of the store becomes metric families ---


class _Fixed(Collector):
    def __init__(self, facts: StoreFacts) -> None:
        self.facts = facts

    def collect(self):  # type: ignore[no-untyped-def]
        return gauges(self.facts)


def test_a_snapshot_of_the_store_becomes_gauges_with_the_same_numbers() -> None:
    up = LinkReport("371102", "up", "retrying", None, 7, 42.5, "2026-03-10T01:00:00+00:00", "refused", None)
    down = LinkReport("371102001201", "down", "connected", None, 0, 0.0, None, "", None)
    facts = StoreFacts("371102001", "township", [("received", "immediate", 3), ("accepted", "promised", 2)], 4,
                       [("approved", 9)], [up, down], 1, 12.0, 2, 4096, complaints_open=3)
    registry = CollectorRegistry()
    registry.register(_Fixed(facts))
    get = registry.get_sample_value
    assert get("govnet_node_info", {"node": "371102001", "level": "township"}) == 1
    assert get("govnet_cases", {"status": "received", "case_type": "immediate"}) == 3
    assert get("govnet_cases", {"status": "accepted", "case_type": "promised"}) == 2
    assert get("govnet_cases_overdue") == 4
    assert get("govnet_case_summaries", {"status": "approved"}) == 9
    assert get("govnet_outbox_depth", {"link": "371102", "direction": "up"}) == 7
    assert get("govnet_outbox_oldest_age_seconds", {"link": "371102", "direction": "up"}) == 42.5
    assert get("govnet_sync_link_up", {"link": "371102", "direction": "up"}) == 0
    assert get("govnet_sync_link_up", {"link": "371102001201", "direction": "down"}) == 1
    assert get("govnet_sync_last_success_timestamp_seconds", {"link": "371102", "direction": "up"}) == 1773104400.0
    # A link that never succeeded has no last-success sample rather than a fake zero.
    assert get("govnet_sync_last_success_timestamp_seconds", {"link": "371102001201", "direction": "down"}) is None
    assert get("govnet_quarantined") == 1
    assert get("govnet_rollup_age_seconds") == 12.0
    assert get("govnet_alarms_open") == 2
    assert get("govnet_store_bytes") == 4096
    assert get("govnet_complaints_open") == 3


# --- a real node ---


@pytest.fixture
def county(make_node):  # type: ignore[no-untyped-def]
    """A county whose city is unreachable (so what it sends up stays in its outbox)."""
    node, client = make_node("371102", "county", parent="127.0.0.1:1", http_listen="127.0.0.1:0")
    return node, client


def test_rpcs_are_counted_by_method_and_status_code_with_latency(county) -> None:  # type: ignore[no-untyped-def]
    node, client = county
    before = scrape(node.node.http_address)
    for _ in range(3):
        submit(client, "SJ-0001")
    with pytest.raises(ClientError) as unknown_case:
        client.get("371102-01-999999-0")
    with pytest.raises(ClientError) as unknown_item:
        submit(client, "NO-SUCH-ITEM", materials=[])
    after = scrape(node.node.http_address)

    def delta(name: str, **labels: str) -> float:
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert delta("govnet_rpc_requests_total", method="Submit", code="OK") == 3
    # A refused call is counted under the status code the client saw.
    assert delta("govnet_rpc_requests_total", method="Submit", code=unknown_item.value.code.name) == 1
    assert delta("govnet_rpc_requests_total", method="Get", code=unknown_case.value.code.name) == 1
    assert unknown_item.value.code.name != "OK" and unknown_case.value.code.name != "OK"
    assert delta("govnet_rpc_duration_seconds_count", method="Submit") == 4
    assert delta("govnet_rpc_duration_seconds_bucket", method="Submit", le="+Inf") == 4
    assert (value(after, "govnet_rpc_duration_seconds_sum", method="Submit") or 0) > 0


def test_push_streams_are_counted_when_they_end(county, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node, _ = county
    before = scrape(node.node.http_address)

    async def pushes() -> None:
        transport = uplink_as("371102001", node.address, tmp_path / "township", retries=1)
        try:
            with pytest.raises(Refused, match="has not registered"):
                await push_one(transport, "371102001", 1, [])
            await transport.hello(Hello("371102001", "township", PROTOCOL_VERSION, 0, 1))
            for _ in range(2):
                await push_one(transport, "371102001", 1, [])
        finally:
            await transport.close()

    asyncio.run(pushes())
    after = scrape(node.node.http_address)

    def delta(name: str, **labels: str) -> float:
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert delta("govnet_rpc_requests_total", method="Push", code="OK") == 2
    assert delta("govnet_rpc_requests_total", method="Push", code="FAILED_PRECONDITION") == 1
    assert delta("govnet_rpc_duration_seconds_count", method="Push") == 3


def test_case_and_outbox_gauges_match_the_store_at_scrape_time(county, clock) -> None:  # type: ignore[no-untyped-def]
    node, client = county
    for _ in range(2):
        submit(client, "SJ-0001")
    promised = submit(client, "SJ-0003").case.receipt
    client.act(promised, "accept", actor=CLERK)
    data = node.data_dir
    statistics_settled(data)  # its report joins the outbox in the background: count after it
    samples = scrape(node.node.http_address)
    assert value(samples, "govnet_cases", status="received", case_type="immediate") == counted(
        data, "received", "immediate") == 2
    assert value(samples, "govnet_cases", status="accepted", case_type="promised") == 1
    queued = waiting_for(data, "371100")
    assert queued > 0  # summaries for the city wait: the city is unreachable
    assert value(samples, "govnet_outbox_depth", link="371100", direction="up") == queued
    assert value(samples, "govnet_sync_link_up", link="371100", direction="up") == 0
    assert value(samples, "govnet_cases_overdue") == 0

    # Gauges are computed when scraped: move the node's clock and the ages follow.
    clock.advance(timedelta(days=40))
    later = scrape(node.node.http_address)
    assert (value(later, "govnet_outbox_oldest_age_seconds", link="371100", direction="up") or 0) >= 40 * 86400
    assert value(later, "govnet_cases_overdue") == 1  # the accepted promised case is past its due date


def test_store_size_counts_the_sqlite_files(county) -> None:  # type: ignore[no-untyped-def]
    node, client = county
    submit(client, "SJ-0001")
    samples = scrape(node.node.http_address)
    on_disk = sum((node.data_dir / (DB_FILE + s)).stat().st_size for s in ("", "-wal", "-shm")
                  if (node.data_dir / (DB_FILE + s)).exists())
    reported = value(samples, "govnet_store_bytes") or 0
    assert (node.data_dir / DB_FILE).stat().st_size <= reported
    assert abs(reported - on_disk) <= 64 * 1024  # the WAL may grow by a page or two between the reads


def test_every_exported_name_shows_up_on_a_busy_node(county, clock) -> None:  # type: ignore[no-untyped-def]
    node, client = county
    receipt = submit(client, "SJ-0003").case.receipt
    client.act(receipt, "accept", actor=CLERK)
    client.sync_status()
    # The city is unreachable: the up-link's last success never comes, so that one family stays empty.
    names = {name for name, _ in scrape(node.node.http_address)}
    stems = {n.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum").removesuffix("_created")
             for n in names}
    missing = {n for n in EXPORTED if n not in stems and n not in names} - {
        "govnet_sync_last_success_timestamp_seconds", "govnet_case_summaries", "govnet_rollup_age_seconds"}
    assert missing == set()


def test_open_alarms_and_complaints_match_what_supervision_lists(make_node) -> None:  # type: ignore[no-untyped-def]
    # Warn 30 working days ahead: a case accepted today gets its yellow card at the first scan.
    node, client = make_node("371102", "county", parent="127.0.0.1:1", http_listen="127.0.0.1:0",
                             supervision={"warn_working_days": 30})
    for _ in range(2):
        receipt = submit(client, "SJ-0003").case.receipt
        client.act(receipt, "accept", actor=CLERK)
    client.scan()
    # About one of its townships: the county is the level that supervises it.
    client.file_complaint("窗口态度差", about_node="371102001", department="市场监督管理局")
    samples = scrape(node.node.http_address)
    listed = [a for a in client.alarms(open_only=True).alarms]
    assert len(listed) == 2
    assert value(samples, "govnet_alarms_open") == len(listed)
    open_complaints = [c for c in client.complaints(status="open").complaints if c.supervisor == "371102"]
    assert len(open_complaints) == 1
    assert value(samples, "govnet_complaints_open") == 1
