"""The values that travel between neighbours."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

PROTOCOL_VERSION = 2  # 2: Push is a stream of batches (several in flight)

# The kind of the small envelope a sender sends in place of one it withholds (``withheld``):
# same link position and identity, a payload that says what was withheld and why.
WITHHELD = "withheld"
# A batch's bytes besides its envelopes: the PushRequest's own fields (sender, incarnation,
# settled_below) and gRPC's five-byte frame header, with room to spare.
BATCH_OVERHEAD = 64


def _varint(n: int) -> int:
    """Bytes of ``n`` as a protobuf varint (a negative int32 takes ten)."""
    if n < 0:
        return 10
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


def _text(value: str) -> int:
    return len(value.encode("utf-8", errors="surrogatepass"))


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
        """Bytes this envelope adds to a batch on the wire: its ``sync.v1.Envelope`` encoding
        as an element of the batch's repeated field (tag, length, message)."""
        n = wire_size(self)
        return n + (2 if n < 0x80 else 1 + _varint(n))


def wire_size(e: Envelope) -> int:
    """The length of ``e`` encoded as a ``govnet.v1.Envelope`` (proto3: fields at their default
    are not written; every field number is below 16, so each tag is one byte). Computed here,
    without the generated code, so the pure core can cut batches by what goes on the wire; a
    unit test pins it against the protobuf encoder. (Written out field by field: every
    envelope sent passes here once.)"""
    size = 0
    for number in (e.seq, e.origin_incarnation, e.origin_seq, e.priority):
        if number:
            size += 2 if 0 < number < 0x80 else 1 + _varint(number)
    for text in (e.origin, e.kind, e.target, e.case_key, e.created_at):
        if text:
            n = len(text) if text.isascii() else _text(text)
            size += n + (2 if n < 0x80 else 1 + _varint(n))
    n = len(e.payload)
    if n:
        size += n + (2 if n < 0x80 else 1 + _varint(n))
    return size


def batch_size(envelopes: Iterable[Envelope]) -> int:
    """A batch's bytes on the wire (its envelopes, plus ``BATCH_OVERHEAD`` for the rest)."""
    return BATCH_OVERHEAD + sum(e.size() for e in envelopes)


@dataclass(frozen=True)
class Withheld:
    """What a ``withheld`` marker says: the kind and size of the envelope the sender set aside
    in its own quarantine, and why it could not be sent."""

    kind: str
    size: int
    reason: str
    sender: str = field(default="")

    def encode(self) -> bytes:
        return json.dumps({"kind": self.kind, "size": self.size, "reason": self.reason, "sender": self.sender},
                          ensure_ascii=False, sort_keys=True).encode()

    @classmethod
    def decode(cls, payload: bytes) -> Withheld:
        try:
            raw = json.loads(payload)
            return cls(str(raw["kind"]), int(raw["size"]), str(raw["reason"]), str(raw.get("sender", "")))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"a withheld marker that cannot be read: {exc}") from None

    def describe(self) -> str:
        """The reason as the receiver's quarantine shows it."""
        by = f" {self.sender}" if self.sender else ""
        return f"withheld by the sender{by}: {self.kind} of {self.size:,} bytes: {self.reason}"


def marker(env: Envelope, reason: str, sender: str = "") -> Envelope:
    """The envelope sent in place of ``env``: same link position, identity, target, case key and
    priority (so the receiver's cursor moves past it and its quarantine names it), kind
    ``withheld``, and a payload of a few dozen bytes."""
    note = Withheld(env.kind, env.size(), reason, sender)
    return replace(env, kind=WITHHELD, payload=note.encode())


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
