"""The up-link's policy at the pure core (``sync.uplink.UpLinkCore``): no store, no transport.

``Outbox`` below is the store half of the driver's contract, over a list: it reads what
the core asks for and deletes what it says, as ``node.app.links.UpLink`` does over SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from govnet.sync.cursor import Cursor
from govnet.sync.envelope import Envelope
from govnet.sync.transport.base import Refused
from govnet.sync.uplink import (
    ACK_FLUSH,
    ACK_FLUSH_BATCHES,
    READ_BATCHES,
    DeleteAcknowledged,
    ParentRestarted,
    RecordParentIncarnation,
    Step,
    UpLinkCore,
    parent_restored,
)

PARENT = "371102001"
T0 = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)


def env(seq: int, priority: int = 0, key: str = "") -> Envelope:
    return Envelope(seq, "371102001201", 1, seq, "summary", PARENT, key or f"case-{seq}", priority, b"{}", "")


def seqs(batch: Iterable[Envelope]) -> list[int]:
    return [e.seq for e in batch]


class Outbox:
    """The store half of the driver: the link's waiting envelopes, in link order."""

    def __init__(self, envelopes: Iterable[Envelope]) -> None:
        self.rows = list(envelopes)
        self.reads: list[int] = []  # the limit of every read asked for

    def step(self, core: UpLinkCore, now: datetime = T0) -> Step:
        """Read what the core asks for, then let it choose (its deletion not executed)."""
        read = core.to_read()
        if read is not None:
            self.reads.append(read.limit)
            core.read([e for e in self.rows if e.seq > read.after][: read.limit])
        return core.next_batch(now)

    def next_batch(self, core: UpLinkCore, now: datetime = T0) -> list[Envelope]:
        step = self.step(core, now)
        if step.delete is not None:
            self.delete(core, step.delete)
        return step.batch

    def delete(self, core: UpLinkCore, effect: DeleteAcknowledged) -> None:
        self.rows = [e for e in self.rows if not effect.cursor.has(e.seq)]
        core.deleted(effect)


def push(core: UpLinkCore, box: Outbox, acknowledge: Iterable[int] = ()) -> list[list[int]]:
    """One exchange's push as the session does it, the parent storing every batch whole;
    returns the batches sent. Checks the window and the flight bounds on the way."""
    cursor = Cursor()
    sent: list[list[int]] = []
    core.begin()
    batch = box.next_batch(core)
    while batch or core.in_flight:
        while batch and core.may_send:
            core.sent(batch)
            sent.append(seqs(batch))
            assert core.in_flight <= core.push_window
            batch = box.next_batch(core)
            assert core.waiting <= core.lookahead
        if not core.in_flight:
            break
        cursor = cursor.add(sent[len(sent) - core.in_flight])
        assert core.acknowledged(cursor).whole
    deletion = core.deletion(T0)
    if deletion is not None:
        box.delete(core, deletion)
    return sent


def test_the_window_never_exceeds_its_bound_and_is_read_a_few_batches_at_a_time() -> None:
    core = UpLinkCore(PARENT, batch_max=10, lookahead_batches=5)
    box = Outbox(env(i) for i in range(1, 1001))
    sent = push(core, box)
    assert [q for b in sent for q in b] == list(range(1, 1001))
    assert core.lookahead == 50
    assert box.reads and max(box.reads) == READ_BATCHES * 10  # never the whole window at once
    assert box.rows == []  # all acknowledged, all deleted once the backlog had gone


def test_each_envelope_is_sent_once_in_link_order_while_others_are_in_flight() -> None:
    core = UpLinkCore(PARENT, batch_max=3, push_window=2)
    box = Outbox(env(i) for i in range(1, 12))
    core.begin()
    first = box.next_batch(core)
    core.sent(first)
    second = box.next_batch(core)  # chosen while the first flies: it leaves the first out
    core.sent(second)
    third = box.next_batch(core)  # chosen while two fly
    assert (seqs(first), seqs(second), seqs(third)) == ([1, 2, 3], [4, 5, 6], [7, 8, 9])
    assert not core.may_send  # the window of batches in flight is full
    got = core.acknowledged(Cursor(3))  # the first batch, whole
    assert (got.done, got.whole, core.in_flight, core.may_send) == (3, True, 1, True)
    core.sent(third)
    assert seqs(box.next_batch(core)) == [10, 11]  # each envelope once, in link order


