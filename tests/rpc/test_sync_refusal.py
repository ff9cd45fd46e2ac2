"""The gRPC transport classifies a batch the parent refuses, over a real server: a Push batch
larger than the parent's message limit is ``BatchRefused`` (not "busy", not "RPC already
finished"), the next write on the dead stream says the same, and a new stream carries on.
A Pull reply is cut to the bytes the child asks for, and what alone exceeds them is withheld
at the parent, its marker sent in its place; replaying that entry queues it again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from govnet.node.process.build import MAX_MESSAGE_BYTES
from govnet.node.rpc.client import GovnetClient
from govnet.node.store import outbox, quarantine
from govnet.ops.processes import init_node
from govnet.sync.batching import RECEIVE_LIMIT
from govnet.sync.cursor import Cursor
from govnet.sync.envelope import PROTOCOL_VERSION, WITHHELD, Envelope, Withheld
from govnet.sync.transport.base import BatchRefused, Hello

from support.helpers import push_one, uplink_as
from support.inprocess import BackgroundLoop, start_in_process

CITY, COUNTY = "371100", "371102"


def envelope(seq: int, payload: int) -> Envelope:
    return Envelope(seq, COUNTY, 1, seq, "summary", CITY, f"case-{seq}", 0, b"{" + b" " * payload + b"}",
                    "2026-03-10T01:00:00+00:00")


def test_the_batch_limit_is_derived_from_the_message_limit_nodes_serve_with() -> None:
    assert RECEIVE_LIMIT == MAX_MESSAGE_BYTES


def test_a_batch_larger_than_the_parents_limit_is_refused_as_such(loop: BackgroundLoop, tmp_path: Path) -> None:
    city = start_in_process(loop, init_node(tmp_path / CITY, CITY, "city"))
    try:
        async def scenario() -> None:
            transport = uplink_as(COUNTY, city.address, tmp_path / "county-tls", timeout_s=5.0)
            try:
                await transport.hello(Hello(COUNTY, "county", PROTOCOL_VERSION, 0, 1))
                stream = transport.open_push(COUNTY, 1)
                try:
                    await stream.send([envelope(1, MAX_MESSAGE_BYTES + 10)])
                    with pytest.raises(BatchRefused, match="larger than max"):
                        await stream.acknowledgement()
                    await asyncio.sleep(0.05)
                    with pytest.raises(BatchRefused, match="larger than max"):  # the dead stream says why
                        await stream.send([envelope(2, 10)])
                finally:
                    await stream.close()
                assert (await push_one(transport, COUNTY, 1, [envelope(1, 10)])).has(1)  # a new stream carries on
            finally:
                await transport.close()

        loop.run(scenario())
    finally:
        city.stop()


def test_a_pull_reply_is_cut_to_what_the_child_takes_and_withholds_what_never_fits(
        loop: BackgroundLoop, tmp_path: Path) -> None:
    city = start_in_process(loop, init_node(tmp_path / CITY, CITY, "city"))
    try:
        async def hello() -> int:
            transport = uplink_as(COUNTY, city.address, tmp_path / "county-tls", timeout_s=5.0)
            try:
                return (await transport.hello(Hello(COUNTY, "county", PROTOCOL_VERSION, 0, 1))).incarnation
            finally:
                await transport.close()

        incarnation = loop.run(hello())
        store = city.store
        with store.reading() as s:  # what the city queues for a child that registers: its certificates
            registered = [e.kind for e in outbox.pending(s, COUNTY)]
        assert registered == ["certificates"]
        first = len(registered)  # the envelopes of this test follow them in the outbox
        with store.transaction() as s:
            for size in (5_000, 200_000, 5_000, 5_000):
                outbox.send_encoded(s, store.meta, target=COUNTY, kind="event", payload=b"{" + b" " * size + b"}",
                                    case_key="371102-01-000001-3", priority=0, now=datetime.now(UTC))

        async def pull() -> list[Envelope]:
            transport = uplink_as(COUNTY, city.address, tmp_path / "county-tls", timeout_s=5.0)
            try:
                got = await transport.pull(COUNTY, 1, incarnation, Cursor(), 200, 100_000)
                return list(got.envelopes)
            finally:
                await transport.close()

        got = loop.run(pull())
        assert [e.kind for e in got] == [*registered, "event", WITHHELD, "event", "event"]
        assert Withheld.decode(got[first + 1].payload).size > 200_000
        with store.reading() as s:
            assert [e.kind for e in outbox.pending(s, COUNTY)] == [*registered, "event", WITHHELD, "event", "event"]
            assert quarantine.per_link(s) == {(COUNTY, "sender"): 1}
        with GovnetClient(city.address) as client:
            (entry,) = client.quarantine().items
            assert (entry.side, entry.reason, entry.envelope.seq) == ("sender", "too_large", first + 2)
            assert client.replay(entry.id).requeued  # it fits the city's own limit: queued again
            assert list(client.quarantine().items) == []
        with store.reading() as s:
            again = outbox.pending(s, COUNTY)[-1]
        assert (again.seq, again.kind, again.origin_seq) == (first + 5, "event", entry.envelope.origin_seq)
    finally:
        city.stop()
