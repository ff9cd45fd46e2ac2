"""The values that travel between neighbours."""

from __future__ import annotations

from dataclasses import dataclass, replace

PROTOCOL_VERSION = 1


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

    def on_link(self, seq: int) -> "Envelope":
        """The same message, renumbered for the next hop."""
        return replace(self, seq=seq)

    def size(self) -> int:
        return len(self.payload) + 64
