"""The up-link's policy, sans I/O: what goes up next, what is in flight, what the parent's
acknowledgements settle, when settled envelopes leave the outbox, and what a new parent
incarnation means.

``UpLinkCore`` is a state machine in the h11 sense: events go in (outbox rows read, a batch
sent, an acknowledgement received, the parent's hello reply, and the time ``now`` wherever
time matters) and effects come out as values (``ReadOutbox``, ``DeleteAcknowledged``,
``RecordParentIncarnation``, the next batch to send). It reads no database, opens no
socket, awaits nothing and asks no clock. Two drivers run it: the node's up-link
(``node.app.links.UpLink``) executes its store effects, and the session
(``sync.session.exchange``) carries its batches and acknowledgements over a transport —
in worker threads under the asyncio link driver (``sync.driver``), directly under the
deterministic simulation (``tests/support/simulation.py``).

The window
    The next batches are chosen from a window: the first ``lookahead`` waiting envelopes
    of the link, in link order, kept between batches (reading and decoding thousands of
    rows for every batch of 200 cost more than sending it). It is read afresh at every
    exchange (``begin``) and topped up from beyond the highest position read, a couple of
    batches' worth at a time, so the first batch of a long backlog does not wait for the
    whole window to be read; urgent envelopes further back are found a few batches later,
    still ahead of the bulk. Positions are given out in commit order, so nothing appears
    below the highest position read.

In flight
    A batch chosen is sent, then reported with ``sent``; up to ``push_window`` batches
    fly at once, and the next one is chosen while they fly, leaving them out, on the
    assumption that they will be acknowledged whole (they nearly always are). An
    acknowledgement answers the oldest batch in flight. One that covers it only in part
    ends the assumption: the driver collects the acknowledgements of what is still in
    flight, drops the batch it chose meanwhile, and chooses again knowing what is missing.

Acknowledgements and deletion
    An acknowledgement (the parent's cursor) settles what it covers at once: nothing it
    covers is offered again. Deleting it from the outbox is deferred and batched — at
    least every ``ACK_FLUSH``, once ``ACK_FLUSH_BATCHES`` batches' worth are settled, when
    there is nothing left to send, and when the window empties — so it happens while the
    next batch is in flight and a drained backlog does not leave all at once at its end.
    An acknowledged envelope that a crash leaves in the outbox is resent and dropped by
    the parent's cursor, so the deletion needs no fsync of its own on every batch.

Size, and what the parent refuses
    Batches are cut by count and by their size on the wire (``sync.batching``), under
    ``max_bytes``. An envelope that alone exceeds it can never be sent: as the window reads
    it, the core swaps it for a small ``withheld`` marker at the same position and asks the
    driver to set the original aside (``Withhold``, returned with the next ``Step``). A parent
    that refuses a batch anyway (too large for its message limit, or unparseable:
    ``refused``) is not sent the same batch again: what was in flight goes back to the
    window, the byte limit is halved below the refused batch's size and one batch flies at a
    time until one is acknowledged whole (the lowered limit stays: a parent with a smaller
    message limit than this node's is thus learnt); a batch of one envelope, refused alone,
    is withheld with the parent's reason (and the limit is restored: the culprit is gone). So every envelope is
    either delivered or withheld after a bounded number of refusals, and nothing behind it
    waits for it.

A new parent incarnation
    The parent's hello reply names its incarnation. A new one is written down (as a cursor
    row of its downward stream, so a restart neither hides nor repeats it); one newer than
    every incarnation written down before means the parent was restored from a backup and
    forgot what it received since: the node queues again what it handed over
    (``parent_restored``). The up-link's own stream simply starts again: every exchange
    reads the window afresh, so whatever is not acknowledged is offered again, and the
    parent's cursor and the end-to-end identities drop what it already holds.

The driver's contract (what the caller must do)
    1. At the start of every exchange call ``begin``; pass the parent's hello reply to
       ``hello_replied`` and execute what it returns: for ``RecordParentIncarnation``,
       decide with ``parent_restored`` from the incarnations written down, write the new
       one down, then report it with ``recorded``.
    2. Before each ``next_batch``, if ``to_read`` returns a ``ReadOutbox``, read that many
       envelopes of the link after that position, in link order, and pass them (even
       none) to ``read``.
    3. Execute the ``Step`` that ``next_batch(now)`` returns: send its batch as one unit in
       the order given and report it with ``sent`` — or drop it, if an acknowledgement
       in between came back partial; delete exactly the positions ``delete`` covers and
       report it with ``deleted``.
    4. Pass every acknowledgement to ``acknowledged`` in the order received, one per batch
       sent; send no batch while ``may_send`` is false; when ``acknowledged`` says the
       batch was not settled whole, collect the acknowledgements of everything still in
       flight before choosing again.
    5. When a push ends, execute ``deletion(now)`` if there is one.
    6. Only envelopes whose transaction has committed may be read (persist before send).
    7. Execute a ``Step``'s ``withhold`` effects (and what ``refused`` returns) before sending
       its batch: the marker is sent only once the original is in the quarantine and the
       marker in its place in the outbox, in one transaction.
    8. When the parent refuses a batch (the stream is gone), pass its reason to ``refused``,
       drop the batch chosen meanwhile, and open a new stream: nothing in flight was settled.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from govnet.sync.batching import DEFAULT_MAX_BYTES, Withhold, select_batch, withhold, withhold_oversize
from govnet.sync.cursor import Cursor
from govnet.sync.envelope import Envelope, batch_size
from govnet.sync.transport.base import Refused

PUSH_WINDOW = 2  # batches sent before the first of them is acknowledged
MAX_BATCHES = 10_000  # batches per exchange; a backlog larger than this continues next time
LOOKAHEAD_BATCHES = 20  # a batch is chosen from this many batches' worth of waiting envelopes
READ_BATCHES = 2  # the window is topped up by at most this many batches' worth at a time
ACK_FLUSH = timedelta(seconds=1)  # acknowledged envelopes leave the outbox at least this often
ACK_FLUSH_BATCHES = 4  # ... and once this many batches' worth are acknowledged


@dataclass(frozen=True)
class ReadOutbox:
    """Effect: read up to ``limit`` envelopes of the link after position ``after``, in link order."""

    after: int
    limit: int


@dataclass(frozen=True)
class DeleteAcknowledged:
    """Effect: delete from the outbox exactly the positions ``cursor`` covers."""

    cursor: Cursor


@dataclass(frozen=True)
class RecordParentIncarnation:
    """Effect: write down that the parent runs as ``incarnation`` (see ``parent_restored``)."""

    incarnation: int


@dataclass(frozen=True)
class ParentRestarted:
    """Notice: the parent answers as another incarnation than it did (``old``) in this process."""

    old: int
    new: int


@dataclass(frozen=True)
class Step:
    """What one choice asks for: send ``batch`` (when not empty), delete ``delete`` (when given)."""

    batch: list[Envelope]
    delete: DeleteAcknowledged | None = None
    withhold: tuple[Withhold, ...] = ()  # to execute before the batch is sent


@dataclass(frozen=True)
class Settled:
    """What an acknowledgement did to the oldest batch in flight."""

    done: int  # envelopes of that batch it covers
    whole: bool  # it covers them all (False: collect the rest of the flight, then choose again)


def parent_restored(known: Collection[int], incarnation: int) -> bool:
    """True when ``incarnation`` is newer than every parent incarnation written down before:
    the parent was restored from a backup. The first incarnation ever seen is no restoration,
    and one already written down is not news."""
    return bool(known) and incarnation not in known and max(known) < incarnation


class UpLinkCore:
    """The child side of the link to ``parent``: batches up, acknowledgements back."""

    def __init__(self, parent: str, batch_max: int, *, push_window: int = PUSH_WINDOW,
                 max_batches: int = MAX_BATCHES, lookahead_batches: int = LOOKAHEAD_BATCHES,
                 max_bytes: int = DEFAULT_MAX_BYTES, node_id: str = "") -> None:
        if batch_max < 1 or push_window < 1:
            raise ValueError(f"an up-link needs batch_max and push_window of at least 1, not {batch_max}, {push_window}")
        self.parent = parent
        self.node_id = node_id  # named in the markers of what it withholds
        self.batch_max = batch_max
        self.max_bytes = max_bytes  # the configured byte limit of a batch
        self.cap = max_bytes  # the byte limit now: lowered after a refusal, back up as batches pass
        self._careful = False  # one batch in flight at a time (after a refusal)
        self._withholds: list[Withhold] = []  # effects for the next Step
        self.withheld = 0  # envelopes withheld in this process (by size or by refusal)
        self.push_window = push_window
        self.max_batches = max_batches
        self.lookahead = batch_max * lookahead_batches
        self.parent_incarnation = 0  # as the parent last said (0: not heard in this process)
        self._recorded = 0  # the parent incarnation known to be written down
        self._window: list[Envelope] = []  # waiting envelopes in link order, in flight ones included
        self._one_priority = True  # every envelope in the window has the same priority
        self._read_through = 0
        self._flying: deque[list[Envelope]] = deque()
        self._flying_seqs: set[int] = set()
        self._sent = 0  # batches sent in this exchange
        # The parent's latest acknowledgement, not yet deleted from the outbox.
        self._acked: Cursor | None = None
        self._flushed_at: datetime | None = None
        self._unflushed = 0  # envelopes acknowledged since the last deletion

    # --- an exchange ---

    def begin(self) -> None:
        """A new exchange: the window is read afresh and nothing is in flight."""
        self._window, self._read_through, self._one_priority = [], 0, True
        self._flying.clear()
        self._flying_seqs.clear()
        self._sent = 0

    def hello_replied(self, node_id: str, incarnation: int) -> list[RecordParentIncarnation | ParentRestarted]:
        """The parent's hello reply; refuses a node that is not this link's parent."""
        if node_id != self.parent:
            raise Refused(f"the node at the parent address is {node_id}, but this node's parent is {self.parent}: "
                          "fix node.parent in govnet.toml")
        out: list[RecordParentIncarnation | ParentRestarted] = []
        if self.parent_incarnation and incarnation != self.parent_incarnation:
            out.append(ParentRestarted(self.parent_incarnation, incarnation))
        self.parent_incarnation = incarnation
        if incarnation != self._recorded:
            out.append(RecordParentIncarnation(incarnation))
        return out

    def recorded(self, incarnation: int) -> None:
        """``RecordParentIncarnation(incarnation)`` has been written down."""
        self._recorded = incarnation

    def pulled(self, parent_incarnation: int) -> None:
        """A pull reply names the parent's incarnation."""
        self.parent_incarnation = parent_incarnation

    # --- the window ---

    def to_read(self) -> ReadOutbox | None:
        room = min(self.lookahead - len(self._window), READ_BATCHES * self.batch_max)
        return ReadOutbox(self._read_through, room) if room > 0 else None

    def read(self, envelopes: Sequence[Envelope]) -> None:
        """What ``ReadOutbox`` found (in link order)."""
        if not envelopes:
            return
        self._read_through = envelopes[-1].seq
        acked = self._acked
        fresh = [e for e in envelopes if acked is None or not acked.has(e.seq)]
        fresh, withholds = withhold_oversize(fresh, self.max_bytes, self.node_id)
        if withholds:
            self._withholds.extend(withholds)
            self.withheld += len(withholds)
        self._window.extend(fresh)
        self._one_priority = len({e.priority for e in self._window}) <= 1

    @property
    def waiting(self) -> int:
        """Envelopes in the window not acknowledged yet (in flight ones included)."""
        return len(self._window)

    # --- pushing ---

    def next_batch(self, now: datetime) -> Step:
        """The next batch, leaving out what is in flight; and the deletion due now, if any."""
        flying = self._flying_seqs
        if self._one_priority:
            # Nothing to promote (a plain backlog): the batch is a prefix of the window, which
            # is in link order, so only its head is looked at (the window holds thousands).
            head = self._window[: len(flying) + self.batch_max]
            candidates = [e for e in head if e.seq not in flying] if flying else head
        else:
            candidates = [e for e in self._window if e.seq not in flying] if flying else self._window
        batch = select_batch(candidates, self.batch_max, self.cap)
        delete = None
        if (not batch or self._flushed_at is None or now - self._flushed_at >= ACK_FLUSH
                or self._unflushed >= ACK_FLUSH_BATCHES * self.batch_max):
            delete = self.flush(now)
        withholds, self._withholds = tuple(self._withholds), []
        return Step(batch, delete, withholds)

    def sent(self, batch: Sequence[Envelope]) -> None:
        """``batch`` went out: it is in flight until its acknowledgement comes back."""
        self._flying.append(list(batch))
        self._flying_seqs.update(e.seq for e in batch)
        self._sent += 1

    @property
    def in_flight(self) -> int:
        """Batches sent and not acknowledged yet."""
        return len(self._flying)

    @property
    def may_send(self) -> bool:
        window = 1 if self._careful else self.push_window
        return len(self._flying) < window and self._sent < self.max_batches

    def refused(self, reason: str) -> Withhold | None:
        """The parent refused a batch (too large, unparseable) and the stream is gone: nothing
        in flight was settled, and it is all offered again. A batch of one envelope that flew
        alone is the one refused: it is withheld (the returned effect, to execute before
        anything else is sent). Otherwise the byte limit goes below half the largest batch
        in flight, and batches fly one at a time, until the culprit flies alone."""
        flying = list(self._flying)
        self._flying.clear()
        self._flying_seqs.clear()
        self._careful = True
        if len(flying) == 1 and len(flying[0]) == 1:
            culprit = flying[0][0]
            effect = withhold(culprit, f"refused by the receiver: {reason}", "refused", self.node_id)
            self._window = [effect.marker if e.seq == culprit.seq else e for e in self._window]
            self.withheld += 1
            self.cap = self.max_bytes  # the culprit is gone: the rest fits as before
            return effect
        largest = max((batch_size(b) for b in flying), default=self.cap)
        self.cap = max(1, min(self.cap, largest) // 2)
        return None

    def acknowledged(self, cursor: Cursor) -> Settled:
        """The parent's cursor: it answers the oldest batch in flight (if any) and settles
        whatever it covers."""
        done, whole = 0, True
        if self._flying:
            oldest = self._flying.popleft()
            self._flying_seqs.difference_update(e.seq for e in oldest)
            done = sum(1 for e in oldest if cursor.has(e.seq))
            whole = done == len(oldest)
            if whole:
                self._careful = False
        window = self._window
        # The acknowledged batch is usually the window's head: cut it off, and look further
        # only for positions acknowledged out of order (the window is in link order).
        head = 0
        while head < len(window) and cursor.has(window[head].seq):
            head += 1
        rest = window[head:]
        self._window = [e for e in rest if e.seq not in cursor.above] if cursor.above else rest
        self._unflushed += len(window) - len(self._window)
        self._acked = cursor
        return Settled(done, whole)

    # --- deleting what is acknowledged ---

    def deletion(self, now: datetime) -> DeleteAcknowledged | None:
        """The deletion due outside a choice: everything acknowledged, once the window is empty
        (the backlog has gone: leave the outbox empty)."""
        return self.flush(now) if not self._window else None

    @property
    def deletion_pending(self) -> bool:
        """``deletion`` would ask for something now."""
        return self._acked is not None and not self._window

    def flush(self, now: datetime) -> DeleteAcknowledged | None:
        """Delete what is acknowledged now, whatever the schedule."""
        self._flushed_at, self._unflushed = now, 0
        return DeleteAcknowledged(self._acked) if self._acked is not None else None

    def deleted(self, effect: DeleteAcknowledged) -> None:
        """``effect`` was executed; an acknowledgement that came meanwhile is still to delete."""
        if self._acked is effect.cursor:
            self._acked = None
