"""Detecting silent divergence: per period, a count and an order-independent hash.

Two neighbours each compute digests over what both should hold (for a child and its
parent: the cases that originated in the child's subtree, with their versions). Equal
digests mean equal sets; a differing period is resynced, and only that period.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodDigest:
    period: str
    count: int
    hash: str


def digests(rows: Iterable[tuple[str, str, int]]) -> dict[str, PeriodDigest]:
    """``rows`` are (period, key, version); the result does not depend on their order."""
    by_period: dict[str, list[tuple[str, int]]] = {}
    for period, key, version in rows:
        by_period.setdefault(period, []).append((key, version))
    out = {}
    for period, members in by_period.items():
        h = hashlib.sha256()
        for key, version in sorted(members):
            h.update(f"{key}\x1f{version}\x1e".encode())
        out[period] = PeriodDigest(period, len(members), h.hexdigest()[:32])
    return out


def divergent(mine: Mapping[str, PeriodDigest], theirs: Mapping[str, PeriodDigest]) -> list[str]:
    return sorted(p for p in set(mine) | set(theirs) if mine.get(p) != theirs.get(p))
