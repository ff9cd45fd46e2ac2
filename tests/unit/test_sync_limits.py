"""No envelope can stall a link, at the pure core: batches are cut by their size on the wire,
an envelope that can never fit is withheld (a marker at its position), and a batch the
receiver refuses is split until the culprit flies alone and is withheld.

``Parent`` below is a receiver with a message limit, over a list: it takes a batch whole
(its cursor advances) or refuses it as gRPC refuses a message larger than its limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from govnet.node.cli.format import format_quarantine, format_sync_status
from govnet.node.process.config import ConfigError, build_settings, env_overrides
from govnet.node.process.metrics import StoreFacts, gauges
from govnet.sync.batching import (
    BATCH_OVERHEAD,
    DEFAULT_MAX_BYTES,
    RECEIVE_LIMIT,
    select_batch,
    too_large,
    withhold_oversize,
)
from govnet.sync.cursor import Cursor
from govnet.sync.envelope import WITHHELD, Envelope, Withheld, batch_size, wire_size
from govnet.sync.uplink import UpLinkCore
from govnet.v1 import sync_pb2

PARENT, CHILD = "371100", "371102"
T0 = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)


def env(seq: int, payload: int = 100, key: str = "") -> Envelope:
    return Envelope(seq, CHILD, 1, seq, "transfer", PARENT, key or f"371102-01-{seq:06d}-0", 0,
                    b"x" * payload, "2026-03-10T01:00:00+00:00")


def seqs(batch: Iterable[Envelope]) -> list[int]:
    return [e.seq for e in batch]


@pytest.mark.parametrize("e", [
    env(1), env(2**40, 70_000), Envelope(0, "", 0, 0, "", "", "", 0, b"", ""),
    Envelope(3, "村", 2**31, 2**63 - 1, "事件", PARENT, "", -5, b"{}", "2026"),
])
def test_the_size_a_batch_is_cut_by_is_the_envelope_as_protobuf_encodes_it(e: Envelope) -> None:
    wire = sync_pb2.Envelope(seq=e.seq, origin=e.origin, origin_incarnation=e.origin_incarnation,
                             origin_seq=e.origin_seq, kind=e.kind, target=e.target, case_key=e.case_key,
                             priority=e.priority, payload=e.payload, created_at=e.created_at)
    assert wire_size(e) == wire.ByteSize()
    request = sync_pb2.PushRequest(sender=CHILD, sender_incarnation=3, envelopes=[wire, wire], settled_below=2**40)
    assert batch_size([e, e]) >= request.ByteSize() + 5  # with gRPC's frame header
    assert batch_size([e, e]) - request.ByteSize() <= BATCH_OVERHEAD


def test_a_batch_is_cut_by_bytes_as_well_as_count() -> None:
    pending = [env(i, 1000) for i in range(1, 11)]
    one = pending[0].size()
    assert seqs(select_batch(pending, 200, BATCH_OVERHEAD + 3 * one)) == [1, 2, 3]
    assert seqs(select_batch(pending, 2, 10**9)) == [1, 2]
    assert batch_size(select_batch(pending, 200, 5000)) <= 5000


def test_an_envelope_that_can_never_fit_is_replaced_by_a_marker_at_its_position() -> None:
    big = env(2, 20_000)
    out, effects = withhold_oversize([env(1), big, env(3)], 10_000, CHILD)
    assert seqs(out) == [1, 2, 3] and out[0] == env(1) and out[2] == env(3)
    (effect,) = effects
    assert effect.original == big and effect.why == "too_large"
    assert effect.marker.kind == WITHHELD and effect.marker.identity == big.identity
    assert (effect.marker.seq, effect.marker.case_key, effect.marker.target) == (2, big.case_key, PARENT)
    note = Withheld.decode(effect.marker.payload)
    assert (note.kind, note.size, note.sender) == ("transfer", big.size(), CHILD)
    assert note.describe() == f"withheld by the sender {CHILD}: transfer of {big.size():,} bytes: " \
                              f"{big.size() + BATCH_OVERHEAD:,} bytes > 10,000 (the batch limit)"
    assert not too_large(effect.marker, 10_000)


class Parent:
    """A receiver with a message limit: takes a batch whole, or refuses it (too large)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.cursor = Cursor()
        self.stored: list[Envelope] = []
        self.refusals = 0

    def push(self, batch: list[Envelope]) -> Cursor | None:
        if batch_size(batch) > self.limit:
            self.refusals += 1
            return None
        self.stored.extend(batch)
        self.cursor = self.cursor.add(e.seq for e in batch)
        return self.cursor


