"""The values that travel between neighbours."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

PROTOCOL_VERSION = 2  # 2: Push is a stream of batches (several in flight)


@dataclass(frozen=True)
class Envelope:
    seq: int  # position on the link it travels now (assigned by this hop's sender)
    origin: str
    origin_incarnation: int
    origin_seq: int
    kind: str
    target: str
    case_key: str
    priority: int
    payload: bytes
    created_at: str

    @property
    def identity(self) -> tuple[str, int, int]:
        return (self.origin, self.origin_incarnation, self.origin_seq)

    def on_link(self, seq: int) -> Envelope:
        """The same message, renumbered for the next hop."""
        return replace(self, seq=seq)

    def size(self) -> int:
        return len(self.payload) + 64


class Received(Protocol):
    """What a receiver reads of an arriving envelope: an ``Envelope``, or its wire form as
    parsed from a request (``sync_pb2.Envelope`` has the same fields), so a gRPC batch is
    stored straight from the request without building every envelope a second time."""

    @property
    def seq(self) -> int: ...
    @property
    def origin(self) -> str: ...
    @property
    def origin_incarnation(self) -> int: ...
    @property
    def origin_seq(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def case_key(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def created_at(self) -> str: ...
