"""One exchange between a child and its parent, over any transport.

The child says hello, pushes its upward outbox in batches over one stream (up to
``sync.uplink.PUSH_WINDOW`` in flight) until it is empty, then pulls until the parent has
nothing more for it (the last, empty pull carries the acknowledgement of the batch before
it), and — when asked — compares digests.

This is the network half of the up-link's driver: it carries what the sans-I/O core
(``Child.core``, a ``sync.uplink.UpLinkCore``) chooses and hands the core what comes back.
``Child`` is the store half (blocking store calls that execute the core's effects); ``run``
decides how they are called: in a worker thread in a real node (``in_thread``, under the
asyncio ``sync.driver.LinkDriver``), directly in the deterministic simulation (``direct``).
The core's own events (a batch sent, an acknowledgement) are pure and cheap, so they are
fed in here, on the event loop, without a thread hop.

A batch the parent refuses (``BatchRefused``: too large for it, or unparseable) ends its
stream; the core is told (``UpLinkCore.refused``), what it withholds is set aside, and a
new stream carries on within the same exchange — at most ``MAX_REFUSALS`` times, so a
parent that refuses everything still ends the exchange (as a failure, with backoff). A
pull reply the child cannot take is asked for again with half the bytes and envelopes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from govnet.sync.batching import Withhold
from govnet.sync.cursor import Cursor
from govnet.sync.digest import PeriodDigest
from govnet.sync.envelope import Envelope
from govnet.sync.transport.base import BatchRefused, Hello, HelloReply, LinkDown, PushStream, Transport
from govnet.sync.uplink import UpLinkCore

T = TypeVar("T")
MAX_ROUNDS = 10_000  # bounds the pulls of one exchange; a backlog larger than this continues next time
PULL_MAX = 200
MAX_REFUSALS = 64  # refused batches per exchange (halving 200 envelopes to one takes eight)


class Child(Protocol):
    node_id: str
    core: UpLinkCore

    def hello(self) -> Hello:
        """Starts an exchange (``core.begin``)."""
        ...

    def on_hello(self, reply: HelloReply) -> None: ...

    def next_batch(self) -> list[Envelope]:
        """The next batch to push, leaving out what is in flight: ``core.next_batch`` with
        its reading and deleting done."""
        ...

    def delete_due(self) -> None:
        """Execute ``core.deletion`` (the push has ended)."""
        ...

    def withhold(self, effect: Withhold) -> None:
        """Execute a ``Withhold`` that ``core.refused`` returned."""
        ...

    def settled_below(self) -> int:
        """The lowest position still held on the up-link (everything below it was acknowledged)."""
        ...

    def down_position(self) -> tuple[int, Cursor]: ...

    def apply_down(self, parent_incarnation: int, envelopes: Sequence[Envelope], settled_below: int = 0) -> None: ...

    @property
    def catching_up(self) -> bool:
        """Restored from a backup and not caught up with the parent yet (an in-memory flag)."""
        ...

    def pulled_all(self) -> None:
        """The parent had nothing more for this node (the exchange's last pull came back empty);
        called only while ``catching_up``."""
        ...

    def period_digests(self) -> list[PeriodDigest] | None:
        """Per-day digests of this subtree's cases; None while a comparison would mislead
        (what came from the parent is received but not applied yet)."""
        ...

    def resync(self, periods: Sequence[str]) -> None: ...


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


async def direct(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)


@dataclass
class ExchangeResult:
    pushed: int = 0
    pulled: int = 0
    divergent: tuple[str, ...] = ()
    compared: bool = False  # digests were compared (not skipped while the child was applying)


async def _push_backlog(transport: Transport, child: Child, hello: Hello, run: Callable[..., Awaitable[Any]]) -> int:
    """Push the up-link's backlog over one stream, as the core allows; returns how many
    envelopes the parent acknowledged.

    Each next batch is chosen (in a worker thread: it may read the outbox) while the ones
    before it are in flight, so the parent, which stores batches one after another in the
    order sent, finds the next one waiting when it has stored one, instead of waiting a
    round trip for it. A batch acknowledged only in part stops the sending: what is in
    flight is collected, the batch chosen meanwhile is dropped, and the core chooses again
    knowing what is missing.
    """
    core = child.core
    batch = await run(child.next_batch)
    if not batch:
        return 0
    # Read once per exchange: positions leave the outbox only once acknowledged, so the value
    # only grows and an older one is still true (merely less informative).
    settled = await run(child.settled_below)
    pushed = refusals = 0
    while True:
        stream = transport.open_push(hello.node_id, hello.incarnation, settled)
        try:
            pushed += await _push_stream(stream, core, child, batch, run)
        except BatchRefused as exc:
            refusals += 1
            if refusals > MAX_REFUSALS:
                raise LinkDown(f"the parent refused {refusals} batches in one exchange; the last: {exc}") from None
            effect = core.refused(str(exc))
            if effect is not None:
                await run(child.withhold, effect)
            batch = await run(child.next_batch)
            if batch:
                continue
        finally:
            await stream.close()
        break
    if core.deletion_pending:
        await run(child.delete_due)
    return pushed


async def _push_stream(stream: PushStream, core: UpLinkCore, child: Child, batch: list[Envelope],
                       run: Callable[..., Awaitable[Any]]) -> int:
    """Push over one stream from ``batch`` on, until nothing is left or the window is spent."""
    pushed = 0
    while batch or core.in_flight:
        while batch and core.may_send:
            try:
                await stream.send(batch)
            finally:
                # A batch whose sending failed may have been the one refused: count it in flight.
                core.sent(batch)
            batch = await run(child.next_batch)
        if not core.in_flight:
            break
        settled_now = core.acknowledged(await stream.acknowledgement())
        pushed += settled_now.done
        if not settled_now.whole:
            while core.in_flight:
                pushed += core.acknowledged(await stream.acknowledgement()).done
            batch = await run(child.next_batch) if core.may_send else []
    return pushed


async def exchange(
    transport: Transport,
    child: Child,
    run: Callable[..., Awaitable[Any]] = in_thread,
    compare_digests: bool = False,
    pull_max: int = PULL_MAX,
) -> ExchangeResult:
    result = ExchangeResult()
    hello = await run(child.hello)
    reply = await transport.hello(hello)
    await run(child.on_hello, reply)
    result.pushed = await _push_backlog(transport, child, hello, run)
    pull_bytes = child.core.max_bytes
    for _ in range(MAX_ROUNDS):
        incarnation, applied = await run(child.down_position)
        try:
            got = await transport.pull(hello.node_id, hello.incarnation, incarnation, applied, pull_max, pull_bytes)
        except BatchRefused:
            if pull_max <= 1:
                raise  # one envelope the parent would not withhold (an older parent): retried later
            pull_max, pull_bytes = max(1, pull_max // 2), max(1, pull_bytes // 2)
            continue
        if not got.envelopes:
            if got.parent_incarnation != incarnation or got.settled_below > applied.through + 1:
                await run(child.apply_down, got.parent_incarnation, (), got.settled_below)
            if child.catching_up:
                await run(child.pulled_all)
            break
        await run(child.apply_down, got.parent_incarnation, got.envelopes, got.settled_below)
        result.pulled += len(got.envelopes)
    if compare_digests:
        mine = await run(child.period_digests)
        if mine is not None:
            divergent = await transport.digest(hello.node_id, mine)
            if divergent:
                await run(child.resync, divergent)
            result.divergent = tuple(divergent)
            result.compared = True
    return result
