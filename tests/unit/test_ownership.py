"""Ownership decisions, table-driven: every outcome of ``federation.ownership.decide`` and its edges."""

from __future__ import annotations

import pytest

from govnet.federation.ownership import (
    Arrival,
    EventRef,
    Held,
    Incoming,
    Outcome,
    Verdict,
    Write,
    decide,
)

HERE, VILLAGE, TOWN, CITY = "371102", "371102001201", "371102001", "371100"
RECEIPT = "R-1"


def ev(seq: int, origin: str = VILLAGE, origin_seq: int | None = None, take_over: int | None = None) -> EventRef:
    """An event at place ``seq``; its identity is (origin, 1, origin_seq or seq)."""
    return EventRef(seq, origin, 1, seq if origin_seq is None else origin_seq, take_over)


def history(n: int, origin: str = VILLAGE) -> tuple[EventRef, ...]:
    return tuple(ev(i, origin) for i in range(1, n + 1))


def held(owner: str, epoch: int, count: int, events: tuple[EventRef, ...] | None = None) -> Held:
    return Held(owner, epoch, count, history(count) if events is None else events)


def arriving(arrival: Arrival, owner: str, epoch: int, count: int,
             events: tuple[EventRef, ...] | None = None) -> Incoming:
    return Incoming(arrival, RECEIPT, owner, epoch, count, history(count) if events is None else events)


