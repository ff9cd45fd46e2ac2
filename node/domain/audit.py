"""The tamper-evident trail: each node's events as one hash chain, and what breaks it.

Why. Case history is append-only by design, but the SQLite file is a file: someone with a
shell on a village office's machine can change an event's actor, time or reason with
``sqlite3`` and nothing in the data would say so. The chain makes such an edit visible, and
the chain heads the node sends up make even a careful rewrite visible to its ancestors.

The chain. Every event appended at a node — its own and the ones it replicated, in the order
this node appended them — takes the next *position* (1, 2, 3 …) and a *link hash*::

    hash(p) = H( bytes(hash(p-1)) || canonical(event p) )        hash(0) = 32 zero bytes

``canonical`` is the event's every field that matters, in a pinned encoding (a JSON array
behind a version tag, compact, UTF-8; ``tests/unit/test_audit_chain.py`` pins the bytes):
receipt, seq, action, from/to status, actor, reason, detail (the JSON text as stored),
happened/recorded times, origin node, incarnation and sequence, superseded. The position
itself is not hashed: it orders the chain, and a row moved to another position is found
because its hash only fits its old predecessor. ``H`` is SHA-256 by default or SM3
(GB/T 32905, through ``cryptography``) where ``audit.hash`` says so; the chain records which
one it uses, and keeps it for life.

Verifying (``verify``) walks the chain in position order with the stored hashes and reports
the *first* divergence, naming the event (receipt and seq) and what is wrong with it:

``edited``         its content no longer gives its hash;
``missing``        a position is absent (a row was deleted), or the chain ends before the
                   head the store recorded (the last rows were deleted);
``out of order``   the row is intact but sits at another place than where it was appended
                   (its hash fits another predecessor), or two events of a case exchanged
                   their places in the case's history (``seq``);
``unchained``      a row that never entered the chain (inserted into the file directly).

A person who edits a row *and* recomputes every hash after it (and the head) makes the
chain consistent again: only someone who saw the old head can tell. That is the ancestors'
part.

Heads up the tree. A node periodically sends ``Head`` (node, incarnation, algorithm,
count, head hash) and a *checkpoint*: its current hash at the count of the head it sent
before. Every ancestor keeps the latest head per descendant and ``judge`` s the next one:
it must come from the same chain (same incarnation and algorithm), not be shorter, and its
checkpoint must sit at the kept count with the kept hash. A rewritten history changes the
hash at that position; a file copied back from an old backup by hand makes the chain
shorter or moves the checkpoint. Both are ``BROKEN``. A restore done the proper way
(``govnet restore``) is a new incarnation of the store: its chain continues from the
backup's, and the ancestor takes its first head as a new baseline (``RESTORED``), which is
legitimate and raises no alarm. A kept head from before this ancestor's own restore cannot
be compared position for position (the ancestor lost what it received since its backup),
so the next head re-baselines it too. A head that comes again (a relay restored from a backup
sends what it had forwarded once more) is recognised by its message's origin sequence and
ignored; a *different* head under the sequence of the one held is a store copied back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives import hashes

FORMAT = "govnet.audit/1"  # the version tag inside every canonical form
ALGORITHMS = ("sha256", "sm3")
DEFAULT_ALGORITHM = "sha256"
GENESIS = "0" * 64  # the hash before the first event (both algorithms give 32 bytes)

# The event's fields, in their canonical order (the ``case_event`` columns of the same names).
CHAINED_FIELDS = ("receipt", "seq", "action", "from_status", "to_status", "actor", "reason", "detail",
                  "happened_at", "recorded_at", "origin", "origin_incarnation", "origin_seq", "superseded")
_INTEGERS = ("seq", "origin_incarnation", "origin_seq")


class AuditError(ValueError):
    """An unknown algorithm or a malformed chain value; the text says what is wrong."""


def check_algorithm(name: str) -> str:
    if name not in ALGORITHMS:
        raise AuditError(f"audit hash {name!r} is not one of {', '.join(ALGORITHMS)}")
    return name


def digest(algorithm: str, data: bytes) -> bytes:
    """``H(data)`` with the chain's algorithm."""
    if algorithm == "sha256":
        return hashlib.sha256(data).digest()
    if algorithm == "sm3":
        h = hashes.Hash(hashes.SM3())
        h.update(data)
        return h.finalize()
    raise AuditError(f"audit hash {algorithm!r} is not one of {', '.join(ALGORITHMS)}")


