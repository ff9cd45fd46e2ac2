"""The seam between the sync core and whatever carries batches.

``Parent`` is what a parent node offers its children (the node implements it over its
store; blocking calls). ``Transport`` is how a child reaches its parent: the gRPC
transport in production, the in-memory one in tests and simulations. Both raise the
same errors, so the session and the driver cannot tell them apart.

A receiver that refuses a batch itself (too large for its message limit, or unparseable)
raises ``BatchRefused``; a busy one ``ParentBusy``; both are ``LinkDown``s to a caller that
does not tell them apart.

``settled_below`` (on a push, and on a pull's reply) is the sender's lowest position still
held on the link: everything below it was acknowledged and deleted. Only a receiver
restored from an older backup can be behind it; it then advances its cursor to it (see
``node.app.inbox``) instead of waiting forever for positions nobody holds any more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from govnet.sync.cursor import Cursor
from govnet.sync.digest import PeriodDigest
from govnet.sync.envelope import Envelope, Received


class LinkDown(Exception):
    """The exchange failed in a way that may pass (unreachable, timeout, lost answer)."""


class ParentBusy(LinkDown):
    def __init__(self, retry_after_s: float, message: str = "") -> None:
        super().__init__(message or f"parent busy; retry after {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class BatchRefused(LinkDown):
    """The receiver refused a batch itself — larger than its message limit, or unparseable —
    and the stream carrying it is gone. Sending the same batch again would fail the same
    way: the sender splits it, and withholds an envelope refused alone (``sync.uplink``)."""


class Refused(Exception):
    """The parent refuses this child (wrong id, level or protocol): configuration must change."""


@dataclass(frozen=True)
class Hello:
    node_id: str
    level: str
    protocol_version: int
    catalog_version: int
    incarnation: int
    catalog_releases: Mapping[str, int] = field(default_factory=dict)  # issuer -> version held


@dataclass(frozen=True)
class HelloReply:
    node_id: str
    level: str
    protocol_version: int
    incarnation: int
    catalog_version: int


@dataclass(frozen=True)
class PullReply:
    parent_incarnation: int
    envelopes: tuple[Envelope, ...]
    more: bool
    settled_below: int = 0  # the parent's lowest position still held on this link (0: not said)


class Parent(Protocol):
    def hello(self, hello: Hello) -> HelloReply: ...

    def push(self, sender: str, incarnation: int, envelopes: Sequence[Received], settled_below: int = 0) -> Cursor: ...

    def pull(self, child: str, child_incarnation: int, parent_incarnation: int, applied: Cursor,
             max_envelopes: int, max_bytes: int = 0) -> PullReply: ...

    def digest(self, child: str, periods: Sequence[PeriodDigest]) -> list[str]: ...


class PushStream(Protocol):
    """A child's batches to its parent, in order; acknowledgements come back in the same
    order, one per batch. Several batches may be sent before the first is acknowledged.
    Any error ends the stream: the batches without an acknowledgement are sent again
    (next exchange), and the parent's cursor drops what it had stored already."""

    async def send(self, envelopes: Sequence[Envelope]) -> None: ...

    async def acknowledgement(self) -> Cursor:
        """The parent's cursor once it stored the oldest batch not yet acknowledged."""
        ...

    async def close(self) -> None: ...


class Transport(Protocol):
    async def hello(self, hello: Hello) -> HelloReply: ...

    def open_push(self, sender: str, incarnation: int, settled_below: int = 0) -> PushStream: ...

    async def pull(self, child: str, child_incarnation: int, parent_incarnation: int, applied: Cursor,
                   max_envelopes: int, max_bytes: int = 0) -> PullReply:
        """``max_bytes``: the most the child takes in one reply (0: the parent's own limit);
        the parent withholds an envelope that alone exceeds it."""
        ...

    async def digest(self, child: str, periods: Sequence[PeriodDigest]) -> list[str]: ...