CASES: list[tuple[str, Held | None, Incoming, Verdict]] = [
    # --- transfer: this node becomes the owner ---
    ("transfer of a case never held: take it whole",
     None, arriving(Arrival.TRANSFER, HERE, 1, 2),
     Verdict(Outcome.TAKE, Write.NEW_CASE, HERE, 2, (1, 2), take_over=True)),
    ("transfer from a newer epoch of a case held before: take the newer state and the missing events",
     held(TOWN, 1, 2), arriving(Arrival.TRANSFER, HERE, 3, 4),
     Verdict(Outcome.TAKE_NEWER, Write.WHOLE, HERE, 4, (3, 4), take_over=True)),
    ("transfer at the held epoch (equal epochs): superseded, its unknown events kept apart",
     held(TOWN, 2, 2), arriving(Arrival.TRANSFER, HERE, 2, 3, (*history(2), ev(3, TOWN, 90))),
     Verdict(Outcome.KEEP_SUPERSEDED, superseded=(3,))),
    ("transfer from an older epoch: superseded",
     held(CITY, 3, 4), arriving(Arrival.TRANSFER, HERE, 2, 5, (*history(4), ev(5, TOWN, 91))),
     Verdict(Outcome.KEEP_SUPERSEDED, superseded=(5,))),
    ("a superseded transfer whose events are all known keeps nothing",
     held(CITY, 3, 4), arriving(Arrival.TRANSFER, HERE, 2, 4),
     Verdict(Outcome.KEEP_SUPERSEDED)),
    ("superseded events at or below the held count are not kept (the place is taken)",
     held(CITY, 3, 4), arriving(Arrival.TRANSFER, HERE, 2, 4, (*history(3), ev(4, TOWN, 92))),
     Verdict(Outcome.KEEP_SUPERSEDED)),
    # --- recovery: a transfer re-sent after this node was restored ---
    ("recovery of a case lost in the restore: take it back and record the take-over",
     None, arriving(Arrival.RECOVERY, HERE, 2, 3),
     Verdict(Outcome.TAKE, Write.NEW_CASE, HERE, 3, (1, 2, 3), take_over=True)),
    ("recovery whose events hold the take-over at its epoch: no second take-over",
     None, arriving(Arrival.RECOVERY, HERE, 2, 3, (*history(2), ev(3, HERE, 30, take_over=2))),
     Verdict(Outcome.TAKE, Write.NEW_CASE, HERE, 3, (1, 2, 3))),
    ("a take-over at another epoch does not count",
     held(HERE, 2, 2), arriving(Arrival.RECOVERY, HERE, 3, 3, (*history(2), ev(3, HERE, 30, take_over=2))),
     Verdict(Outcome.COPY_MERGE, Write.STATE, HERE, 3, (3,), take_over=True)),
    ("recovery ahead at the same epoch: the missing events merge in",
     held(HERE, 2, 2), arriving(Arrival.RECOVERY, HERE, 2, 4),
     Verdict(Outcome.COPY_MERGE, Write.STATE, HERE, 4, (3, 4), take_over=True)),
    ("recovery not ahead (same epoch, as many events): unchanged",
     held(HERE, 2, 4), arriving(Arrival.RECOVERY, HERE, 2, 4),
     Verdict(Outcome.UNCHANGED)),
    ("recovery at an older epoch with more events: unchanged (never a regression)",
     held(HERE, 3, 1), arriving(Arrival.RECOVERY, HERE, 2, 6),
     Verdict(Outcome.UNCHANGED)),
    # --- copy: the owner's whole case, back to a restored origin ---
    ("copy of a case the origin lost: held with the copy's owner, no take-over",
     None, arriving(Arrival.COPY, CITY, 2, 3),
     Verdict(Outcome.TAKE, Write.NEW_CASE, CITY, 3, (1, 2, 3))),
    ("copy from a newer epoch: merged, the copy's owner written (a restored earlier owner steps back)",
     held(VILLAGE, 1, 2), arriving(Arrival.COPY, CITY, 2, 4),
     Verdict(Outcome.COPY_MERGE, Write.STATE, CITY, 4, (3, 4))),
    ("copy whose event at a held place is another event: conflict, nothing written",
     held(VILLAGE, 1, 2, (ev(1), ev(2, VILLAGE, 77))), arriving(Arrival.COPY, CITY, 2, 3),
     Verdict(Outcome.CONFLICT, reason="case R-1: event 2 here is not the copy's event 2: the histories differ")),
    ("copy behind what is held: unchanged",
     held(VILLAGE, 2, 5), arriving(Arrival.COPY, CITY, 2, 4),
     Verdict(Outcome.UNCHANGED)),
    # --- events, at the origin (or an earlier owner) ---
    ("events for a case never held: refused",
     None, arriving(Arrival.EVENTS, TOWN, 1, 2),
     Verdict(Outcome.UNKNOWN_CASE, reason="no case R-1 here to record its events on")),
    ("the next events in order: appended, the state taken",
     held(TOWN, 1, 2), arriving(Arrival.EVENTS, TOWN, 1, 4, (ev(4), ev(3))),
     Verdict(Outcome.APPEND, Write.STATE, TOWN, 4, (3, 4))),
    ("events from a newer epoch: appended, the new owner written",
     held(TOWN, 1, 2), arriving(Arrival.EVENTS, CITY, 2, 3, (ev(3),)),
     Verdict(Outcome.APPEND, Write.STATE, CITY, 3, (3,))),
    ("a repeat: nothing new, the state (as new) written again",
     held(TOWN, 1, 3), arriving(Arrival.EVENTS, TOWN, 1, 3, (ev(2), ev(3))),
     Verdict(Outcome.APPEND, Write.STATE, TOWN, 3)),
    ("events whose state is behind them: only the count moves",
     held(TOWN, 1, 2), arriving(Arrival.EVENTS, TOWN, 1, 2, (ev(3),)),
     Verdict(Outcome.APPEND, Write.COUNT, event_count=3, add=(3,))),
    ("old events with an older state: unchanged",
     held(TOWN, 1, 5), arriving(Arrival.EVENTS, TOWN, 1, 2, (ev(2),)),
     Verdict(Outcome.UNCHANGED)),
    ("an event before the one it follows: a gap, refused",
     held(TOWN, 1, 2), arriving(Arrival.EVENTS, TOWN, 1, 5, (ev(5),)),
     Verdict(Outcome.GAP, reason="case R-1: event 5 arrived before event 3")),
    ("a gap after a good event: still refused as a whole",
     held(TOWN, 1, 2), arriving(Arrival.EVENTS, TOWN, 1, 5, (ev(3), ev(5))),
     Verdict(Outcome.GAP, reason="case R-1: event 5 arrived before event 4")),
    ("events from an older epoch: superseded",
     held(CITY, 2, 3), arriving(Arrival.EVENTS, TOWN, 1, 4, (ev(4, TOWN, 93),)),
     Verdict(Outcome.KEEP_SUPERSEDED, superseded=(4,))),
    ("events at the held epoch are not superseded (equal epochs append)",
     held(CITY, 2, 3), arriving(Arrival.EVENTS, CITY, 2, 4, (ev(4),)),
     Verdict(Outcome.APPEND, Write.STATE, CITY, 4, (4,))),
    ("an event kept apart before is compared with the history only (the store refuses the repeat)",
     held(CITY, 2, 3, (*history(3), ev(-93, TOWN, 93))), arriving(Arrival.EVENTS, TOWN, 1, 4, (ev(4, TOWN, 93),)),
     Verdict(Outcome.KEEP_SUPERSEDED, superseded=(4,))),
    # --- a newer summary, at a node that may hold a copy ---
    ("summary of a copy held, not owned, with more events: the state refreshed, the count kept",
     held(VILLAGE, 1, 2), arriving(Arrival.SUMMARY, TOWN, 1, 3, ()),
     Verdict(Outcome.REFRESH, Write.STATE_KEEP_COUNT, TOWN)),
    ("summary with as many events (equal): unchanged",
     held(VILLAGE, 1, 3), arriving(Arrival.SUMMARY, TOWN, 1, 3, ()),
     Verdict(Outcome.UNCHANGED)),
    ("summary of a case owned here: unchanged (only the owner writes it)",
     held(HERE, 1, 2), arriving(Arrival.SUMMARY, HERE, 1, 5, ()),
     Verdict(Outcome.UNCHANGED)),
    ("summary of a case not held: unchanged (the summary table keeps it)",
     None, arriving(Arrival.SUMMARY, TOWN, 1, 3, ()),
     Verdict(Outcome.UNCHANGED)),
    # --- a case relayed through a node that holds a copy ---
    ("relayed events that follow the copy: appended one after the other, the count moves",
     held(VILLAGE, 1, 2), arriving(Arrival.RELAYED, CITY, 2, 5, (ev(4), ev(3), ev(6))),
     Verdict(Outcome.APPEND, Write.COUNT, event_count=4, add=(3, 4))),
    ("relayed events that do not follow: unchanged (they come by their own envelope)",
     held(VILLAGE, 1, 2), arriving(Arrival.RELAYED, CITY, 2, 5, (ev(5),)),
     Verdict(Outcome.UNCHANGED)),
    ("relayed through the owner: unchanged",
     held(HERE, 1, 2), arriving(Arrival.RELAYED, CITY, 2, 3, (ev(3),)),
     Verdict(Outcome.UNCHANGED)),
    ("relayed through a node that never held it: unchanged",
     None, arriving(Arrival.RELAYED, CITY, 2, 3),
     Verdict(Outcome.UNCHANGED)),
]