def drive(core: UpLinkCore, rows: list[Envelope], parent: Parent, exchanges: int = 3) -> list[str]:
    """Exchanges as the session runs them (sans I/O): the store half executes the core's
    effects on ``rows``; returns the withheld envelopes' reasons, in order."""
    withheld: list[str] = []

    def execute(effect_marker: Envelope, reason: str) -> None:
        rows[:] = [effect_marker if r.seq == effect_marker.seq else r for r in rows]
        withheld.append(reason)

    for _ in range(exchanges):
        core.begin()
        for _round in range(100):
            read = core.to_read()
            if read is not None:
                core.read([e for e in rows if e.seq > read.after][: read.limit])
            step = core.next_batch(T0)
            for effect in step.withhold:
                execute(effect.marker, effect.reason)
            if step.delete is not None:
                rows[:] = [r for r in rows if not step.delete.cursor.has(r.seq)]
                core.deleted(step.delete)
            if not step.batch:
                break
            core.sent(step.batch)
            answer = parent.push(step.batch)
            if answer is None:
                refused = core.refused("RESOURCE_EXHAUSTED: received message larger than max")
                if refused is not None:
                    execute(refused.marker, refused.reason)
                continue
            assert core.acknowledged(answer).whole
    return withheld


def test_an_oversize_envelope_is_withheld_and_nothing_behind_it_waits() -> None:
    rows = [env(1), env(2, 50_000), *(env(i) for i in range(3, 30))]
    core = UpLinkCore(PARENT, batch_max=10, max_bytes=10_000, node_id=CHILD)
    parent = Parent(limit=10_000)
    withheld = drive(core, rows, parent)
    assert seqs(parent.stored) == list(range(1, 30))  # every position reached the receiver, in order
    assert parent.stored[1].kind == WITHHELD and parent.refusals == 0
    assert withheld == [f"{env(2, 50_000).size() + BATCH_OVERHEAD:,} bytes > 10,000 (the batch limit)"]
    assert rows == []  # all acknowledged and deleted: the link is clear
    assert core.withheld == 1


def test_a_refused_batch_is_split_until_the_culprit_flies_alone_and_is_withheld() -> None:
    # The child's limit allows 40 kB; the receiver takes only 20 kB (a misconfigured peer).
    rows = [*(env(i, 1000) for i in range(1, 9)), env(9, 30_000), *(env(i, 1000) for i in range(10, 41))]
    core = UpLinkCore(PARENT, batch_max=200, max_bytes=40_000, node_id=CHILD)
    parent = Parent(limit=20_000)
    withheld = drive(core, rows, parent)
    assert seqs(parent.stored) == sorted(seqs(parent.stored)) == list(range(1, 41))
    assert [e.seq for e in parent.stored if e.kind == WITHHELD] == [9]
    assert withheld == ["refused by the receiver: RESOURCE_EXHAUSTED: received message larger than max"]
    assert 1 <= parent.refusals <= 8  # halving, not resending the same batch forever
    assert rows == []


def test_after_a_refusal_one_batch_flies_at_a_time_until_one_passes() -> None:
    core = UpLinkCore(PARENT, batch_max=2, push_window=2, max_bytes=100_000, node_id=CHILD)
    core.begin()
    core.read([env(i) for i in range(1, 9)])
    first = core.next_batch(T0).batch
    core.sent(first)
    second = core.next_batch(T0).batch
    core.sent(second)
    assert core.refused("INVALID_ARGUMENT: cannot parse") is None  # two batches flew: not yet known which
    assert core.in_flight == 0 and core.cap < batch_size(first + second)
    again = core.next_batch(T0).batch
    assert seqs(again) == [1]  # nothing was settled: offered again, smaller
    core.sent(again)
    assert not core.may_send
    assert core.acknowledged(Cursor(1)).whole and core.may_send


