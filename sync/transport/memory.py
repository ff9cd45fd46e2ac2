"""An in-memory transport: a real ``Transport`` that calls the parent directly, with faults.

For tests and simulations. A ``Faults`` plan, driven by a seeded random generator,
can drop a request before the parent sees it, lose the answer after the parent applied
it, duplicate a call, hold a copy back and deliver it late (so it arrives out of order,
after newer ones), and cut the link entirely (partition). Delays are modelled as late
delivery, so a simulation needs no clock at all. ``receive_limit`` plays a receiver's
message limit: a batch (or a pull's reply) larger on the wire is refused as gRPC refuses
it (``BatchRefused``, the stream gone), before the parent sees it.

Identity: like a TLS connection, the transport carries who is at its end (``identity``:
the node its certificate would name; None: whoever the requests claim, as a simulation's
honest child). A request that claims another node is refused before the parent sees it,
as the gRPC servicer refuses it (``check_claim``), so a simulation can play an impostor.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from govnet.sync.admission import Busy
from govnet.sync.cursor import Cursor
from govnet.sync.digest import PeriodDigest
from govnet.sync.envelope import Envelope, batch_size
from govnet.sync.transport.base import (
    BatchRefused,
    Hello,
    HelloReply,
    LinkDown,
    Parent,
    ParentBusy,
    PullReply,
    Refused,
)

R = TypeVar("R")


@dataclass
class Faults:
    drop_request: float = 0.0
    drop_reply: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0  # chance a call's copy is held back and delivered after later calls
    partitioned: bool = False
    receive_limit: int = 0  # the receiver's message limit in bytes (0: none)


@dataclass
class MemoryTransport:
    parent: Parent
    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    held: list[Callable[[], Any]] = field(default_factory=list)
    calls: int = 0
    identity: str | None = None  # the node at this end, as its certificate names it (None: as claimed)

    def _claims(self, claimed: str) -> None:
        if self.identity is not None and claimed != self.identity:
            raise Refused(f"the certificate names node {self.identity}, but the request claims to be {claimed}")

    def _deliver_late(self) -> None:
        """Deliver held-back copies now: the parent sees them after newer calls."""
        while self.held and self.rng.random() < 0.5:
            late = self.held.pop(self.rng.randrange(len(self.held)))
            try:
                late()
            except Exception:
                pass  # a late copy's answer goes nowhere, and so do its errors

    def _call(self, fn: Callable[..., R], *args: Any) -> R:
        self.calls += 1
        f = self.faults
        if f.partitioned:
            raise LinkDown("partitioned")
        self._deliver_late()
        if self.rng.random() < f.drop_request:
            raise LinkDown("request lost")
        if self.rng.random() < f.delay:
            self.held.append(lambda: fn(*args))
        try:
            result = fn(*args)
            if self.rng.random() < f.duplicate:
                result = fn(*args)
        except Busy as exc:
            raise ParentBusy(exc.retry_after_s) from None
        if self.rng.random() < f.drop_reply:
            raise LinkDown("reply lost")
        return result

    def flush_held(self) -> None:
        while self.held:
            late = self.held.pop(0)
            try:
                late()
            except Exception:
                pass

    async def hello(self, hello: Hello) -> HelloReply:
        self._claims(hello.node_id)
        return self._call(self.parent.hello, hello)

    def open_push(self, sender: str, incarnation: int, settled_below: int = 0) -> MemoryPushStream:
        return MemoryPushStream(self, sender, incarnation, settled_below)

    def push(self, sender: str, incarnation: int, envelopes: Sequence[Envelope], settled_below: int = 0) -> Cursor:
        """One batch of a stream, delivered at once, with this transport's faults."""
        self._claims(sender)
        limit = self.faults.receive_limit
        if limit and batch_size(envelopes) > limit:
            self.calls += 1
            raise BatchRefused(f"RESOURCE_EXHAUSTED: received message larger than max ({batch_size(envelopes)} "
                               f"vs. {limit})")
        return self._call(self.parent.push, sender, incarnation, tuple(envelopes), settled_below)

    async def pull(self, child: str, child_incarnation: int, parent_incarnation: int, applied: Cursor,
                   max_envelopes: int, max_bytes: int = 0) -> PullReply:
        self._claims(child)
        reply = self._call(self.parent.pull, child, child_incarnation, parent_incarnation, applied, max_envelopes,
                           max_bytes)
        limit = self.faults.receive_limit
        if limit and batch_size(reply.envelopes) > limit:
            raise BatchRefused(f"RESOURCE_EXHAUSTED: received message larger than max "
                               f"({batch_size(reply.envelopes)} vs. {limit})")
        return reply

    async def digest(self, child: str, periods: Sequence[PeriodDigest]) -> list[str]:
        self._claims(child)
        return self._call(self.parent.digest, child, tuple(periods))


class MemoryPushStream:
    """A push stream over ``MemoryTransport``: each batch reaches the parent as it is sent
    (in order, with the transport's faults); its answer waits for ``acknowledgement``. A
    fault ends the stream as it ends a real one: its error comes with the acknowledgement
    it cost, and nothing sent after it arrives."""

    def __init__(self, transport: MemoryTransport, sender: str, incarnation: int, settled_below: int) -> None:
        self.transport = transport
        self.sender = sender
        self.incarnation = incarnation
        self.settled_below = settled_below
        self._answers: deque[Cursor | Exception] = deque()
        self._broken = False

    async def send(self, envelopes: Sequence[Envelope]) -> None:
        if self._broken:
            self._answers.append(LinkDown("stream ended"))
            return
        try:
            self._answers.append(self.transport.push(self.sender, self.incarnation, envelopes, self.settled_below))
        except (LinkDown, Refused) as exc:
            self._broken = True
            self._answers.append(exc)

    async def acknowledgement(self) -> Cursor:
        if not self._answers:
            raise RuntimeError("no batch waits for an acknowledgement")
        answer = self._answers.popleft()
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def close(self) -> None:
        self._answers.clear()
