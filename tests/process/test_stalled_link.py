"""The stalled county→city link of issue #11, reproduced with real processes, does not stall.

A county's outbox holds, ahead of everything it escalates later, a 15 MiB hand-over to the
city: more than the city's gRPC receive limit (8 MiB). It is written through the county's
outbox repository before the county starts, as a release without size limits left it (the
limits at the edge now refuse to create such a case, so this is the honest way to get one
there; it is exactly the data that stalled the link). Both nodes then run as real
``govnet node serve`` processes: the cases the county escalates after it arrive at the
city, and the big one is listed in the quarantine at both ends, with its reason and size
(the county withheld it and sent a marker in its place; the city recorded the marker).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.rpc.client import ClientError, GovnetClient
from govnet.node.store import outbox
from govnet.ops.applicants import person_name, phone, resident_id
from govnet.ops.processes import NodeProcess, free_ports, init_node

from support.accounts import spawn_node
from support.helpers import store_of, wait_for

pytestmark = pytest.mark.slow

CITY, COUNTY = "371100", "371102"
BIG = "371102-01-000900-2"  # the receipt the old release's hand-over carried
BIG_BYTES = 15 * 1024 * 1024
SAMPLE = load_catalog_file(sample_catalog_path())
ITEM = next(i for i in SAMPLE.items if i.code == "HB-0001")  # decided by the city


def test_a_case_too_large_for_the_city_does_not_stall_the_county_link(tmp_path: Path) -> None:
    city_port, county_port = free_ports(2)
    sync = {"flush_interval_s": 0.1}
    city_dir = init_node(tmp_path / "city", CITY, "city", listen=f"127.0.0.1:{city_port}", sync=sync)
    county_dir = init_node(tmp_path / "county", COUNTY, "county", f"127.0.0.1:{city_port}",
                           listen=f"127.0.0.1:{county_port}", sync=sync)
    with store_of(county_dir) as store, store.transaction() as s:
        payload = json.dumps({"receipt": BIG, "note": "x" * BIG_BYTES}).encode()
        outbox.send_encoded(s, store.meta, target=CITY, kind="transfer", payload=payload, case_key=BIG, priority=2,
                            now=datetime.now(UTC))

    # One after the other: signing the tester in opens each store, and its schema check (alembic)
    # is not safe in two threads at once.
    procs: list[NodeProcess] = []
    try:
        for d in (city_dir, county_dir):
            procs.append(spawn_node(d))
        city, county = procs
        with GovnetClient(city.address) as c:
            c.put_catalog(SAMPLE)
        rng = random.Random(11)
        receipts = []
        with GovnetClient(county.address, timeout=10) as c:
            wait_for(lambda: bool(c.list_items().releases), 15, lambda: "the catalog never reached the county")
            for i in range(2):
                done = c.submit(idempotency_key=f"after-{i}", item_code=ITEM.code, name=person_name(rng),
                                id_number=resident_id(rng), phone=phone(rng),
                                materials=list(ITEM.core_materials), actor="窗口-王芳")
                receipt = done.case.receipt
                for action in ("accept", "review"):
                    c.act(receipt, action, actor="窗口-王芳")
                c.act(receipt, "escalate", actor="首席代表-赵强", reason="市级审批")
                receipts.append(receipt)

        with GovnetClient(city.address) as c:
            def arrived() -> bool:
                held = {case.receipt: case.owner for case in c.list().cases}
                return all(held.get(r) == CITY for r in receipts)

            wait_for(arrived, 15, lambda: f"escalations never reached the city; county log: {_tail(county)}")
            at_city = list(c.quarantine().items)
        assert [(q.link, q.side, q.reason, q.envelope.case_key, q.envelope.kind) for q in at_city] == [
            (COUNTY, "receiver", "withheld", BIG, "transfer")]
        assert at_city[0].size > BIG_BYTES
        assert at_city[0].error.startswith(f"withheld by the sender {COUNTY}: transfer of {at_city[0].size:,} bytes: ")

        with GovnetClient(county.address) as c:
            (withheld,) = c.quarantine().items
            status = c.sync_status()
            with pytest.raises(ClientError, match="raise sync.batch_max_bytes") as refused:
                c.replay(withheld.id)
        assert refused.value.code is grpc.StatusCode.FAILED_PRECONDITION
        assert (withheld.link, withheld.side, withheld.reason) == (CITY, "sender", "too_large")
        assert withheld.error.endswith("(the batch limit)") and withheld.size == at_city[0].size
        assert len(withheld.envelope.payload) <= 4096  # the list fits a message; the entry keeps it whole
        assert (status.quarantined, status.quarantined_sent) == (1, 1)
        assert [(link.neighbour, link.quarantined, link.quarantined_sent) for link in status.links] == [(CITY, 0, 1)]
        # The link is clear: nothing waits for the city (the node's own periodic reports, queued
        # at any moment, leave with the next exchange).
        def waiting() -> int:
            with store_of(county_dir) as store, store.reading() as s:
                return int(outbox.depth(s, CITY)[0])

        wait_for(lambda: waiting() == 0, 15, lambda: f"{waiting()} envelopes still wait for the city")
    finally:
        for p in procs:
            p.stop()


def _tail(proc: NodeProcess) -> str:
    return proc.stderr_path.read_text(errors="replace")[-1500:]