# --- what ops set and see ---


@pytest.mark.parametrize("value, error", [
    (100, "sync.batch_max_bytes: 100 is outside 65536 … 8323072"),
    (9 * 1024 * 1024, "sync.batch_max_bytes: 9437184 is outside 65536 … 8323072"),  # above the receiver's limit
    ("8MB", "sync.batch_max_bytes: '8MB' is not a whole number"),
])
def test_the_batch_byte_limit_is_validated(value: object, error: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_settings("sync", {"batch_max_bytes": value})
    assert str(info.value) == error


def test_the_batch_byte_limit_defaults_below_the_message_limit_and_can_be_set_from_the_environment() -> None:
    assert build_settings("sync", {}).batch_max_bytes == DEFAULT_MAX_BYTES == RECEIVE_LIMIT - 64 * 1024
    assert env_overrides({"GOVNET_SYNC_BATCH_MAX_BYTES": "100000"}) == {"sync": {"batch_max_bytes": 100_000}}


def test_the_quarantine_list_shows_both_sides_in_beijing_time() -> None:
    listing = sync_pb2.QuarantineListResponse(items=[
        sync_pb2.QuarantinedItem(id=1, link=PARENT, side="sender", reason="too_large", size=15_728_784,
                                 quarantined_at="2026-12-03T05:15:00.000000+00:00",
                                 error="15,728,848 bytes > 8,323,072 (the batch limit)",
                                 envelope=sync_pb2.Envelope(seq=7, kind="transfer", case_key="371102-01-000900-2")),
        sync_pb2.QuarantinedItem(id=2, link="371102001", side="receiver", reason="apply", size=300,
                                 quarantined_at="2026-12-03T16:00:00+00:00", error="ApplyError: gap",
                                 envelope=sync_pb2.Envelope(seq=9, kind="event", case_key="371102-01-000901-0")),
    ])
    lines = format_quarantine(listing).splitlines()
    assert lines[0].split() == ["id", "link", "side", "seq", "kind", "case", "bytes", "when", "(Beijing)", "reason"]
    assert lines[2].split()[:9] == ["1", PARENT, "sender", "7", "transfer", "371102-01-000900-2", "15,728,784",
                                    "2026-12-03", "13:15:00"]
    assert lines[2].endswith("15,728,848 bytes > 8,323,072 (the batch limit)")
    assert lines[3].split()[7:9] == ["2026-12-04", "00:00:00"]  # the next day in Beijing


def test_sync_status_counts_what_each_link_holds_on_each_side() -> None:
    status = sync_pb2.SyncStatusResponse(node_id=CHILD, quarantined=3, quarantined_sent=1, links=[
        sync_pb2.LinkStatus(neighbour=PARENT, direction="up", state="connected", quarantined=2, quarantined_sent=1)])
    text = format_sync_status(status)
    assert text.splitlines()[0] == f"node {CHILD}: 3 quarantined (2 received, 1 withheld here)"
    header, _, row = text.splitlines()[2:5]
    assert "quar. recv" in header and "quar. sent" in header
    assert row.split()[:3] == [PARENT, "up", "connected"] and row.split()[-2:] == ["2", "1"]


def test_the_quarantine_gauge_has_one_series_per_side_and_reason() -> None:
    facts = StoreFacts(CHILD, "county", (), 0, (), (), 2, None, 0, 0, 0, (("sender", "too_large", 1),
                                                                          ("receiver", "apply", 1)))
    (family,) = [f for f in gauges(facts) if f.name == "govnet_sync_quarantined"]
    assert {(s.labels["side"], s.labels["reason"]): s.value for s in family.samples} == {
        ("receiver", "apply"): 1, ("receiver", "withheld"): 0, ("sender", "too_large"): 1, ("sender", "refused"): 0}