def canonical(event: Mapping[str, Any]) -> bytes:
    """The bytes of ``event`` the chain hashes (its ``CHAINED_FIELDS``, as the store holds them).

    Values are taken as they are, not coerced: a seq stored as text or a changed type is a
    changed event. Only ``superseded`` is read as a truth value (SQLite stores it as 0/1)."""
    values: list[Any] = [FORMAT]
    for name in CHAINED_FIELDS:
        value = event[name]
        values.append(bool(value) if name == "superseded" else value)
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()


def link(algorithm: str, prev_hash: str, event: Mapping[str, Any]) -> str:
    """The hash at an event's position, given the hash before it (hex)."""
    try:
        prev = bytes.fromhex(prev_hash)
    except (TypeError, ValueError):
        prev = str(prev_hash).encode()  # a damaged stored hash still gives a (wrong) answer
    return digest(algorithm, prev + canonical(event)).hex()


def chain(algorithm: str, events: Iterable[Mapping[str, Any]], prev_hash: str = GENESIS) -> list[str]:
    """The link hashes of ``events`` appended in order after ``prev_hash``."""
    out: list[str] = []
    for event in events:
        prev_hash = link(algorithm, prev_hash, event)
        out.append(prev_hash)
    return out


# --- verifying a store's chain ---


@dataclass(frozen=True)
class ChainRow:
    """One ``case_event`` row as the verifier reads it: its place, stored hash and content."""

    position: int | None  # None: never chained
    hash: str | None
    event: Mapping[str, Any]

    @property
    def receipt(self) -> str:
        return str(self.event.get("receipt", "?"))

    @property
    def seq(self) -> Any:
        return self.event.get("seq", "?")


class Problem(StrEnum):
    EDITED = "edited"
    MISSING = "missing"
    OUT_OF_ORDER = "out of order"
    UNCHAINED = "unchained"


@dataclass(frozen=True)
class Divergence:
    """The first place where the chain does not hold."""

    problem: Problem
    position: int
    receipt: str
    seq: Any
    detail: str

    def line(self) -> str:
        return f"{self.problem.value}: receipt {self.receipt} seq {self.seq} (chain position {self.position}): " \
               f"{self.detail}"


@dataclass(frozen=True)
class Recorded:
    """What the store records of its chain's end (its head row)."""

    algorithm: str
    count: int
    head: str


@dataclass(frozen=True)
class Verified:
    algorithm: str
    count: int  # events in the chain as found
    head: str  # the hash at its last position (GENESIS for none)
    divergence: Divergence | None

    @property
    def intact(self) -> bool:
        return self.divergence is None


def verify(rows: Sequence[ChainRow], recorded: Recorded, case_counts: Mapping[str, int] | None = None) -> Verified:
    """Recompute the chain of ``rows`` (any order) against its stored hashes and recorded head.

    Returns the first divergence in position order (see the module docstring); an unchained
    row is reported only when the chain itself holds. ``case_counts`` (receipt -> the number
    of events the case's row says it has) only helps name a deleted event."""
    counts = case_counts or {}
    algorithm = recorded.algorithm
    chained = sorted((r for r in rows if r.position is not None), key=lambda r: r.position or 0)
    prev, expected = GENESIS, 1
    for i, row in enumerate(chained):
        pos = row.position or 0
        if pos != expected:
            return Verified(algorithm, i, prev, _missing(chained, i, expected, pos, counts))
        if link(algorithm, prev, row.event) != row.hash:
            return Verified(algorithm, i, prev, _diagnose(algorithm, chained, i, prev))
        prev, expected = str(row.hash), expected + 1
    count = len(chained)
    if count < recorded.count:
        last = chained[-1] if chained else None
        after = f"after receipt {last.receipt} seq {last.seq}" if last else "at the start"
        hole = _seq_hole(chained, count + 1, None, counts)
        return Verified(algorithm, count, prev, Divergence(
            Problem.MISSING, count + 1, hole[0] if hole else "?", hole[1] if hole else "?",
            f"the chain ends {after} at {count} events, but the store recorded {recorded.count}"))
    if count > recorded.count or (count and prev != recorded.head):
        last = chained[-1]
        return Verified(algorithm, count, prev, Divergence(
            Problem.EDITED, count, last.receipt, last.seq,
            f"the chain's end ({count} events, head {prev[:16]}…) is not the head the store recorded "
            f"({recorded.count} events, head {recorded.head[:16]}…)"))
    stray = [r for r in rows if r.position is None]
    if stray:
        r = stray[0]
        return Verified(algorithm, count, prev, Divergence(
            Problem.UNCHAINED, 0, r.receipt, r.seq, "the event is not in the chain: it was put into the file directly"))
    return Verified(algorithm, count, prev, None)


