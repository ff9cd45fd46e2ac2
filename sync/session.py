"""One exchange between a child and its parent, over any transport.

The child says hello, pushes its upward outbox in batches over one stream (two in
flight) until it is empty, then pulls until the parent has nothing more for it (the last,
empty pull carries the acknowledgement of the batch before it), and — when asked —
compares digests.
``Child`` is the child node's side (blocking store calls); ``run`` decides how they
are called: in a worker thread in a real node, directly in a deterministic simulation.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from govnet.sync.cursor import Cursor
from govnet.sync.digest import PeriodDigest
from govnet.sync.envelope import Envelope
from govnet.sync.transport.base import Hello, HelloReply, Transport

T = TypeVar("T")
MAX_ROUNDS = 10_000  # bounds one exchange; a backlog larger than this continues next time
PUSH_WINDOW = 2  # batches sent before the first of them is acknowledged
PULL_MAX = 200


class Child(Protocol):
    node_id: str

    def hello(self) -> Hello: ...

    def on_hello(self, reply: HelloReply) -> None: ...

    def next_batch(self, in_flight: Sequence[Envelope] = ()) -> list[Envelope]:
        """The next batch to push, leaving out ``in_flight`` (the batch being pushed now)."""
        ...

    def acknowledged(self, cursor: Cursor) -> None: ...

    def settled_below(self) -> int:
        """The lowest position still held on the up-link (everything below it was acknowledged)."""
        ...

    def down_position(self) -> tuple[int, Cursor]: ...

    def apply_down(self, parent_incarnation: int, envelopes: Sequence[Envelope], settled_below: int = 0) -> None: ...

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


def _acknowledge_and_choose(child: Child, cursor: Cursor | None, in_flight: Sequence[Envelope]) -> list[Envelope]:
    if cursor is not None:
        child.acknowledged(cursor)
    return child.next_batch(in_flight)


async def _push_backlog(transport: Transport, child: Child, hello: Hello, run: Callable[..., Awaitable[Any]]) -> int:
    """Push the up-link's backlog over one stream, up to ``PUSH_WINDOW`` batches in flight;
    returns how many envelopes the parent acknowledged.

    Each next batch is chosen while the ones before it are in flight, on the assumption that
    they will be acknowledged whole (they nearly always are), and in the same worker-thread
    call the child is told of the latest acknowledgement. So the parent, which stores
    batches one after another in the order sent, finds the next one waiting when it has
    stored one, instead of waiting a round trip for it. A batch acknowledged only in part
    stops the sending: what is in flight is collected, and the child chooses again knowing
    what is missing.
    """
    batch = await run(child.next_batch)
    if not batch:
        return 0
    # Read once per exchange: positions leave the outbox only once acknowledged, so the value
    # only grows and an older one is still true (merely less informative).
    settled = await run(child.settled_below)
    stream = transport.open_push(hello.node_id, hello.incarnation, settled)
    flying: deque[list[Envelope]] = deque()
    told: Cursor | None = None  # an acknowledgement the child has not been told of yet
    pushed = sent = 0
    try:
        while batch or flying:
            while batch and len(flying) < PUSH_WINDOW and sent < MAX_ROUNDS:
                await stream.send(batch)
                flying.append(batch)
                sent += 1
                batch = await run(_acknowledge_and_choose, child, told, [e for b in flying for e in b])
                told = None
            if not flying:
                break
            cursor = await stream.acknowledgement()
            oldest = flying.popleft()
            done = sum(1 for e in oldest if cursor.has(e.seq))
            pushed += done
            told = cursor
            if done < len(oldest):
                while flying:
                    cursor = await stream.acknowledgement()
                    pushed += sum(1 for e in flying.popleft() if cursor.has(e.seq))
                await run(child.acknowledged, cursor)
                told = None
                batch = await run(child.next_batch) if sent < MAX_ROUNDS else []
        if told is not None:
            await run(child.acknowledged, told)
    finally:
        await stream.close()
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
    for _ in range(MAX_ROUNDS):
        incarnation, applied = await run(child.down_position)
        got = await transport.pull(hello.node_id, hello.incarnation, incarnation, applied, pull_max)
        if not got.envelopes:
            if got.parent_incarnation != incarnation or got.settled_below > applied.through + 1:
                await run(child.apply_down, got.parent_incarnation, (), got.settled_below)
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
