"""The sync core: pure tables for cursors, batching, backoff, links, digests and admission;
then a few real nodes in one process (``support.simulation``) over the in-memory transport.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from govnet.node.app.desk import DeskError
from govnet.node.app.inbox import Forbidden
from govnet.node.app.links import SyncSettings
from govnet.node.domain import messages
from govnet.node.domain.catalog import Catalog, load_catalog_file, sample_catalog_path
from govnet.node.domain.messages import CatalogMessage, RequestMessage
from govnet.node.store import outbox
from govnet.node.store.models import ChildLink, QuarantineRow
from govnet.ops.simulation.harness import Federation, applicant
from govnet.sync.admission import Admission, Busy
from govnet.sync.backoff import BackoffPolicy
from govnet.sync.batching import select_batch
from govnet.sync.cursor import Cursor
from govnet.sync.digest import PeriodDigest, digests, divergent
from govnet.sync.driver import LinkDriver
from govnet.sync.envelope import PROTOCOL_VERSION, Envelope
from govnet.sync.link import Health, LinkState, failed, may_try, shown_health, succeeded
from govnet.sync.session import direct
from govnet.sync.transport.base import Hello, LinkDown, ParentBusy, Refused
from govnet.sync.transport.memory import Faults, MemoryTransport

from support.helpers import push_one

T = TypeVar("T")
CATALOG = load_catalog_file(sample_catalog_path())
CITY, COUNTY, TOWN, VILLAGE, VILLAGE2 = "371100", "371102", "371102001", "371102001201", "371102001202"
T0 = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# ---------------------------------------------------------------- cursor


@pytest.mark.parametrize("start, added, through, above", [
    (Cursor(), [1, 2, 3], 3, set()),
    (Cursor(), [3, 1], 1, {3}),
    (Cursor(), [5, 3, 4, 2, 1], 5, set()),
    (Cursor(2), [4, 6], 2, {4, 6}),
    (Cursor.of(2, [4, 6]), [3], 4, {6}),
    (Cursor.of(2, [4, 6]), [5, 3], 6, set()),
    (Cursor(5), [1, 2, 5], 5, set()),  # already covered: nothing changes
    (Cursor(), [], 0, set()),
])
def test_cursor_add_out_of_order(start: Cursor, added: list[int], through: int, above: set[int]) -> None:
    got = start.add(added)
    assert (got.through, set(got.above)) == (through, above)


@pytest.mark.parametrize("cursor, seq, has", [
    (Cursor(3), 0, True), (Cursor(3), 3, True), (Cursor(3), 4, False),
    (Cursor.of(3, [5]), 5, True), (Cursor.of(3, [5]), 4, False), (Cursor.of(3, [5]), 6, False),
])
def test_cursor_has(cursor: Cursor, seq: int, has: bool) -> None:
    assert cursor.has(seq) is has


@pytest.mark.parametrize("mine, theirs, covers", [
    (Cursor(5), Cursor(5), True),
    (Cursor(5), Cursor(4), True),
    (Cursor(4), Cursor(5), False),
    (Cursor(5), Cursor.of(3, [5]), True),
    (Cursor.of(3, [5]), Cursor(5), False),
    (Cursor.of(3, [5, 7]), Cursor.of(3, [7]), True),
    (Cursor.of(3, [5]), Cursor.of(3, [6]), False),
])
def test_cursor_covers(mine: Cursor, theirs: Cursor, covers: bool) -> None:
    assert mine.covers(theirs) is covers


@pytest.mark.parametrize("through, above", [(-1, ()), (3, (3,)), (3, (2, 5)), (0, (0,))])
def test_cursor_invariant_rejects_bad_cursors(through: int, above: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="inconsistent cursor"):
        Cursor(through, frozenset(above))


def test_cursor_of_normalises() -> None:
    assert Cursor.of(2, [3, 4, 6]) == Cursor(4, frozenset({6}))


# ---------------------------------------------------------------- batching


def env(seq: int, key: str = "", priority: int = 0, size: int = 0) -> Envelope:
    return Envelope(seq, "371102001201", 1, seq, "event", "371102", key, priority, b"x" * size, "")


def seqs(batch: list[Envelope]) -> list[int]:
    return [e.seq for e in batch]


@pytest.mark.parametrize("pending, kwargs, expected", [
    ([], {}, []),
    # Urgent groups first; equal priority keeps link order.
    ([env(1, "a"), env(2, "b", 2), env(3, "c"), env(4, "d", 1)], {}, [2, 4, 1, 3]),
    # A case is promoted as a whole, its members in link order.
    ([env(1, "a"), env(2, "b"), env(3, "a", 2)], {}, [1, 3, 2]),
    ([env(1, "a", 1), env(2, "b", 2), env(3, "a", 0), env(4, "b", 0)], {}, [2, 4, 1, 3]),
    # Input order does not matter: the link order (seq) does.
    ([env(3, "a", 2), env(1, "a"), env(2, "b")], {}, [1, 3, 2]),
    # Envelopes without a case key are groups of their own.
    ([env(1), env(2, "", 2), env(3)], {}, [2, 1, 3]),
    # Bounds.
    ([env(i, f"k{i}") for i in range(1, 6)], {"max_count": 2}, [1, 2]),
    ([env(1, "a", 0, 100), env(2, "b", 0, 100), env(3, "c", 0, 100)], {"max_bytes": 400}, [1, 2]),
    ([env(1, "a", 0, 100), env(2, "b", 0, 100)], {"max_bytes": 100}, [1]),  # always at least one
    ([env(1, "a", 0, 10_000)], {"max_bytes": 10}, [1]),
    ([env(1, "a"), env(2, "a"), env(3, "b", 2)], {"max_count": 2}, [3, 1]),  # cut inside a group, order kept
])
def test_select_batch(pending: list[Envelope], kwargs: dict[str, int], expected: list[int]) -> None:
    assert seqs(select_batch(pending, **kwargs)) == expected


def test_batches_keep_per_case_order_until_drained() -> None:
    rng = random.Random(4)
    pending = [env(i, rng.choice("abcd"), rng.choice([0, 0, 1, 2])) for i in range(1, 60)]
    seen: list[Envelope] = []
    while pending:
        batch = select_batch(pending, max_count=7)
        assert batch
        seen += batch
        pending = [e for e in pending if e not in batch]
    assert len(seen) == 59
    for key in "abcd":
        order = [e.seq for e in seen if e.case_key == key]
        assert order == sorted(order), key


# ---------------------------------------------------------------- backoff


@pytest.mark.parametrize("failures, draw, hint, expected", [
    (0, 0.9, 0.0, 0.0),
    (0, 0.9, 3.0, 3.0),
    (1, 0.0, 0.0, 0.0),
    (1, 0.5, 0.0, 0.25),
    (3, 0.5, 0.0, 1.0),
    (8, 1.0, 0.0, 64.0),
    (9, 1.0, 0.0, 120.0),  # capped
    (200, 0.5, 0.0, 60.0),  # no overflow, still capped
    (1, 0.1, 10.0, 10.0),  # the parent's hint is a floor
    (9, 1.0, 10.0, 120.0),
])
def test_backoff_delay(failures: int, draw: float, hint: float, expected: float) -> None:
    assert BackoffPolicy(base_s=0.5, cap_s=120.0).delay(failures, draw, hint) == pytest.approx(expected)


def test_backoff_full_jitter_bounds() -> None:
    policy = BackoffPolicy()
    rng = random.Random(1)
    for failures in range(1, 40):
        ceiling = min(policy.cap_s, policy.base_s * 2 ** (failures - 1))
        delays = [policy.delay(failures, rng.random()) for _ in range(50)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # spread over the range, not a fixed step


# ---------------------------------------------------------------- link


def test_link_failures_then_success() -> None:
    policy = BackoffPolicy()
    state = LinkState("371102")
    assert state.health is Health.NEVER and may_try(state, T0)
    expected = [Health.RETRYING, Health.RETRYING, Health.OFFLINE, Health.OFFLINE]
    for i, health in enumerate(expected, 1):
        now = T0 + timedelta(minutes=i)
        state = failed(state, now, f"boom {i}", draw=0.5, policy=policy)
        assert (state.health, state.failures, state.last_error) == (health, i, f"boom {i}")
        assert state.next_attempt == now + timedelta(seconds=policy.delay(i, 0.5))
        assert not may_try(state, now) and may_try(state, state.next_attempt)
    assert state.since == T0 + timedelta(minutes=3)  # offline since the third failure
    ok = succeeded(state, T0 + timedelta(hours=1))
    assert (ok.health, ok.failures, ok.next_attempt) == (Health.CONNECTED, 0, None)
    assert ok.since == ok.last_success == T0 + timedelta(hours=1)
    again = succeeded(ok, T0 + timedelta(hours=2))
    assert again.since == T0 + timedelta(hours=1) and again.last_success == T0 + timedelta(hours=2)


def test_link_hint_sets_next_attempt() -> None:
    state = failed(LinkState("371102"), T0, "busy", draw=0.0, policy=BackoffPolicy(), hint_s=7.5)
    assert state.next_attempt == T0 + timedelta(seconds=7.5)


@pytest.mark.parametrize("health, oldest_age_s, shown", [
    (Health.CONNECTED, None, Health.CONNECTED),
    (Health.CONNECTED, 0.4, Health.CONNECTED),
    (Health.CONNECTED, 0.6, Health.LAGGING),
    (Health.RETRYING, 60.0, Health.RETRYING),
    (Health.OFFLINE, 60.0, Health.OFFLINE),
])
def test_shown_health_lagging(health: Health, oldest_age_s: float | None, shown: Health) -> None:
    state = LinkState("371102", health=health)
    oldest = None if oldest_age_s is None else T0 - timedelta(seconds=oldest_age_s)
    assert shown_health(state, T0, oldest, timedelta(seconds=0.5)) is shown


# ---------------------------------------------------------------- digest


def test_digest_is_order_independent_and_finds_divergent_periods() -> None:
    rows = [("2026-03-10", f"r{i}", i % 3) for i in range(20)] + [("2026-03-11", "x", 1)]
    shuffled = list(rows)
    random.Random(2).shuffle(shuffled)
    mine = digests(rows)
    assert mine == digests(shuffled)
    assert mine["2026-03-10"].count == 20 and mine["2026-03-11"].count == 1
    assert divergent(mine, digests(shuffled)) == []
    bumped = [r if r[1] != "r4" else (r[0], "r4", 9) for r in rows]
    assert divergent(mine, digests(bumped)) == ["2026-03-10"]
    assert divergent(mine, digests(rows[:-1])) == ["2026-03-11"]
    assert divergent(mine, {}) == ["2026-03-10", "2026-03-11"]
    assert divergent({}, {"p": PeriodDigest("p", 0, "")}) == ["p"]


# ---------------------------------------------------------------- admission


def test_admission_limit_busy_hint_and_leave() -> None:
    adm = Admission(2, hint_s=1.0)
    adm.enter()
    adm.enter()
    assert adm.in_progress == 2
    hints = []
    for _ in range(3):
        with pytest.raises(Busy) as busy:
            adm.enter()
        hints.append(busy.value.retry_after_s)
    assert hints == pytest.approx([1.1, 1.2, 1.3])  # the hint grows with the queue
    assert "retry after 1.3 s" in str(busy.value)
    adm.leave()
    adm.enter()  # a slot came free
    assert adm.in_progress == 2
    with pytest.raises(ValueError):
        Admission(0)


# ---------------------------------------------------------------- real nodes, in process


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    """City, county, township and two villages with the sample catalog everywhere."""
    f = Federation(tmp_path, [CITY, COUNTY, TOWN, VILLAGE, VILLAGE2], seed=3)
    f.publish(CITY, CATALOG)
    run(f.settle())
    yield f
    f.close()


def submit(f: Federation, node: str, item: str, i: int, **kw: Any) -> str:
    if len(node) == 12:
        kw.setdefault("agent", f"agent@{node}")
    return f.submit(node, item, f"key-{i}", **applicant(i), **kw).record.state.receipt


def maybe_case(f: Federation, node: str, receipt: str) -> tuple[Any, ...] | None:
    """The snapshot row of ``receipt`` at ``node``: (receipt, status, case_type, owner, owner_epoch,
    origin, event_count, decision, materials, pending, catalog_version)."""
    return next((c for c in f.snapshot()[node]["cases"] if c[0] == receipt), None)


def case(f: Federation, node: str, receipt: str) -> tuple[Any, ...]:
    found = maybe_case(f, node, receipt)
    assert found is not None, f"{node} holds no case {receipt}"
    return found


def events(f: Federation, node: str, receipt: str) -> list[tuple[Any, ...]]:
    return [e for e in f.snapshot()[node]["events"] if e[0] == receipt]


def quarantine(f: Federation, node: str) -> list[QuarantineRow]:
    return f.core(node).inbox.quarantined()


def replay(f: Federation, node: str, row: QuarantineRow) -> tuple[bool, str]:
    assert row.id is not None
    return f.core(node).inbox.replay(row.id)


def test_village_case_reaches_its_county_owner_and_the_decision_comes_back(fed: Federation) -> None:
    receipt = submit(fed, VILLAGE, "HB-0002", 1)  # county-level item, carried by the village agent
    # Handed over in the same transaction as the intake: the village no longer owns it.
    assert case(fed, VILLAGE, receipt)[3:5] == (COUNTY, 2)
    assert fed.waiting() == {VILLAGE: 2}  # the transfer and the summary, persisted before sending
    run(fed.settle())
    county = case(fed, COUNTY, receipt)
    assert county[1:7] == ("received", "escalated", COUNTY, 2, VILLAGE, 3)  # submit, hand_over, take_over
    assert maybe_case(fed, TOWN, receipt) is None  # a relay keeps no personal data ...
    assert [s[0] for s in fed.snapshot()[TOWN]["summaries"]] == [receipt]  # ... only a summary
    for action in ("accept", "review", "approve", "complete"):
        fed.act(COUNTY, receipt, action)
    run(fed.settle())
    assert case(fed, VILLAGE, receipt)[1:8] == ("completed", "escalated", COUNTY, 2, VILLAGE, 7, "approved")
    assert events(fed, VILLAGE, receipt) == events(fed, COUNTY, receipt)
    assert [e[2] for e in events(fed, VILLAGE, receipt)] == [
        "submit", "hand_over", "take_over", "accept", "review", "approve", "complete"]
    summary = next(s for s in fed.snapshot()[CITY]["summaries"] if s[0] == receipt)
    assert summary == (receipt, "completed", COUNTY, 7)
    assert run(fed.compare_digests()) == {}
    # Only the owner writes: the village's window hands the result over (一窗出件) and asks the
    # county to record it; the delivery comes back as the county's event.
    done = fed.act(VILLAGE, receipt, "deliver")
    assert done.forwarded_to == COUNTY
    run(fed.settle())
    assert [e[2] for e in events(fed, COUNTY, receipt)][-1] == "deliver"
    assert events(fed, VILLAGE, receipt) == events(fed, COUNTY, receipt)
    with pytest.raises(DeskError, match="deliver"):
        fed.act(VILLAGE, receipt, "deliver")  # once


def test_withdraw_requested_at_the_village_reaches_the_owner_and_comes_back(fed: Federation) -> None:
    receipt = submit(fed, VILLAGE, "HB-0002", 1)
    run(fed.settle())
    acted = fed.act(VILLAGE, receipt, "withdraw", actor="applicant", reason="no longer needed")
    assert acted.forwarded_to == COUNTY
    assert case(fed, VILLAGE, receipt)[1] == "received"  # a request, not a local write
    run(fed.settle())
    assert case(fed, COUNTY, receipt)[1] == "withdrawn"
    assert case(fed, VILLAGE, receipt)[1] == "withdrawn"
    assert events(fed, VILLAGE, receipt)[-1][2:6] == ("withdraw", "received", "withdrawn", "applicant")
    assert events(fed, VILLAGE, receipt) == events(fed, COUNTY, receipt)
    # A second request is refused by the owner, on the record, and that comes back too.
    fed.act(VILLAGE, receipt, "withdraw", actor="applicant")
    run(fed.settle())
    assert events(fed, VILLAGE, receipt)[-1][2] == "request_refused"
    assert case(fed, VILLAGE, receipt)[6] == case(fed, COUNTY, receipt)[6] == 5


def test_duplicated_reordered_and_resent_batches_change_nothing(fed: Federation) -> None:
    up = fed.uplink(VILLAGE)
    town = fed.core(TOWN).children
    inc = fed.core(VILLAGE).store.meta.incarnation
    receipts = [submit(fed, VILLAGE, code, i) for i, code in enumerate(["HB-0002", "SJ-0002", "MZ-0005"])]
    batch = up.next_batch()
    assert len(batch) == 6  # two transfers, three summaries, the village's own case to keep (custody)
    first = town.push(VILLAGE, inc, batch)
    assert all(first.has(e.seq) for e in batch)
    before, waiting = fed.snapshot(), fed.waiting()
    for again in (batch, list(reversed(batch)), batch[1:3], [batch[0], batch[0]]):
        assert town.push(VILLAGE, inc, again) == first
        assert fed.snapshot() == before and fed.waiting() == waiting
    up.acknowledged(first)
    run(fed.settle())
    settled = fed.snapshot()
    assert case(fed, COUNTY, receipts[0])[3] == COUNTY and case(fed, TOWN, receipts[1])[3] == TOWN
    # Days later the same batch comes again: the link cursor drops it.
    town.push(VILLAGE, inc, batch)
    # And copies at new link positions (as after a re-route): the cursor does not know them,
    # the relays pass them on, and each final target recognises the identity.
    renumbered = [e.on_link(e.seq + 1000) for e in batch]
    town.push(VILLAGE, inc, renumbered)
    run(fed.settle())
    assert fed.snapshot() == settled
    # Downward too: the events the county sends to the village, applied twice and reversed.
    fed.act(COUNTY, receipts[0], "accept")
    fed.act(COUNTY, receipts[0], "review")
    run(fed.step(TOWN))  # the township pulls the county's events; the village has not yet
    pull = town.pull(VILLAGE, inc, fed.core(TOWN).store.meta.incarnation, Cursor(), 50)
    assert [e.kind for e in pull.envelopes] == ["event", "event"]
    village_up = fed.uplink(VILLAGE)
    village_up.apply_down(pull.parent_incarnation, pull.envelopes)
    once = fed.snapshot()[VILLAGE]
    village_up.apply_down(pull.parent_incarnation, pull.envelopes)
    village_up.apply_down(pull.parent_incarnation, tuple(reversed(pull.envelopes)))
    assert fed.snapshot()[VILLAGE] == once
    assert case(fed, VILLAGE, receipts[0])[1] == "under_review"
    run(fed.settle())
    assert fed.snapshot()[VILLAGE] == once
    assert all(not v["quarantined"] for v in fed.snapshot().values())


def test_same_identity_with_another_payload_is_an_alarm(fed: Federation) -> None:
    receipt = submit(fed, VILLAGE, "HB-0002", 1)
    transfer = next(e for e in fed.uplink(VILLAGE).next_batch() if e.kind == "transfer")
    run(fed.settle())
    payload = json.loads(transfer.payload)
    payload["case"]["status"] = "approved"  # forged
    forged = dataclasses.replace(transfer, seq=transfer.seq + 500, payload=messages.dumps(payload))
    fed.core(TOWN).children.push(VILLAGE, 1, [forged])
    run(fed.settle())
    assert case(fed, COUNTY, receipt)[1] == "received"
    [alarm] = quarantine(fed, COUNTY)
    assert "identity conflict" in alarm.error and alarm.kind == "transfer"


def test_poison_envelopes_are_quarantined_the_queue_flows_and_replay_works(fed: Federation) -> None:
    store = fed.core(VILLAGE).store
    with store.transaction() as s:
        # A kind nobody knows: refused at the first hop.
        outbox.send_encoded(s, store.meta, target=COUNTY, kind="bogus", case_key="", priority=2,
                            payload=b'{"hello":1}', now=fed.clock.now())
    receipt = submit(fed, VILLAGE, "HB-0002", 1)
    with store.transaction() as s:
        # A request that overtakes its case (urgent, under another key): the owner does not hold it yet.
        outbox.send(s, store.meta, target=COUNTY, case_key="", priority=2, now=fed.clock.now(),
                    message=RequestMessage(receipt, "withdraw", {"actor": "applicant"}, VILLAGE, ""))
    run(fed.settle())
    [bogus] = quarantine(fed, TOWN)
    assert bogus.kind == "bogus" and "unknown envelope kind 'bogus'" in bogus.error
    [early] = quarantine(fed, COUNTY)
    assert early.kind == "request" and f"request for case {receipt}" in early.error
    # The envelopes behind them still applied: the transfer arrived and the link is drained.
    assert case(fed, COUNTY, receipt)[1:4] == ("received", "escalated", COUNTY)
    assert fed.waiting() == {}
    # The cause is gone now (the case is here): replay applies it, and the result flows back.
    assert replay(fed, COUNTY, early) == (True, "")
    assert quarantine(fed, COUNTY) == []
    run(fed.settle())
    assert case(fed, VILLAGE, receipt)[1] == "withdrawn"
    # A poison whose cause remains stays quarantined, with its error.
    applied, error = replay(fed, TOWN, bogus)
    assert not applied and "unknown envelope kind" in error
    assert len(quarantine(fed, TOWN)) == 1
    with pytest.raises(KeyError):
        replay(fed, COUNTY, early)  # already replayed


@pytest.mark.parametrize("hello, message", [
    (Hello("371103001201", "village", PROTOCOL_VERSION, 0, 1), "is not a child of township 371102001"),
    (Hello("371102", "county", PROTOCOL_VERSION, 0, 1), "cannot be a direct child of township"),
    (Hello("371102001203", "township", PROTOCOL_VERSION, 0, 1), "is a village id but says it is a township"),
    (Hello("371102001203", "village", PROTOCOL_VERSION + 1, 0, 1), f"sync protocol {PROTOCOL_VERSION + 1} is not supported"),
    (Hello("3711020012", "village", PROTOCOL_VERSION, 0, 1), "malformed"),
])
def test_registration_refused(fed: Federation, hello: Hello, message: str) -> None:
    transport = MemoryTransport(fed.core(TOWN).children)
    with pytest.raises(Refused, match=message):
        run(transport.hello(hello))
    with fed.core(TOWN).store.reading() as s:
        assert s.get(ChildLink, hello.node_id) is None  # nothing written
    # And a stranger that never said hello cannot push or pull.
    with pytest.raises(Refused, match="has not registered"):
        run(push_one(transport, hello.node_id, 1, []))


def test_a_node_wired_to_the_wrong_parent_is_refused_not_retried_silently(fed: Federation) -> None:
    fed.transports[VILLAGE] = MemoryTransport(fed.core(COUNTY).children)
    assert run(fed.step(VILLAGE)) is None
    assert fed.counts.refused == 1 and "cannot be a direct child of county 371102" in fed.counts.errors[-1]
    # The child side checks the answer too: a parent that is not its parent.
    from govnet.sync.transport.base import HelloReply

    with pytest.raises(Refused, match=f"this node's parent is {TOWN}"):
        fed.uplink(VILLAGE).on_hello(HelloReply(COUNTY, "county", PROTOCOL_VERSION, 1, 1))


def test_parent_busy_when_admission_limit_is_exceeded(tmp_path: Path) -> None:
    f = Federation(tmp_path, [CITY, COUNTY], seed=1, settings=SyncSettings(admission_limit=1))
    try:
        city = f.core(CITY).children
        city.admission.enter()  # another child's batch is in progress
        assert run(f.step(COUNTY)) is None
        assert f.counts.busy == 1 and f.counts.link_down == 0
        with pytest.raises(ParentBusy) as busy:
            run(f.transports[COUNTY].pull(COUNTY, 1, 1, Cursor(), 10))
        assert busy.value.retry_after_s >= 1.0
        # The driver backs off at least as long as the parent asked, and then tries again.
        up = f.uplink(COUNTY)
        driver = LinkDriver(up, up, f.transports[COUNTY], f.clock, run=direct, rng=random.Random(0))
        now = f.clock.now()
        assert run(driver.attempt()) is None
        state = up.load_state()
        assert state.health is Health.RETRYING and state.failures == 1
        assert state.next_attempt is not None and state.next_attempt >= now + timedelta(seconds=1.0)
        calls = f.transports[COUNTY].calls
        assert run(driver.attempt()) is None and f.transports[COUNTY].calls == calls  # not yet
        city.admission.leave()
        f.clock.set(state.next_attempt)
        assert run(driver.attempt()) is not None
        assert up.load_state().health is Health.CONNECTED and up.load_state().failures == 0
    finally:
        f.close()


class LosesPushReplies(MemoryTransport):
    """The parent applies the batch, then the answer is lost."""

    def push(self, sender, incarnation, envelopes, settled_below=0):  # type: ignore[no-untyped-def]
        super().push(sender, incarnation, envelopes, settled_below)
        raise LinkDown("reply lost")


def rows(f: Federation, node: str, link: str) -> list[int]:
    return [e.seq for e in f.outbox(node, link)]


def test_batches_chosen_while_one_is_in_flight_send_each_envelope_once(tmp_path: Path) -> None:
    """The session chooses the next batch while one is in flight (the in-flight one excluded):
    a plain backlog goes out in link order, and an urgent envelope goes next once it is read."""
    f = Federation(tmp_path, [CITY, COUNTY, TOWN, VILLAGE], seed=5, settings=SyncSettings(batch_max=3))
    f.publish(CITY, CATALOG)
    run(f.settle())
    up = f.uplink(VILLAGE)

    def drain() -> list[list[int]]:
        up.hello()
        batches: list[list[int]] = []
        batch = up.next_batch()
        while batch:
            up.core.sent(batch)
            following = up.next_batch()  # chosen while ``batch`` is in flight
            batches.append(seqs(batch))
            up.acknowledged(Cursor.of(0, [q for b in batches for q in b]))
            batch = following
        return batches

    for i in range(2, 7):
        submit(f, VILLAGE, "MZ-0005", i)  # stays at the village: a summary and a custody each
    bulk = rows(f, VILLAGE, TOWN)
    assert [q for b in drain() for q in b] == bulk  # each once, in link order
    up.flush_acknowledged()
    for i in range(12, 17):
        submit(f, VILLAGE, "MZ-0005", i)
    bulk = rows(f, VILLAGE, TOWN)
    core = f.core(VILLAGE)
    with core.store.transaction() as s:
        outbox.send_encoded(s, core.store.meta, target=TOWN, kind="summary", case_key="urgent", priority=2,
                            payload=b'{"case":{}}', now=datetime.now(UTC))
    urgent = rows(f, VILLAGE, TOWN)[-1]
    batches = drain()
    sent = [q for b in batches for q in b]
    assert sorted(sent) == sorted([*bulk, urgent])  # every envelope once
    assert [q for q in sent if q != urgent] == bulk  # the backlog in link order
    assert urgent in batches[1]  # read while the first batch flew, sent right after it
    up.flush_acknowledged()
    assert rows(f, VILLAGE, TOWN) == []
    f.close()


def test_outbox_entries_are_dropped_only_when_the_cursor_covers_them(fed: Federation) -> None:
    receipt = submit(fed, VILLAGE, "HB-0002", 1)
    waiting = rows(fed, VILLAGE, TOWN)
    assert len(waiting) == 2
    normal = fed.transports[VILLAGE]
    fed.transports[VILLAGE] = LosesPushReplies(fed.core(TOWN).children)
    assert run(fed.step(VILLAGE)) is None
    assert rows(fed, VILLAGE, TOWN) == waiting  # applied over there, but not acknowledged here
    forwarded = rows(fed, TOWN, COUNTY)
    assert len(forwarded) == 2
    fed.transports[VILLAGE] = normal
    result = run(fed.step(VILLAGE))
    assert result is not None and result.pushed == 2
    assert rows(fed, VILLAGE, TOWN) == []
    assert rows(fed, TOWN, COUNTY) == forwarded  # the resend was recognised, not relayed again
    # Partial acknowledgements drop exactly what they cover: at once from what is sent next,
    # from the outbox when the deletion is flushed (deferred: it needs no fsync of its own).
    for i in range(2, 4):
        submit(fed, VILLAGE, "MZ-0005", i)  # stays at the village: a summary and a custody each
    seq = rows(fed, VILLAGE, TOWN)
    assert len(seq) == 4
    up = fed.uplink(VILLAGE)
    up.hello()
    assert [e.seq for e in up.next_batch()] == seq
    up.acknowledged(Cursor.of(0, [seq[2]]))
    assert [e.seq for e in up.next_batch()] == [seq[0], seq[1], seq[3]]
    up.flush_acknowledged()
    assert rows(fed, VILLAGE, TOWN) == [seq[0], seq[1], seq[3]]
    up.acknowledged(Cursor(seq[1]))
    assert rows(fed, VILLAGE, TOWN) == [seq[0], seq[1], seq[3]]  # not deleted yet ...
    assert [e.seq for e in up.next_batch()] == [seq[3]]  # ... but not sent again
    up.hello()  # a new exchange reads the outbox afresh, still without what was acknowledged
    assert [e.seq for e in up.next_batch()] == [seq[3]]
    up.flush_acknowledged()
    assert rows(fed, VILLAGE, TOWN) == [seq[3]]
    # Downward: the parent keeps what it sent until the child's next pull acknowledges it.
    run(fed.settle())
    fed.act(COUNTY, receipt, "accept")
    run(fed.step(TOWN))
    town = fed.core(TOWN)
    down = rows(fed, TOWN, VILLAGE)
    assert len(down) == 1
    inc = town.store.meta.incarnation
    _, mine = fed.uplink(VILLAGE).down_position()
    reply = town.children.pull(VILLAGE, 1, inc, mine, 10)
    assert [e.seq for e in reply.envelopes] == down and rows(fed, TOWN, VILLAGE) == down
    reply = town.children.pull(VILLAGE, 1, inc + 1, mine.add(down), 10)  # a stale parent incarnation
    assert rows(fed, TOWN, VILLAGE) == down  # ... acknowledges nothing
    reply = town.children.pull(VILLAGE, 1, inc, mine.add(down), 10)
    assert reply.envelopes == () and rows(fed, TOWN, VILLAGE) == []


def test_catalog_versions_flow_down_and_a_case_keeps_its_version(fed: Federation) -> None:
    assert {n: v["catalog_version"] for n, v in fed.snapshot().items()} == dict.fromkeys(fed.nodes, 1)
    old = submit(fed, VILLAGE, "HB-0002", 1)
    run(fed.settle())
    # Version 2 shortens HB-0002's promise and withdraws MZ-0005.
    items = tuple(dataclasses.replace(i, promised_days=5) if i.code == "HB-0002" else i
                  for i in CATALOG.items if i.code != "MZ-0005")
    assert fed.publish(CITY, Catalog(items=items, issuer=CATALOG.issuer)) == 2
    run(fed.settle())
    assert {n: v["catalog_version"] for n, v in fed.snapshot().items()} == dict.fromkeys(fed.nodes, 2)
    new = submit(fed, VILLAGE2, "HB-0002", 2)
    with pytest.raises(DeskError, match="no item MZ-0005 in catalog version 2"):
        submit(fed, VILLAGE, "MZ-0005", 3)
    run(fed.settle())
    assert case(fed, COUNTY, old)[10] == case(fed, VILLAGE, old)[10] == 1
    assert case(fed, COUNTY, new)[10] == case(fed, VILLAGE2, new)[10] == 2
    fed.act(COUNTY, old, "accept")
    fed.act(COUNTY, new, "accept")
    promised = {r: fed.core(COUNTY).desk.get(r)[1][-1].detail["promised_days"] for r in (old, new)}
    assert promised == {old: 10, new: 5}  # each under the version it was accepted under


def test_a_late_child_gets_the_current_catalog_on_hello(tmp_path: Path) -> None:
    f = Federation(tmp_path, [CITY, COUNTY, TOWN], seed=2)
    try:
        f.publish(CITY, CATALOG)
        run(f.step(COUNTY))
        assert f.snapshot()[COUNTY]["catalog_version"] == 1
        assert f.snapshot()[TOWN]["catalog_version"] == 0
        run(f.step(TOWN))
        assert f.snapshot()[TOWN]["catalog_version"] == 1
        run(f.settle())
        assert f.waiting() == {}
    finally:
        f.close()


def test_digest_comparison_repairs_a_silent_divergence(fed: Federation) -> None:
    receipt = submit(fed, VILLAGE, "MZ-0005", 1)  # stays at the village; the township keeps a summary
    run(fed.settle())
    assert run(fed.compare_digests()) == {}
    path = fed.core(TOWN).store.path
    import sqlite3

    # A silent divergence no code path makes: the summary is deleted from the file by hand.
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM case_summary WHERE receipt = ?", (receipt,))
    assert not any(s[0] == receipt for s in fed.snapshot()[TOWN]["summaries"])
    found = run(fed.compare_digests())
    # Both links whose subtree holds the case see it, and only the period it was submitted in.
    assert sorted(found) == [TOWN, VILLAGE] and found[VILLAGE] == found[TOWN] and len(found[VILLAGE]) == 1
    run(fed.settle())
    assert any(s[0] == receipt for s in fed.snapshot()[TOWN]["summaries"])
    assert run(fed.compare_digests()) == {}


def test_the_simulation_is_deterministic(tmp_path: Path) -> None:
    def once(where: Path) -> tuple:  # type: ignore[type-arg]
        f = Federation(where, [CITY, COUNTY, TOWN, VILLAGE, VILLAGE2], seed=9,
                       faults=Faults(drop_request=0.2, drop_reply=0.2, duplicate=0.2, delay=0.2))
        try:
            f.publish(CITY, CATALOG)
            run(f.settle())
            f.resume_faults()
            rng = random.Random(5)
            run(f.churn(6, rng))
            receipts = [submit(f, v, "HB-0002", i) for i, v in enumerate([VILLAGE, VILLAGE2, VILLAGE])]
            run(f.churn(6, rng))
            run(f.settle())
            return f.snapshot(), dataclasses.astuple(f.counts), receipts
        finally:
            f.close()

    first, second = once(tmp_path / "a"), once(tmp_path / "b")
    assert first == second
    assert first[1][1] > 0  # the faults did happen


def test_a_payload_that_is_not_text_is_quarantined_not_blocking(fed: Federation) -> None:
    """A peer can send any bytes (the wire carries ``bytes``): the bad envelope must not fail the batch."""
    receipt = submit(fed, VILLAGE, "HB-0002", 1)
    batch = fed.uplink(VILLAGE).next_batch()
    poison = Envelope(batch[-1].seq + 1, VILLAGE, 1, 999, "event", COUNTY, "", 2, b"\xff\xfe{", "")
    town = fed.core(TOWN).children
    cursor = town.push(VILLAGE, 1, [poison, *batch])
    assert all(cursor.has(e.seq) for e in [poison, *batch])
    fed.uplink(VILLAGE).acknowledged(cursor)
    [bad] = quarantine(fed, TOWN)
    assert bad.kind == "event" and bad.origin_seq == 999
    run(fed.settle())
    assert case(fed, COUNTY, receipt)[3] == COUNTY  # the envelopes behind it flowed


def test_a_catalog_pushed_up_by_a_child_is_refused(fed: Federation) -> None:
    """Catalog versions flow only down, from the issuer: a child cannot replace its parent's catalog.
    The batch is refused whole (PERMISSION_DENIED over gRPC), nothing of it stored or applied."""
    items = [dict(i.to_dict(), promised_days=1) if i.to_dict()["promised_days"] else i.to_dict() for i in CATALOG.items]
    payload = CatalogMessage(99, VILLAGE, tuple(items)).encode()
    forged = Envelope(1000, VILLAGE, 1, 1000, "catalog", "", "catalog", 2, payload, "")
    with pytest.raises(Forbidden, match="flows only down"):
        fed.core(TOWN).children.push(VILLAGE, 1, [forged])
    assert quarantine(fed, TOWN) == []
    assert fed.core(TOWN).inbox.refusals.counts == {"down_only": 1}
    assert fed.core(TOWN).store.catalog().version == 1
    run(fed.settle())
    assert {n: v["catalog_version"] for n, v in fed.snapshot().items()} == dict.fromkeys(fed.nodes, 1)


@pytest.mark.parametrize("field", ["seq", "origin_seq"])
def test_numbers_the_store_cannot_hold_are_quarantined_not_blocking(fed: Federation, field: str) -> None:
    """The wire allows uint64; SQLite holds up to 2**63 - 1. A peer's bad number must not fail the batch."""
    receipt = submit(fed, VILLAGE, "HB-0002", 1)
    batch = fed.uplink(VILLAGE).next_batch()
    seq, origin_seq = (2**63, 77) if field == "seq" else (batch[-1].seq + 1, 2**63)
    bad = Envelope(seq, VILLAGE, 1, origin_seq, "event", COUNTY, "", 0, b'{"x": 1}', "")
    cursor = fed.core(TOWN).children.push(VILLAGE, 1, [*batch, bad])
    assert all(cursor.has(e.seq) for e in [*batch, bad])
    [held] = quarantine(fed, TOWN)
    assert f"{field} {2**63} is out of range" in held.error and getattr(held, field) == -1
    run(fed.settle())
    assert case(fed, COUNTY, receipt)[3] == COUNTY