@pytest.mark.parametrize("window, batches_in_flight", [(1, 1), (2, 2), (3, 3)])
def test_no_more_batches_fly_than_the_window_allows(window: int, batches_in_flight: int) -> None:
    core = UpLinkCore(PARENT, batch_max=2, push_window=window)
    box = Outbox(env(i) for i in range(1, 20))
    core.begin()
    while core.may_send:
        batch = box.next_batch(core)
        core.sent(batch)
    assert core.in_flight == batches_in_flight


def test_urgent_envelopes_go_first_and_a_case_keeps_its_order() -> None:
    core = UpLinkCore(PARENT, batch_max=3)
    box = Outbox([env(1), env(2, key="a"), env(3), env(4, 2, key="b"), env(5, 1, key="a"), env(6)])
    sent = push(core, box)
    # b is urgent; a is promoted as a whole, in link order; the bulk follows in link order.
    assert sent == [[4, 2, 5], [1, 3, 6]]


def test_an_urgent_envelope_read_later_overtakes_the_bulk_still_waiting() -> None:
    core = UpLinkCore(PARENT, batch_max=2, lookahead_batches=20)
    box = Outbox([*(env(i) for i in range(1, 10)), env(10, 2)])
    core.begin()
    first = box.next_batch(core)  # the first read holds two batches' worth: 1..4
    core.sent(first)
    second = box.next_batch(core)  # topped up with 5..8
    core.sent(second)
    third = box.next_batch(core)  # ... and 9, 10: the urgent one goes before 5..8 and 9
    assert (seqs(first), seqs(second), seqs(third)) == ([1, 2], [3, 4], [10, 5])


def test_a_partial_acknowledgement_settles_what_it_covers_and_the_rest_is_sent_again() -> None:
    core = UpLinkCore(PARENT, batch_max=4)
    box = Outbox(env(i) for i in range(1, 9))
    core.begin()
    first = box.next_batch(core)
    core.sent(first)
    second = box.next_batch(core)
    core.sent(second)
    assert seqs(second) == [5, 6, 7, 8]
    got = core.acknowledged(Cursor.of(0, [1, 3]))  # 2 and 4 were lost
    assert (got.done, got.whole) == (2, False)
    assert core.acknowledged(Cursor.of(0, [1, 3, 5, 6, 7, 8])).done == 4  # the rest of the flight collected
    assert core.in_flight == 0
    assert seqs(box.next_batch(core)) == [2, 4]  # what is missing, in link order; nothing settled again


def test_an_acknowledgement_settles_at_once_and_deletion_waits_for_its_turn() -> None:
    batch_max = 2
    core = UpLinkCore(PARENT, batch_max=batch_max)
    box = Outbox(env(i) for i in range(1, 41))
    core.begin()
    box.next_batch(core, T0)  # the first choice ever deletes (nothing yet) and starts the clock
    acked = Cursor()
    for i in range(ACK_FLUSH_BATCHES):
        acked = acked.add(range(1 + i * batch_max, 1 + (i + 1) * batch_max))
        core.acknowledged(acked)
        if i < ACK_FLUSH_BATCHES - 1:
            step = box.step(core, T0)
            assert step.delete is None  # settled (not offered again) but still in the outbox
            assert seqs(step.batch) == [acked.through + 1, acked.through + 2]
    assert len(box.rows) == 40
    # Once ACK_FLUSH_BATCHES batches' worth are settled, they leave together.
    step = box.step(core, T0)
    assert step.delete == DeleteAcknowledged(acked)
    box.delete(core, step.delete)
    assert seqs(box.rows) == list(range(acked.through + 1, 41))
    # ... and at least every ACK_FLUSH, however few.
    core.acknowledged(Cursor(acked.through + 1))
    assert box.step(core, T0 + ACK_FLUSH - timedelta(milliseconds=1)).delete is None
    assert box.step(core, T0 + ACK_FLUSH).delete == DeleteAcknowledged(Cursor(acked.through + 1))


