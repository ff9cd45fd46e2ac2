"""Ownership: what a node does with a case that arrives from another, as one pure decision.

One owner per case (ARCHITECTURE, rule 5). Only the owner writes a case, at its owner epoch;
handing it over (a village carrying it up, an owner escalating) gives it to the next owner at
epoch + 1 in the same transaction as the ``transfer`` is queued, so there is one owner even
in transit. Everyone else holds copies: the origin (where the applicant applied), earlier
owners, and relays that held the case once.

``decide(here, held, incoming)`` is the whole rule. ``held`` is what this node has of the case
(None: nothing), as plain values — its owner, epoch, event count and the identities of the
events it holds; ``incoming`` is what arrived and how (``Arrival``). It returns a ``Verdict``:
the outcome, which of the arrived events to add (by their place ``seq`` in the history) or to
keep apart as superseded, which part of the state to write and with which owner, whether to
record a take-over, and, when the arrival is refused, why. The caller reads the rows, calls
this, and writes the verdict; nothing here touches a store, a clock or a socket.

The outcomes:

* ``TAKE``: a case this node does not hold is held whole (a transfer or recovery makes this
  node its owner and records the take-over; a copy keeps the copy's owner).
* ``TAKE_NEWER``: a transfer from a newer epoch of a case this node held before (it owned it
  once): the newer state replaces the held one, the missing events are added, this node owns it.
* ``KEEP_SUPERSEDED``: a transfer at an epoch not newer than the one held, or events from an
  older epoch: the events this node lacks (beyond its own history) are kept in history,
  flagged superseded and counted, never merged into the state.
* ``COPY_MERGE``: a recovery transfer or a copy ahead of what is held (a newer epoch, or more
  events at the same one): the missing events are added and the state taken. Never a regression.
* ``APPEND``: events from the current epoch, in order: those beyond the held count are added;
  the state is taken when the sender's is at least as new, else only the count moves.
* ``REFRESH``: a newer summary of a case held but not owned: its state is taken (the events
  themselves come by ``event`` envelopes).
* ``UNCHANGED``: what is held is as new or newer (repeats, late copies), or a relayed case
  adds nothing to the held copy.
* Refusals (the envelope goes to quarantine, nothing is written): ``UNKNOWN_CASE`` (events for
  a case never held), ``GAP`` (an event arrived before the one it follows: never merged out of
  order), ``CONFLICT`` (a copy whose event at some place is not the event held there: a
  restored owner wrote at positions its former self had used, and two histories must not mix).

Equal epochs: a transfer at the held epoch is superseded (an owner never takes its own epoch
twice), events at the held epoch are appended, and a copy at the held epoch merges only when it
has more events.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Arrival(Enum):
    """How the case arrived (which envelope brought it, and what this node is to it)."""

    TRANSFER = "transfer"  # handed over to this node: it becomes the owner
    RECOVERY = "recovery"  # a transfer re-sent after this node was restored from a backup
    COPY = "copy"  # the owner's whole case, for this node (an origin) restored from a backup
    EVENTS = "event"  # the owner's new events, at the origin or an earlier owner
    SUMMARY = "summary"  # a newer summary, at a node that may hold a copy
    RELAYED = "relayed"  # a case passing through this node on its way to someone else


class Outcome(Enum):
    TAKE = "take"
    TAKE_NEWER = "take newer epoch"
    KEEP_SUPERSEDED = "keep superseded"
    COPY_MERGE = "copy merge"
    APPEND = "append"
    REFRESH = "refresh"
    UNCHANGED = "unchanged"
    UNKNOWN_CASE = "unknown case"
    GAP = "gap"
    CONFLICT = "conflict"


REFUSALS = frozenset({Outcome.UNKNOWN_CASE, Outcome.GAP, Outcome.CONFLICT})


class Write(Enum):
    """Which part of the case's row the verdict writes."""

    NOTHING = "nothing"
    NEW_CASE = "new case"  # insert the whole case, with ``owner``
    WHOLE = "whole"  # every field the arrival carries (personal data included), with ``owner``
    STATE = "state"  # the state (no personal data), with ``owner``, and ``event_count``
    STATE_KEEP_COUNT = "state, count kept"  # the state, with ``owner``; the event count stays
    COUNT = "count"  # only ``event_count``


@dataclass(frozen=True)
class EventRef:
    """An event as ownership sees it: its place in the case's history and its global identity.
    ``take_over_epoch``: the epoch a ``take_over`` event records (None for any other)."""

    seq: int
    origin: str
    origin_incarnation: int
    origin_seq: int
    take_over_epoch: int | None = None

    @property
    def identity(self) -> tuple[str, int, int]:
        return self.origin, self.origin_incarnation, self.origin_seq


@dataclass(frozen=True)
class Held:
    """What this node holds of the case. ``events``: every event it holds (superseded ones
    included); needed for transfers, recoveries, copies and events, not for summaries or relays."""

    owner: str
    epoch: int
    event_count: int
    events: tuple[EventRef, ...] = ()


@dataclass(frozen=True)
class Incoming:
    """What arrived: the sender's view of the case (its owner, epoch, event count) and events."""

    arrival: Arrival
    receipt: str
    owner: str
    epoch: int
    event_count: int
    events: tuple[EventRef, ...] = ()


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    write: Write = Write.NOTHING
    owner: str = ""  # the owner to write with the state ('' when the state is not written)
    event_count: int = 0  # the count to write (``Write.STATE``, ``Write.COUNT``)
    add: tuple[int, ...] = ()  # the arrived events to add, by seq, in order
    superseded: tuple[int, ...] = ()  # the arrived events to keep apart, flagged superseded
    take_over: bool = False  # record that this node took the case over from the sender
    reason: str = ""  # why it is refused

    @property
    def refused(self) -> bool:
        return self.outcome in REFUSALS


