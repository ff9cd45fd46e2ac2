"""Exact statistics up the tree: per-origin rows whose version only grows (ARCHITECTURE rule 6).

What travels. Each node counts only the facts it originated and publishes them as
*rows*, one per bucket ``(node, day, item, department)``, each carrying the version of
the node's report that last changed it. Versions come from one counter per node that
only grows. Next to its rows a node publishes a *report*: its latest version, the
instant its counts are complete up to (``as_of``) and the children registered with it.

How rows merge. An ancestor keeps, per key, the row with the highest version and
ignores the others. That merge is commutative, associative and idempotent, so a row
delivered twice, rows delivered out of order, an old row arriving after a newer one,
or a whole subtree arriving days late after an outage all end in the same state. No
increment is ever sent and nothing is summed on the way up: totals are computed when
someone asks, over the rows held (``totals``).

Coverage. A total is only as good as the reports under it, so every answer carries
``Coverage``: which nodes of the subtree are known (the node itself, every reporter,
and every child a reporter or the node itself has registered), which of them have
reported and up to when, which have never reported, and when each direct child was
last heard from. Numbers are never silently stale.

This module knows ids, levels and versions, not what the counters mean: they are
opaque names with integer values (``node.domain.statistics`` defines them).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from govnet.federation.tree import ancestors, in_subtree, level_of, parent_id

GROUPINGS = ("level", "child", "node", "item", "department", "day")
OWN = "(own)"  # the ``child`` group of the queried node's own rows


@dataclass(frozen=True, order=True)
class RowKey:
    node: str
    day: str  # ISO date, local to the network (China)
    item_code: str
    department: str


@dataclass(frozen=True)
class VersionedRow:
    key: RowKey
    version: int
    counters: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """A node's latest word: counts complete up to ``as_of``; ``children`` registered with it."""

    node: str
    version: int
    as_of: datetime
    children: tuple[str, ...] = ()


def supersedes(held_version: int | None, incoming_version: int) -> bool:
    """Whether an incoming row or report replaces what is held (highest version wins)."""
    return held_version is None or incoming_version > held_version


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Versioned)


def _take_newer(held: Mapping[K, V], incoming: Iterable[V], key: Callable[[V], K]) -> dict[K, V]:
    """``held`` with every incoming value that supersedes the one held under its key."""
    out = dict(held)
    for value in incoming:
        current = out.get(key(value))
        if supersedes(current.version if current else None, value.version):
            out[key(value)] = value
    return out


def merge(held: Mapping[RowKey, VersionedRow], incoming: Iterable[VersionedRow]) -> dict[RowKey, VersionedRow]:
    """``held`` with every newer incoming row taken in; the merge of a semilattice."""
    return _take_newer(held, incoming, lambda row: row.key)


def merge_reports(held: Mapping[str, Report], incoming: Iterable[Report]) -> dict[str, Report]:
    """``held`` with every newer incoming report taken in, per node (the same merge as rows)."""
    return _take_newer(held, incoming, lambda report: report.node)


def child_toward(root: str, node: str) -> str:
    """The direct child of ``root`` on the path down to ``node`` (``OWN`` for ``root`` itself)."""
    if node == root:
        return OWN
    current = node
    while parent_id(current) != root:
        up = parent_id(current)
        if up is None:
            raise ValueError(f"node {node} is not under {root}")
        current = up
    return current


def group_of(key: RowKey, by: str, root: str) -> str:
    if by == "level":
        return level_of(key.node).value
    if by == "child":
        return child_toward(root, key.node)
    if by == "node":
        return key.node
    if by == "item":
        return key.item_code
    if by == "department":
        return key.department
    if by == "day":
        return key.day
    raise ValueError(f"cannot group by {by!r}; choose one of {', '.join(GROUPINGS)}")


def totals(rows: Iterable[VersionedRow], by: str, root: str, names: Sequence[str],
           first_day: str = "", last_day: str = "") -> dict[str, dict[str, int]]:
    """Sums of every counter in ``names`` per group, over the rows of ``root``'s subtree
    whose day lies in ``[first_day, last_day]`` (either bound may be empty: open)."""
    if by not in GROUPINGS:
        raise ValueError(f"cannot group by {by!r}; choose one of {', '.join(GROUPINGS)}")
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        k = row.key
        if (first_day and k.day < first_day) or (last_day and k.day > last_day) or not in_subtree(k.node, root):
            continue
        sums = out.setdefault(group_of(k, by, root), dict.fromkeys(names, 0))
        for name in names:
            sums[name] += int(row.counters.get(name, 0))
    return dict(sorted(out.items()))


def grand_total(groups: Mapping[str, Mapping[str, int]], names: Sequence[str]) -> dict[str, int]:
    return {name: sum(int(g.get(name, 0)) for g in groups.values()) for name in names}


@dataclass(frozen=True)
class ChildHeard:
    child: str
    last_heard: datetime | None  # None: registered but never heard since (or never registered)


@dataclass(frozen=True)
class Coverage:
    root: str
    known: tuple[str, ...]  # nodes of the subtree this node knows exist
    reports: tuple[Report, ...]  # the latest report of every node that has reported, by node id
    missing: tuple[str, ...]  # known but never reported
    children: tuple[ChildHeard, ...]  # direct children and when each was last heard from

    @property
    def reported(self) -> int:
        return len(self.reports)

    @property
    def oldest(self) -> Report | None:
        """The report furthest behind: the totals are complete for every node up to its ``as_of``."""
        return min(self.reports, key=lambda r: (r.as_of, r.node), default=None)


def coverage(root: str, reports: Iterable[Report], children_heard: Mapping[str, datetime | None]) -> Coverage:
    """What the totals at ``root`` cover. ``children_heard``: the children registered at
    ``root`` with the time each was last heard from (its last hello)."""
    mine = {r.node: r for r in reports if in_subtree(r.node, root)}
    known = {root, *children_heard}
    for r in mine.values():
        # A reporter's own path up to ``root`` exists too, even if those nodes are quiet.
        known.update(n for n in (r.node, *ancestors(r.node)) if in_subtree(n, root))
        known.update(c for c in r.children if in_subtree(c, root))
    return Coverage(
        root=root,
        known=tuple(sorted(known)),
        reports=tuple(mine[n] for n in sorted(mine)),
        missing=tuple(sorted(known - set(mine))),
        children=tuple(ChildHeard(c, children_heard[c]) for c in sorted(children_heard)),
    )
