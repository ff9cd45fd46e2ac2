"""What a receiver has applied of one link: everything through ``through``, plus ``above``.

Most of the time ``above`` is empty. It holds positions applied out of order, because
the sender lets urgent messages overtake bulk ones; as the gaps fill, ``through``
advances and ``above`` shrinks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cursor:
    through: int = 0
    above: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.through < 0 or any(s <= self.through for s in self.above):
            raise ValueError(f"inconsistent cursor: through {self.through}, above {sorted(self.above)}")

    def has(self, seq: int) -> bool:
        return seq <= self.through or seq in self.above

    def add(self, seqs: Iterable[int]) -> Cursor:
        above = set(self.above)
        above.update(s for s in seqs if s > self.through)
        through = self.through
        while through + 1 in above:
            through += 1
            above.discard(through)
        return Cursor(through, frozenset(above))

    def settled(self, below: int) -> Cursor:
        """This cursor with every position below ``below`` counted as applied: what a sender
        says it no longer holds (it deleted only what was acknowledged)."""
        return Cursor.of(max(self.through, below - 1), self.above)

    def covers(self, other: Cursor) -> bool:
        return self.through >= other.through and all(self.has(s) for s in other.above)

    @classmethod
    def of(cls, through: int, above: Iterable[int] = ()) -> Cursor:
        return cls(through).add(above)
