"""Routing in the tree: where a message goes next, and which node decides a case.

Pure functions over node ids (division codes carry the tree, see ``federation.tree``).
Routing takes the level with authority as an input; it knows nothing of the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from govnet.federation.tree import Level, ancestor_at, is_ancestor, level_of, parent_id


class Direction(StrEnum):
    HERE = "here"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class Hop:
    direction: Direction
    neighbour: str  # "" when HERE


def next_hop(here: str, target: str) -> Hop:
    """The neighbour a message for ``target`` goes to from ``here``: down toward a
    descendant, otherwise up to the parent (the common ancestor is on that way)."""
    if target == here:
        return Hop(Direction.HERE, "")
    if is_ancestor(here, target):
        child_level = Level(level_of(here)).child()
        assert child_level is not None
        return Hop(Direction.DOWN, ancestor_at(target, child_level))
    parent = parent_id(here)
    if parent is None:
        raise ValueError(f"node {target} is not in the tree under {here}")
    return Hop(Direction.UP, parent)


def deciding_node(accepting: str, authority: Level) -> str:
    """The nearest node at the level with authority: the accepting node or an ancestor."""
    return ancestor_at(accepting, authority)


def root_of(node_id: str) -> str:
    return ancestor_at(node_id, Level.CITY)