@pytest.mark.parametrize(("name", "held_", "incoming", "expected"), CASES, ids=[c[0] for c in CASES])
def test_decide(name: str, held_: Held | None, incoming: Incoming, expected: Verdict) -> None:
    assert decide(HERE, held_, incoming) == expected


def test_every_outcome_and_arrival_is_in_the_table() -> None:
    assert {c[3].outcome for c in CASES} == set(Outcome)
    assert {c[2].arrival for c in CASES} == set(Arrival)


def test_refusals_write_nothing() -> None:
    for _, held_, incoming, _ in CASES:
        verdict = decide(HERE, held_, incoming)
        if verdict.refused:
            assert (verdict.write, verdict.add, verdict.superseded, verdict.take_over) == (Write.NOTHING, (), (), False)
            assert verdict.reason
        else:
            assert not verdict.reason


def test_a_copy_never_regresses() -> None:
    """Whatever is held, a copy or recovery is taken only when strictly ahead (epoch, then count)."""
    for held_epoch in range(1, 4):
        for held_count in range(0, 4):
            for epoch in range(1, 4):
                for count in range(0, 4):
                    for arrival in (Arrival.COPY, Arrival.RECOVERY):
                        verdict = decide(HERE, held(VILLAGE, held_epoch, held_count),
                                         arriving(arrival, CITY, epoch, count))
                        ahead = (epoch, count) > (held_epoch, held_count)
                        assert (verdict.outcome is Outcome.COPY_MERGE) == ahead
                        assert (verdict.outcome is Outcome.UNCHANGED) == (not ahead)
