"""Node ids and levels of the service tree.

Every node is named by its Chinese administrative division code, and those codes
already nest: a county's code begins with its city's 4 digits, a township's code
extends its county's 6, a village's extends its township's 9. So the level of a
node and the id of its parent can be read off the id itself. That lets any node
place any other node in the tree (route a case, track a receipt, check that a
registering child really belongs under it) without asking anyone, which matters
for village points that work offline for days.

    city      371100        6 digits, ending in 00
    county    371102        6 digits, not ending in 00; first 4 are the city's
    township  371102001     9 digits; first 6 are the county's
    village   371102001201  12 digits; first 9 are the township's

The functions here validate ids strictly and raise NodeIdError with a message
an operator can act on: a malformed id in configuration or on the wire is a
mistake to fix, never something to guess around.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache


class NodeIdError(ValueError):
    """A node id or level is malformed, or does not fit where it was used."""


class Level(StrEnum):
    """The four tiers of the network, top first."""

    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"

    @property
    def rank(self) -> int:
        """Depth in the tree: city 0, county 1, township 2, village 3."""
        return _ORDER.index(self)

    @property
    def id_length(self) -> int:
        """How many digits an id at this level has."""
        return _ID_LENGTH[self]

    def parent(self) -> Level | None:
        """The level directly above, or None for the city (the root)."""
        return _ORDER[self.rank - 1] if self.rank > 0 else None

    def child(self) -> Level | None:
        """The level directly below, or None for the village (a leaf)."""
        return _ORDER[self.rank + 1] if self.rank + 1 < len(_ORDER) else None

    @classmethod
    def parse(cls, text: str) -> Level:
        """Read a level name from configuration or a command line.

        Case and surrounding spaces are forgiven because people type these;
        anything else is an error rather than a guess.
        """
        if isinstance(text, str):
            try:
                return cls(text.strip().lower())
            except ValueError:
                pass
        names = ", ".join(level.value for level in _ORDER)
        raise NodeIdError(f"unknown level {text!r}: expected one of {names}")


# Top-down order; rank, parent() and child() all derive from it.
_ORDER: tuple[Level, ...] = (Level.CITY, Level.COUNTY, Level.TOWNSHIP, Level.VILLAGE)

_ID_LENGTH: dict[Level, int] = {
    Level.CITY: 6,
    Level.COUNTY: 6,
    Level.TOWNSHIP: 9,
    Level.VILLAGE: 12,
}

# What a correct id looks like at each level, for the tail of error messages.
_SHAPE: dict[Level, str] = {
    Level.CITY: "a city id has 6 digits ending in 00, like 371100",
    Level.COUNTY: "a county id has 6 digits not ending in 00, like 371102",
    Level.TOWNSHIP: "a township id has 9 digits, like 371102001",
    Level.VILLAGE: "a village id has 12 digits, like 371102001201",
}


def _show(node_id: object) -> str:
    """Render an id for a message: bare when it is printable text without
    spaces, quoted otherwise so empty strings and stray spaces stay visible."""
    if isinstance(node_id, str) and node_id and node_id.isprintable() and " " not in node_id:
        return node_id
    return repr(node_id)


def _segment_problem(node_id: str) -> str | None:
    """What is wrong with the segments of a 6/9/12-digit id, or None.

    Each segment is checked against the whole id, so the message names the
    id the operator actually typed rather than some prefix of it.
    """
    if node_id[:2] == "00":
        return "its first two digits (the province) cannot be 00"
    if node_id[2:4] == "00":
        return f"its 3rd-4th digits (the city) cannot be 00; {node_id[:6]} is a province code"
    if len(node_id) > 6 and node_id[4:6] == "00":
        return (
            f"a township or village id starts with its county's 6 digits, "
            f"but {node_id[:6]} is a city (county ids do not end in 00)"
        )
    if len(node_id) > 6 and node_id[6:9] == "000":
        return "the township part (digits 7-9) cannot be 000"
    if len(node_id) > 9 and node_id[9:12] == "000":
        return "the village part (digits 10-12) cannot be 000"
    return None


def level_of(node_id: str) -> Level:
    """The level of a well-formed node id; NodeIdError if it is malformed.

    Besides length and digits, zero segments are rejected: 370000 is a
    province, 371102000 and 371102001000 name no township or village, and a
    township under 371100 would hang directly off a city, which this tree
    does not allow.
    """
    shown = _show(node_id)
    if not isinstance(node_id, str) or not (node_id.isascii() and node_id.isdigit()):
        raise NodeIdError(
            f"node id {shown} is malformed: expected only the digits 0-9 "
            "(6 for a city or county, 9 for a township, 12 for a village)"
        )
    length = len(node_id)
    if length not in (6, 9, 12):
        raise NodeIdError(
            f"node id {shown} is malformed: it has {length} digits; "
            "expected 6 (city or county), 9 (township) or 12 (village)"
        )
    problem = _segment_problem(node_id)
    if problem is not None:
        raise NodeIdError(f"node id {shown} is malformed: {problem}")
    if length == 6:
        return Level.CITY if node_id.endswith("00") else Level.COUNTY
    return Level.TOWNSHIP if length == 9 else Level.VILLAGE


def check_node_id(node_id: str, level: Level) -> None:
    """Raise NodeIdError unless node_id is a well-formed id at `level`.

    Used where the level is stated separately (configuration, registration)
    and the two must agree.
    """
    shown = _show(node_id)
    if isinstance(node_id, str) and len(node_id) != level.id_length:
        raise NodeIdError(f"node id {shown} does not fit level {level}: {_SHAPE[level]}")
    actual = level_of(node_id)
    if actual is not level:
        raise NodeIdError(
            f"node id {shown} does not fit level {level}: {_SHAPE[level]} ({shown} is a {actual})"
        )


def parent_id(node_id: str) -> str | None:
    """The id of the node's parent, or None for a city."""
    level = level_of(node_id)
    if level is Level.CITY:
        return None
    if level is Level.COUNTY:
        return node_id[:4] + "00"
    # Townships and villages extend their parent's id by three digits.
    return node_id[:-3]