def decide(here: str, held: Held | None, incoming: Incoming) -> Verdict:
    """What this node (``here``) does with ``incoming``, holding ``held`` of the case."""
    match incoming.arrival:
        case Arrival.TRANSFER:
            return _transfer(here, held, incoming)
        case Arrival.RECOVERY | Arrival.COPY:
            return _copy(here, held, incoming)
        case Arrival.EVENTS:
            return _events(held, incoming)
        case Arrival.SUMMARY:
            return _summary(here, held, incoming)
        case Arrival.RELAYED:
            return _relayed(here, held, incoming)


def _seqs(events: tuple[EventRef, ...]) -> tuple[int, ...]:
    return tuple(e.seq for e in events)


def _transfer(here: str, held: Held | None, incoming: Incoming) -> Verdict:
    if held is None:  # the usual case: a case this node has never held
        return Verdict(Outcome.TAKE, Write.NEW_CASE, here, incoming.event_count, _seqs(incoming.events), take_over=True)
    if held.epoch >= incoming.epoch:
        return _keep_superseded(held, incoming)
    # A case this node held before (it owned it once): take the newer epoch's state.
    have = {e.seq for e in held.events}
    add = tuple(e.seq for e in incoming.events if e.seq not in have)
    return Verdict(Outcome.TAKE_NEWER, Write.WHOLE, here, incoming.event_count, add, take_over=True)


def _copy(here: str, held: Held | None, incoming: Incoming) -> Verdict:
    """A recovery transfer (this node owns the case) or a copy (the copy's owner does)."""
    recovery = incoming.arrival is Arrival.RECOVERY
    owner = here if recovery else incoming.owner
    # A recovery's copy holds the take-over this node recorded while it owned the case, unless
    # that never reached the sender: then it is recorded now, once.
    take_over = recovery and not any(e.take_over_epoch == incoming.epoch for e in incoming.events)
    if held is None:
        return Verdict(Outcome.TAKE, Write.NEW_CASE, owner, incoming.event_count, _seqs(incoming.events),
                       take_over=take_over)
    if (held.epoch, held.event_count) >= (incoming.epoch, incoming.event_count):
        return Verdict(Outcome.UNCHANGED)
    have = {e.seq: e.identity for e in held.events}
    for ev in incoming.events:
        mine = have.get(ev.seq)
        if mine is not None and mine != ev.identity:
            return Verdict(Outcome.CONFLICT, reason=f"case {incoming.receipt}: event {ev.seq} here is not the copy's "
                                                    f"event {ev.seq}: the histories differ")
    add = tuple(e.seq for e in incoming.events if e.seq not in have)
    return Verdict(Outcome.COPY_MERGE, Write.STATE, owner, incoming.event_count, add, take_over=take_over)


def _events(held: Held | None, incoming: Incoming) -> Verdict:
    if held is None:
        return Verdict(Outcome.UNKNOWN_CASE, reason=f"no case {incoming.receipt} here to record its events on")
    if incoming.epoch < held.epoch:
        return _keep_superseded(held, incoming)
    count = held.event_count
    add = []
    for ev in sorted(incoming.events, key=lambda e: e.seq):
        if ev.seq <= count:
            continue  # held already (a repeat)
        if ev.seq != count + 1:
            return Verdict(Outcome.GAP, reason=f"case {incoming.receipt}: event {ev.seq} arrived before event {count + 1}")
        add.append(ev.seq)
        count = ev.seq
    if incoming.event_count >= count:
        return Verdict(Outcome.APPEND, Write.STATE, incoming.owner, incoming.event_count, tuple(add))
    if add:  # the sender's state is behind its own events (they arrived with a later one): count only
        return Verdict(Outcome.APPEND, Write.COUNT, event_count=count, add=tuple(add))
    return Verdict(Outcome.UNCHANGED)


def _keep_superseded(held: Held, incoming: Incoming) -> Verdict:
    # Compared with the case's own history (places above zero): an event kept apart before is
    # not skipped, so the store refuses it as a repeated identity and the envelope is quarantined.
    have = {e.identity for e in held.events if e.seq > 0}
    kept = tuple(e.seq for e in incoming.events if e.identity not in have and e.seq > held.event_count)
    return Verdict(Outcome.KEEP_SUPERSEDED, superseded=kept)


def _summary(here: str, held: Held | None, incoming: Incoming) -> Verdict:
    if held is None or held.owner == here or incoming.event_count <= held.event_count:
        return Verdict(Outcome.UNCHANGED)
    # A copy this node holds but does not own (the origin, or an earlier owner).
    return Verdict(Outcome.REFRESH, Write.STATE_KEEP_COUNT, incoming.owner)


def _relayed(here: str, held: Held | None, incoming: Incoming) -> Verdict:
    """An earlier owner relaying a case's later events keeps its own copy complete (the events
    that follow its history, one after the other; anything else waits for its own envelope)."""
    if held is None or held.owner == here:
        return Verdict(Outcome.UNCHANGED)
    count = held.event_count
    add = []
    for ev in sorted(incoming.events, key=lambda e: e.seq):
        if ev.seq == count + 1:
            add.append(ev.seq)
            count = ev.seq
    if not add:
        return Verdict(Outcome.UNCHANGED)
    return Verdict(Outcome.APPEND, Write.COUNT, event_count=count, add=tuple(add))