def _missing(chained: Sequence[ChainRow], i: int, expected: int, found: int, counts: Mapping[str, int]) -> Divergence:
    """Positions ``expected`` … ``found - 1`` are absent (``chained[i]`` is at ``found``)."""
    if found < expected:  # two rows claim one position: one of them was moved there
        row = chained[i]
        return Divergence(Problem.OUT_OF_ORDER, found, row.receipt, row.seq,
                          f"a second event at position {found}: the history was reordered")
    before = chained[i - 1] if i else None
    hole = _seq_hole(chained, expected, found, counts)
    receipt, seq = hole if hole else ("?", "?")
    between = (f"between receipt {before.receipt} seq {before.seq} and " if before else "before ") + \
        f"receipt {chained[i].receipt} seq {chained[i].seq}"
    n = found - expected
    return Divergence(Problem.MISSING, expected, receipt, seq,
                      f"{n} event{'s' if n > 1 else ''} deleted {between}")


def _seq_hole(chained: Sequence[ChainRow], first_missing: int, next_found: int | None,
              counts: Mapping[str, int]) -> tuple[str, int] | None:
    """The (receipt, seq) of the deleted event, when it can be named: a seq absent from a
    case's history (1 … the count its case row records, or below its highest seq here) whose
    neighbours in that history sit around the missing positions."""
    by_receipt: dict[str, dict[int, int]] = {}
    for r in chained:
        seq = r.event.get("seq")
        if isinstance(seq, int) and seq > 0:
            by_receipt.setdefault(r.receipt, {})[seq] = r.position or 0
    for receipt, places in by_receipt.items():
        top = max(counts.get(receipt, 0), max(places))
        for seq in range(1, top + 1):
            if seq in places:
                continue
            before = max((p for q, p in places.items() if q < seq), default=0)
            after = min((p for q, p in places.items() if q > seq), default=None)
            if before < first_missing and (after is None or next_found is None or after >= next_found):
                return receipt, seq
    return None


def _diagnose(algorithm: str, chained: Sequence[ChainRow], i: int, prev: str) -> Divergence:
    """Why ``chained[i]`` does not give its hash: moved, exchanged within its case, or edited."""
    row = chained[i]
    pos = row.position or 0
    # Intact but moved: its stored hash fits the event it followed when it was appended.
    for other in (None, *chained):
        before = GENESIS if other is None else str(other.hash)
        if other is not row and before != prev and link(algorithm, before, row.event) == row.hash:
            after = "the first event" if other is None else f"receipt {other.receipt} seq {other.seq}"
            return Divergence(Problem.OUT_OF_ORDER, pos, row.receipt, row.seq,
                              f"appended right after {after}, now found elsewhere: the history was reordered")
    # Exchanged places in its case's history with another event of the case.
    for other in chained[i + 1:]:
        if other.receipt == row.receipt and other.seq != row.seq:
            if link(algorithm, prev, {**row.event, "seq": other.seq}) == row.hash:
                return Divergence(Problem.OUT_OF_ORDER, pos, row.receipt, other.seq,
                                  f"now recorded as seq {row.seq}: seq {other.seq} and seq {row.seq} of the case "
                                  "exchanged places")
    return Divergence(Problem.EDITED, pos, row.receipt, row.seq,
                      "its content does not match its hash (actor, times, reason or another field changed)")


