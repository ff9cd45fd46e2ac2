"""The inbox: what this node's neighbours send it, received durably, then applied exactly once.

Two steps, each one transaction:

1. **receive** (on the caller's thread, before the acknowledgement): the envelopes of a batch
   that the link's cursor does not already cover are stored as one row of the ``inbox``
   table (``sync.transport.wire.encode_envelopes``) together with the advanced cursor. Only after that
   commit is the cursor returned as the acknowledgement, so what a neighbour has been told
   is stored survives any crash (persist before acknowledging). This step does no domain
   work and no per-envelope row: a batch costs one insert and one fsync, which is what lets
   a village's backlog drain at close to the speed of the disk.
2. **apply** (``drain``): stored envelopes are applied oldest first, in chunks. Each chunk
   runs in one transaction that applies or relays every envelope and, in the same
   transaction, counts it applied in its row (the row goes when all are), so an envelope is
   applied exactly once however the process stops. Almost every chunk applies cleanly, so
   it is first applied straight through; if an envelope fails, the chunk is rolled back and
   applied again with a savepoint per envelope, and the failing one is quarantined alone
   (it never blocks the queue behind it). What no envelope may be (numbers beyond SQLite's
   integers, a payload that is not UTF-8) is checked here too, so a bad one is quarantined
   like any other.

An envelope its sender could not send (larger than a batch may be, or refused by this node)
arrives as a ``withheld`` marker at its link position: it is recorded in this node's
quarantine (reason ``withheld``, with the sender's reason, the kind and the size) and counted
applied, so the cursor moves past it and both ends show it. It is neither applied nor
passed on, and its identity is not recorded as applied: when the sender replays the
original (after raising its limit), it applies like any envelope. A later envelope of the
same case that needed it hits the case's event gap and is quarantined by the rule above.

A receiver restored from an older backup has a cursor behind what its former self
acknowledged, and the sender has deleted those envelopes: each batch says the sender's
lowest position still held (``settled_below``), and a cursor behind it moves up to it
(logged once, counted in ``Inbox.settled_jumps``). The sender deletes only what was
acknowledged, so this never skips a position a receiver that was not restored has not
stored. What the lost envelopes did is recovered end to end (``node.app.replication``).

The tables (received batches, inbound cursors, the quarantine) and their SQL are in
``node.store.inbox``.

Who may send what is checked here too (``federation.authority``), on both directions of
every link, so it holds over any transport: before a batch is stored, every envelope's
origin and target must fit the link it came on (a child speaks only for its subtree; the
parent only about the receiver's) — one that does not refuses the whole batch
(``Forbidden``: PERMISSION_DENIED to the peer, nothing stored, nothing acknowledged). What
a payload names (a case's origin, a catalog release's issuer and items) is checked where
the replicator reads it, and a refused envelope is quarantined with the reason. Either
way: one log line, counted in ``Refusals`` (``govnet_sync_refused_total{reason}``).

A deterministic simulation applies inline, right after receiving; a node process applies
from a background task (``run_inbox``) that receiving wakes. The inbox is bounded: a
parent whose inbox is full answers "busy" and its children back off.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime

from govnet.federation.authority import Refusal, check_from_child, check_from_parent
from govnet.federation.tree import parent_id
from govnet.node.app.replication import ApplyError, Replicator, Unauthorized
from govnet.node.app.wakeup import Wakeup
from govnet.node.domain.clock import Clock
from govnet.node.store import inbox as inbox_store
from govnet.node.store.engine import Store
from govnet.node.store.models import QuarantineRow
from govnet.node.store.unit import DatabaseFailure, Unit, savepoint, utc_text
from govnet.sync.admission import Busy
from govnet.sync.cursor import Cursor
from govnet.sync.envelope import WITHHELD, Envelope, Received, Withheld
from govnet.sync.transport.base import Refused
from govnet.sync.transport.wire import decode_envelopes, encode_envelopes

log = logging.getLogger("govnet.sync")

CAPACITY = 100_000  # envelopes waiting to be applied before children are told to back off
CHUNK = 200  # envelopes applied per transaction (receiving waits for the one in progress)
IDLE_CHECK_S = 1.0  # the apply task looks again this often even when nobody wakes it
# While batches keep arriving (one within BUSY_WINDOW_S), applying takes BUSY_CHUNK envelopes
# (some 10-20 ms of work, holding the store's write lock) and then pauses BUSY_PAUSE_S, so a
# batch arriving rarely waits for it; half a capacity's backlog lifts the pauses.
BUSY_WINDOW_S = 0.5
BUSY_CHUNK = 20
BUSY_PAUSE_S = 0.1


def out_of_range(env: Received) -> str:
    """Why an envelope's numbers cannot be stored (a peer's bug: the wire allows uint64), or ''."""
    if env.seq < 2**63 and env.origin_incarnation < 2**63 and env.origin_seq < 2**63 and -(2**63) <= env.priority < 2**63:
        return ""  # the usual case, checked cheaply: every envelope of every batch passes here
    for name in ("seq", "origin_incarnation", "origin_seq", "priority"):
        if not inbox_store.fits(getattr(env, name)):
            return f"envelope {name} {getattr(env, name)} is out of range"
    return ""


class Forbidden(Refused):
    """A neighbour sent what it may not: PERMISSION_DENIED, nothing of the batch applied."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class Refusals:
    """What the authorization rules refused, by reason (``govnet_sync_refused_total``):
    each refusal is one log line and one count."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, link: str, refusal: Refusal, kind: str = "") -> None:
        log.warning("refused: %s", refusal.message, extra={"link": link, "reason": refusal.reason.value,
                                                           "kind": kind})
        with self._lock:
            self.counts[refusal.reason.value] += 1


class Inbox:
    """Receives batches from neighbour streams and applies them with exactly-once effect."""

    def __init__(self, store: Store, replicator: Replicator, clock: Clock, *, apply_inline: bool = True,
                 capacity: int = CAPACITY, outbox_filled: Wakeup | None = None) -> None:
        self.store = store
        self.replicator = replicator
        self.clock = clock
        self.apply_inline = apply_inline
        self.capacity = capacity
        self.arrivals = Wakeup()  # rung when a batch is stored; the apply task (``run_inbox``) listens
        self.on_received: Callable[[], None] = self.arrivals.ring
        # Applying may have queued messages to send (relays, answers to requests).
        self.on_applied: Callable[[], None] = (outbox_filled or Wakeup()).ring
        self.settled_jumps = 0  # cursors moved up to a sender's settled position (restores only)
        self.refusals = Refusals()
        self._parent = parent_id(store.meta.node_id)
        self._drain_lock = threading.Lock()  # one applier at a time: envelopes apply in order
        self._depth_lock = threading.Lock()
        with store.reading() as s:
            self._depth = inbox_store.waiting(s)

    @property
    def depth(self) -> int:
        """Envelopes received and not yet applied."""
        return self._depth

    @staticmethod
    def cursor(s: Unit, link: str, incarnation: int) -> Cursor:
        return inbox_store.inbound_cursor(s, link, incarnation)

    def holds_from(self, link: str) -> bool:
        """Whether envelopes received from ``link`` wait to be applied."""
        if not self._depth:
            return False
        with self.store.reading() as s:
            return inbox_store.holds_from(s, link)

    def check_room(self) -> None:
        """Refuse a batch (the sender backs off) while the inbox holds ``capacity`` envelopes."""
        if self._depth >= self.capacity:
            raise Busy(max(1.0, self._depth / max(self.capacity, 1)))

    def receive(self, link: str, incarnation: int, envelopes: Sequence[Received], settled_below: int = 0) -> Cursor:
        """Store a batch with its cursor in one transaction; return the cursor to acknowledge.

        ``settled_below``: the sender's lowest position still held on the link (0: not said).
        """
        self._vet(link, envelopes)
        received_at = utc_text(self.clock.now())
        fresh: list[Received] = []
        taken: set[int] = set()
        with self.store.transaction() as s:
            cursor = self.cursor(s, link, incarnation)
            if settled_below - 1 > cursor.through:
                cursor = self._settle(link, incarnation, cursor, settled_below)
            for env in envelopes:
                if cursor.has(env.seq) or env.seq in taken:
                    continue  # a resent or duplicated copy: already stored (or applied)
                taken.add(env.seq)
                fresh.append(env)
            cursor = cursor.add(taken)
            if fresh:
                inbox_store.store_batch(s, link, taken, encode_envelopes(fresh), received_at)
            inbox_store.save_cursor(s, link, incarnation, cursor, received_at)
        self._count(len(fresh))
        if fresh:
            self.on_received()
            if self.apply_inline:
                self.drain()
        return cursor

    def _vet(self, link: str, envelopes: Sequence[Received]) -> None:
        """Refuse the batch (``Forbidden``) if one of its envelopes may not come on ``link``."""
        here = self.store.meta.node_id
        check = check_from_parent if link == self._parent else check_from_child
        seen: set[tuple[str, str, str]] = set()  # a batch has few distinct (kind, origin, target)
        for env in envelopes:
            facts = (env.kind, env.origin, env.target)
            if facts in seen:
                continue
            seen.add(facts)
            refusal = check(here, link, *facts)
            if refusal is not None:
                self.refusals.record(link, refusal, env.kind)
                raise Forbidden(refusal)

    def _settle(self, link: str, incarnation: int, cursor: Cursor, settled_below: int) -> Cursor:
        """Move a cursor up to what the sender says is settled (this store was restored)."""
        log.warning("cursor behind what the sender still holds: this store was restored from a backup; "
                    "moving it up (what those envelopes did is recovered end to end)",
                    extra={"link": link, "incarnation": incarnation, "through": cursor.through,
                           "settled_below": settled_below})
        self.settled_jumps += 1
        return cursor.settled(settled_below)

    # --- applying ---

    def drain(self, max_chunks: int | None = None, chunk: int = CHUNK) -> int:
        """Apply what is stored, oldest first (all of it, or ``max_chunks`` chunks of ``chunk``
        envelopes); return how many envelopes were taken."""
        taken = chunks = 0
        with self._drain_lock:
            while max_chunks is None or chunks < max_chunks:
                n = self._apply_chunk(chunk)
                if n == 0:
                    break
                taken += n
                chunks += 1
                self.on_applied()
        return taken

    def _apply_chunk(self, chunk: int) -> int:
        try:
            return self._apply_oldest(chunk, careful=False)
        except DatabaseFailure:
            raise  # the store itself failed: nothing was applied, the chunk waits for the next try
        except Exception:
            return self._apply_oldest(chunk, careful=True)

    def _apply_oldest(self, chunk: int, careful: bool) -> int:
        now = self.clock.now()
        taken = batch_id = 0
        with self.store.transaction() as s:
            while taken < chunk:  # a batch at a time: a chunk rarely needs more than one or two
                batch = inbox_store.next_batch(s, batch_id)
                if batch is None:
                    break
                batch_id, link, applied = batch.id, batch.link, batch.applied
                envelopes = decode_envelopes(batch.envelopes, applied, applied + chunk - taken)
                for env in envelopes:
                    if env.kind == WITHHELD:
                        self._withheld(s, link, env, now)
                        continue
                    if not careful:
                        self._check_envelope(link, env)
                        self.replicator.process(s, env, now)
                        continue
                    try:
                        with savepoint(s):
                            self._check_envelope(link, env)
                            self.replicator.process(s, env, now)
                    except DatabaseFailure:
                        raise
                    except Exception as exc:
                        self._quarantine(s, link, env, exc, now)
                taken += len(envelopes)
                # A batch with nothing left to decode goes too, whatever its count says.
                inbox_store.mark_applied(s, batch, applied + len(envelopes) if envelopes else batch.count)
        self._count(-taken)
        return taken

    def _count(self, change: int) -> None:
        with self._depth_lock:
            self._depth += change

    def _check_envelope(self, link: str, env: Envelope) -> None:
        """What no envelope may be, whatever its kind: checked before it is applied."""
        problem = out_of_range(env)
        if problem:
            raise ApplyError(problem)
        try:
            env.payload.decode()
        except UnicodeDecodeError:
            raise ApplyError("the payload is not UTF-8 text") from None
        # Catalog versions, revocation lists and calendar years flow only down: one that comes up
        # from a child is refused.
        if env.kind in ("catalog", "revocation", "calendar") and link != parent_id(self.store.meta.node_id):
            raise ApplyError(f"a {env.kind} comes only from its parent, not from {link}")

    # --- quarantine ---

    def _quarantine(self, s: Unit, link: str, env: Received, exc: Exception, now: datetime) -> None:
        error = f"{exc.__class__.__name__}: {exc}"
        if isinstance(exc, Unauthorized):  # its one log line says it was refused, and why
            self.refusals.record(link, exc.refusal, env.kind)
        else:
            log.warning("envelope quarantined", extra={"link": link, "kind": env.kind, "case_key": env.case_key,
                                                        "error": error})
        inbox_store.quarantine(s, link, env, error, now)

    @staticmethod
    def _withheld(s: Unit, link: str, env: Envelope, now: datetime) -> None:
        """The marker of an envelope its sender withheld: recorded in the quarantine, not applied."""
        try:
            note = Withheld.decode(env.payload)
        except ValueError as exc:
            inbox_store.quarantine(s, link, env, str(exc), now)
            return
        reason = note.describe()
        log.warning("the sender withheld an envelope", extra={"link": link, "kind": note.kind,
                                                               "case_key": env.case_key, "error": reason})
        inbox_store.quarantine(s, link, env, reason, now, reason="withheld", kind=note.kind, size=note.size)

    def quarantined(self) -> list[QuarantineRow]:
        with self.store.reading() as s:
            return inbox_store.quarantined(s)

    def replay(self, item_id: int) -> tuple[bool, str]:
        """Try a quarantined envelope again (after the cause was fixed). Returns (applied, error)."""
        now = self.clock.now()
        with self.store.transaction() as s:
            row = inbox_store.quarantined_item(s, item_id)
            if row is None or row.side != "receiver":
                raise KeyError(f"no quarantined item {item_id} waiting")
            if row.reason == "withheld":
                raise NotReplayable(
                    f"item {item_id} is only the marker of a {row.kind} that {row.link} withheld ({row.error}); "
                    f"replay it at {row.link}: `govnet sync quarantine list` there shows its id")
            env = Envelope(row.seq, row.origin, row.origin_incarnation, row.origin_seq, row.kind, row.target,
                           row.case_key, row.priority, row.payload.encode(), row.created_at)
            try:
                with savepoint(s):
                    self._check_envelope(row.link, env)
                    self.replicator.process(s, env, now)
            except DatabaseFailure:
                raise
            except Exception as exc:
                inbox_store.record_replay(s, row, f"{exc.__class__.__name__}: {exc}", now)
                return False, row.error
            inbox_store.record_replay(s, row, "", now)
            return True, ""


class NotReplayable(Exception):
    """A quarantine entry that cannot be replayed here; ``str()`` says where or how."""


async def run_inbox(inbox: Inbox, stop: asyncio.Event) -> None:
    """Apply what the inbox receives until ``stop`` is set (a node process's apply task).

    Receiving comes first. While batches arrive back to back (a reconnected subtree
    catching up), applying takes small chunks with pauses in between, so the backlog moves
    off the link — the scarce, unreliable resource — at close to the disk's speed, and
    applying still progresses; once arrivals pause, or the inbox is half full, it applies
    at full speed. Receiving wakes it; it also looks every ``IDLE_CHECK_S``, so envelopes
    stored before a restart are applied without waiting for new ones. A failing store is
    logged and retried at that pace rather than ending the task.
    """
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()
    last_received = [0.0]

    def received() -> None:  # called from the worker thread that received the batch
        last_received[0] = time.monotonic()
        loop.call_soon_threadsafe(wake.set)

    inbox.arrivals.connect(received)
    while not stop.is_set():
        wake.clear()
        busy = time.monotonic() - last_received[0] < BUSY_WINDOW_S and inbox.depth < inbox.capacity // 2
        try:
            # One chunk per hop to the worker thread, so a stop waits for one chunk at most.
            if await asyncio.to_thread(inbox.drain, 1, BUSY_CHUNK if busy else CHUNK) and not busy:
                continue
        except DatabaseFailure as exc:
            log.error("inbox apply failed; retrying", extra={"error": str(exc)})
        if stop.is_set():
            break
        waiters = {asyncio.ensure_future(stop.wait())}
        if not busy:
            waiters.add(asyncio.ensure_future(wake.wait()))
        done, pending = await asyncio.wait(waiters, timeout=BUSY_PAUSE_S if busy else IDLE_CHECK_S,
                                           return_when=asyncio.FIRST_COMPLETED)
        for w in pending:
            w.cancel()