def ancestors(node_id: str) -> list[str]:
    """All ancestors of a node, nearest first, so the city comes last."""
    chain: list[str] = []
    current = parent_id(node_id)
    while current is not None:
        chain.append(current)
        current = parent_id(current)
    return chain


@lru_cache(maxsize=65536)
def lineage(node_id: str) -> tuple[str, ...] | None:
    """The node and its ancestors, nearest first (the city last), or None for a malformed id
    (cached: asked for every envelope and every statistics row)."""
    try:
        return (node_id, *ancestors(node_id))
    except NodeIdError:
        return None


def in_subtree(node_id: str, root: str) -> bool:
    """Whether ``node_id`` is ``root`` or lies below it (False for a malformed ``node_id``: an id
    that came from outside is in nobody's subtree)."""
    if node_id == root:
        return True
    chain = lineage(node_id)
    return chain is not None and root in chain


def is_ancestor(ancestor: str, node_id: str) -> bool:
    """True when `ancestor` is strictly above `node_id` on its path to the city."""
    level_of(ancestor)  # a malformed id is an error, not merely "not an ancestor"
    return ancestor in ancestors(node_id)


def is_parent(parent: str, child: str) -> bool:
    """True when `parent` is the direct parent of `child`."""
    level_of(parent)
    return parent_id(child) == parent


def ancestor_at(node_id: str, level: Level) -> str:
    """The node itself if it is at `level`, otherwise its ancestor at that level.

    Asking for a level below the node's own is an error: a county has many
    townships, so "the township of a county" means nothing.
    """
    own = level_of(node_id)
    if level.rank > own.rank:
        allowed = ", ".join(lvl.value for lvl in _ORDER[: own.rank + 1])
        raise NodeIdError(
            f"{own} {node_id} has no {level} above it: "
            f"a node's ancestors are at its own level or higher ({allowed})"
        )
    current = node_id
    for _ in range(own.rank - level.rank):
        parent = parent_id(current)
        assert parent is not None  # guaranteed: we stop before passing the city
        current = parent
    return current


def check_child(parent: str, child: str) -> None:
    """Raise NodeIdError explaining why `child` is not a direct child of `parent`.

    Used when a node registers under a parent, so the message names the rule
    that was broken rather than only saying no.
    """
    parent_level = level_of(parent)
    child_level = level_of(child)
    expected = parent_level.child()
    if expected is None:
        raise NodeIdError(
            f"{child_level} {child} cannot be a child of village {parent}: villages have no children"
        )
    if child_level is not expected:
        raise NodeIdError(
            f"{child_level} {child} cannot be a direct child of {parent_level} {parent}: "
            f"a {parent_level}'s children are {expected} nodes"
        )
    if parent_id(child) != parent:
        if parent_level is Level.CITY:
            rule = f"a county's id starts with its city's first 4 digits ({parent[:4]})"
        else:
            rule = f"a {expected}'s id starts with its {parent_level}'s {len(parent)} digits ({parent})"
        raise NodeIdError(
            f"{expected} {child} is not a child of {parent_level} {parent}: {rule}"
        )