# --- heads travelling up the tree ---


@dataclass(frozen=True)
class Head:
    """A node's word on its chain, as it travels up (``node.domain.messages.AuditHeadMessage``)."""

    node: str
    incarnation: int
    algorithm: str
    count: int
    head: str
    checkpoint_count: int  # the count of the head this node sent before (0: none)
    checkpoint_hash: str  # this node's hash at that position now
    seq: int = 0  # the message's origin sequence: heads of one incarnation are sent in increasing order


@dataclass(frozen=True)
class Kept:
    """The latest head an ancestor holds for a descendant."""

    incarnation: int
    algorithm: str
    count: int
    head: str
    kept_by_incarnation: int  # the ancestor's own incarnation when it stored this
    seq: int = 0  # the origin sequence of the message that carried it


class Judgement(StrEnum):
    FIRST = "first"  # nothing held yet: the baseline
    EXTENDS = "extends"  # the new head extends the kept one
    RESTORED = "restored"  # a new incarnation (a proper restore) or the ancestor was restored: new baseline
    STALE = "stale"  # from an older incarnation than the one held: ignored
    BROKEN = "broken"  # the history was rewritten or rolled back outside govnet


@dataclass(frozen=True)
class Verdict:
    judgement: Judgement
    reason: str

    @property
    def keep(self) -> bool:
        """Whether the incoming head replaces the kept one."""
        return self.judgement is not Judgement.STALE


def judge(kept: Kept | None, incoming: Head, my_incarnation: int) -> Verdict:
    """Whether ``incoming`` extends what an ancestor (at ``my_incarnation``) holds."""
    if kept is None:
        return Verdict(Judgement.FIRST, f"first head of {incoming.node}: {incoming.count} events")
    if incoming.incarnation < kept.incarnation:
        return Verdict(Judgement.STALE, f"head of incarnation {incoming.incarnation}, "
                                        f"incarnation {kept.incarnation} is held")
    if incoming.incarnation > kept.incarnation:
        return Verdict(Judgement.RESTORED, f"{incoming.node} restored as incarnation {incoming.incarnation}: "
                                           f"its chain resumes at {incoming.count} events")
    if incoming.seq < kept.seq:  # a relay restored from a backup sends what it had forwarded again
        return Verdict(Judgement.STALE, f"a repeat of an earlier head (message {incoming.seq}, {kept.seq} is held)")
    if incoming.seq == kept.seq and kept.seq:
        if (incoming.count, incoming.head) == (kept.count, kept.head):
            return Verdict(Judgement.STALE, "the head held, again")
        return Verdict(Judgement.BROKEN, f"chain of {incoming.node}: another head under the message identity of "
                                         "the one held: its store was copied back (rolled back) by hand")
    if kept.kept_by_incarnation != my_incarnation:
        return Verdict(Judgement.RESTORED, "this node was restored since it kept the last head: new baseline")
    if incoming.algorithm != kept.algorithm:
        return Verdict(Judgement.BROKEN, f"chain of {incoming.node} changed its hash from {kept.algorithm} "
                                         f"to {incoming.algorithm}")
    if incoming.count < kept.count:
        return Verdict(Judgement.BROKEN, f"chain of {incoming.node} shrank from {kept.count} to {incoming.count} "
                                         "events in one incarnation: history deleted or rolled back")
    if incoming.checkpoint_count != kept.count:
        return Verdict(Judgement.BROKEN, f"chain of {incoming.node} checked at position {incoming.checkpoint_count}, "
                                         f"the head held here is at {kept.count}: it cannot be shown to extend it")
    if incoming.checkpoint_hash != kept.head:
        return Verdict(Judgement.BROKEN, f"chain of {incoming.node} rewritten or rolled back at or before position "
                                         f"{kept.count}: hash there is {incoming.checkpoint_hash[:16]}…, "
                                         f"was {kept.head[:16]}…")
    return Verdict(Judgement.EXTENDS, f"{incoming.node}: {kept.count} -> {incoming.count} events")
