"""No envelope can stall a link, with real stores over the in-memory transport.

A county's outbox to the city holds, ahead of ordinary escalations, an envelope larger than
the county's batch limit and one that fits it but not the city's (smaller) message limit —
the in-memory transport refuses such a batch as gRPC does. The escalations behind them
arrive; both big ones are withheld at the county (its quarantine, side ``sender``) and
recorded at the city from their markers (side ``receiver``, reason ``withheld``); a request
that needed the withheld case is quarantined at the city with the existing rule's reason.
The sender's replay queues a withheld envelope again once it fits.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_sync_core import CATALOG, CITY, COUNTY, case, run, submit

from govnet.node.app.inbox import NotReplayable
from govnet.node.app.links import StillTooLarge, SyncSettings, requeue_withheld
from govnet.node.domain.messages import RequestMessage
from govnet.node.store import outbox
from govnet.node.store.models import QuarantineRow
from govnet.node.store.unit import utc_text
from govnet.ops.simulation.harness import Federation
from govnet.sync.envelope import WITHHELD

BIG, MEDIUM = "371102-01-900001-5", "371102-01-900002-3"


def pad(n: int) -> bytes:
    return json.dumps({"note": "x" * n}).encode()


def entries(fed: Federation, node: str) -> list[QuarantineRow]:
    return fed.core(node).inbox.quarantined()


def test_envelopes_that_cannot_be_sent_are_withheld_and_the_cases_behind_them_arrive(tmp_path: Path) -> None:
    with Federation(tmp_path, [CITY, COUNTY], seed=11, settings=SyncSettings(batch_max_bytes=200_000)) as fed:
        fed.publish(CITY, CATALOG)
        run(fed.settle())
        fed.transports[COUNTY].faults.receive_limit = 100_000  # the city takes less than the county sends
        county = fed.core(COUNTY).store
        now = fed.clock.now()
        with county.transaction() as s:
            outbox.send_encoded(s, county.meta, target=CITY, kind="transfer", payload=pad(300_000), case_key=BIG,
                                priority=2, now=now)
            outbox.send_encoded(s, county.meta, target=CITY, kind="transfer", payload=pad(150_000),
                                case_key=MEDIUM, priority=2, now=now)
            outbox.send(s, county.meta, target=CITY, message=RequestMessage(BIG, "supplement", {}, COUNTY,
                                                                             utc_text(now)),
                        case_key=BIG, priority=0, now=now)
        receipts = []
        for i in range(3):
            receipt = submit(fed, COUNTY, "HB-0001", i)  # a city item, received at the county's window
            for action in ("accept", "review"):
                fed.act(COUNTY, receipt, action)
            fed.act(COUNTY, receipt, "escalate", reason="市级审批")
            receipts.append(receipt)
        run(fed.settle())

        assert [case(fed, CITY, r)[3] for r in receipts] == [CITY] * 3  # they arrived; the city owns them
        assert fed.outbox(COUNTY, CITY) == []  # nothing waits on the link

        sent = sorted((q.case_key, q.side, q.reason, q.kind) for q in entries(fed, COUNTY))
        assert sent == [(BIG, "sender", "too_large", "transfer"), (MEDIUM, "sender", "refused", "transfer")]
        at_county = {q.case_key: q for q in entries(fed, COUNTY)}
        assert at_county[BIG].error.endswith("> 200,000 (the batch limit)")
        assert at_county[MEDIUM].error.startswith("refused by the receiver: RESOURCE_EXHAUSTED: received message "
                                                  "larger than max")
        assert at_county[BIG].size > 300_000 and json.loads(at_county[BIG].payload)["note"] == "x" * 300_000

        at_city = {(q.case_key, q.reason): q for q in entries(fed, CITY)}
        assert sorted(at_city) == [(BIG, "apply"), (BIG, "withheld"), (MEDIUM, "withheld")]
        marker = at_city[(BIG, "withheld")]
        assert (marker.side, marker.kind, marker.seq, marker.size) == ("receiver", "transfer", at_county[BIG].seq,
                                                                       at_county[BIG].size)
        assert marker.error.startswith(f"withheld by the sender {COUNTY}: transfer of ")
        # The request that needed the withheld case hits the existing rule, and says so.
        assert at_city[(BIG, "apply")].error == f"ApplyError: request for case {BIG}, which this node has never held"
        assert all(q.kind != WITHHELD for q in entries(fed, CITY))

        # A marker is replayed where the envelope is: at its sender.
        with pytest.raises(NotReplayable, match=f"replay it at {COUNTY}"):
            fed.core(CITY).inbox.replay(marker.id or 0)
        # The sender's replay: refused while it still does not fit; queued again once it does.
        with pytest.raises(StillTooLarge, match="raise sync.batch_max_bytes"):
            requeue_withheld(county, at_county[BIG].id or 0, 200_000, fed.clock.now())
        assert requeue_withheld(county, at_county[MEDIUM].id or 0, 200_000, fed.clock.now())
        assert [(e.kind, e.case_key) for e in fed.outbox(COUNTY, CITY)] == [("transfer", MEDIUM)]
        assert {q.case_key for q in entries(fed, COUNTY)} == {BIG}  # the replayed entry left the list