@pytest.mark.parametrize("backlog, due", [(3, True), (5, False)])
def test_deletion_is_due_at_once_when_the_backlog_has_gone(backlog: int, due: bool) -> None:
    core = UpLinkCore(PARENT, batch_max=3)
    box = Outbox(env(i) for i in range(1, backlog + 1))
    core.begin()
    box.next_batch(core, T0)
    core.acknowledged(Cursor(3))
    assert core.deletion_pending is due
    assert (core.deletion(T0) is not None) is due


def test_an_acknowledgement_that_comes_while_deleting_is_kept_for_the_next_deletion() -> None:
    core = UpLinkCore(PARENT, batch_max=2)
    box = Outbox(env(i) for i in range(1, 7))
    core.begin()
    box.next_batch(core, T0)
    core.acknowledged(Cursor(2))
    effect = core.flush(T0)
    assert effect == DeleteAcknowledged(Cursor(2))
    core.acknowledged(Cursor(4))  # arrives before the deletion is reported done
    box.delete(core, effect)
    assert core.flush(T0) == DeleteAcknowledged(Cursor(4))
    # An acknowledged envelope still in the outbox is not read into the window again.
    core.begin()
    assert seqs(box.next_batch(core, T0)) == [5, 6]


@pytest.mark.parametrize("known, incarnation, restored", [
    ((), 1, False),  # first contact: nothing was lost
    ((1,), 1, False),  # known already
    ((1,), 2, True),  # newer than everything written down: restored from a backup
    ((1, 3), 2, False),  # older than one written down: not news of a restoration
    ((1, 3), 4, True),
])
def test_parent_restored(known: tuple[int, ...], incarnation: int, restored: bool) -> None:
    assert parent_restored(known, incarnation) is restored


def test_hello_replies_write_a_new_incarnation_down_once() -> None:
    core = UpLinkCore(PARENT, batch_max=2)
    assert core.hello_replied(PARENT, 5) == [RecordParentIncarnation(5)]  # first heard: no restart
    core.recorded(5)
    assert core.hello_replied(PARENT, 5) == []
    assert core.hello_replied(PARENT, 6) == [ParentRestarted(5, 6), RecordParentIncarnation(6)]
    assert core.parent_incarnation == 6
    assert core.hello_replied(PARENT, 6) == [RecordParentIncarnation(6)]  # not written down yet: ask again
    core.recorded(6)
    core.pulled(7)  # a pull reply names a newer one before the next hello
    assert core.hello_replied(PARENT, 7) == [RecordParentIncarnation(7)]
    with pytest.raises(Refused, match=f"this node's parent is {PARENT}"):
        core.hello_replied("371102", 1)


def test_a_new_exchange_after_an_incarnation_change_offers_again_everything_not_acknowledged() -> None:
    core = UpLinkCore(PARENT, batch_max=2)
    box = Outbox(env(i) for i in range(1, 7))
    core.begin()
    core.hello_replied(PARENT, 1)
    first = box.next_batch(core)
    core.sent(first)
    core.sent(box.next_batch(core))
    core.acknowledged(Cursor(2))  # the first batch is settled; 3 and 4 are lost with the old parent
    assert core.in_flight == 1
    core.begin()
    assert core.hello_replied(PARENT, 2) == [ParentRestarted(1, 2), RecordParentIncarnation(2)]
    assert core.in_flight == 0 and core.may_send
    assert seqs(box.next_batch(core)) == [3, 4]
