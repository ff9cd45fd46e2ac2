"""Node ids and levels: the tree must be readable from the ids alone."""

from __future__ import annotations

import pytest

from govnet.federation.tree import (
    Level,
    NodeIdError,
    ancestor_at,
    ancestors,
    check_child,
    check_node_id,
    is_ancestor,
    is_parent,
    level_of,
    parent_id,
)

CITY, COUNTY, TOWNSHIP, VILLAGE = "371100", "371102", "371102001", "371102001201"


@pytest.mark.parametrize(
    ("level", "rank", "parent", "child"),
    [
        (Level.CITY, 0, None, Level.COUNTY),
        (Level.COUNTY, 1, Level.CITY, Level.TOWNSHIP),
        (Level.TOWNSHIP, 2, Level.COUNTY, Level.VILLAGE),
        (Level.VILLAGE, 3, Level.TOWNSHIP, None),
    ],
)
def test_level_order(level: Level, rank: int, parent: Level | None, child: Level | None) -> None:
    assert level.rank == rank
    assert level.parent() is parent
    assert level.child() is child


@pytest.mark.parametrize(
    ("text", "expected"),
    [("city", Level.CITY), (" County ", Level.COUNTY), ("TOWNSHIP", Level.TOWNSHIP), ("village", Level.VILLAGE)],
)
def test_level_parse(text: str, expected: Level) -> None:
    assert Level.parse(text) is expected


@pytest.mark.parametrize("text", ["x", "", "province", "市"])
def test_level_parse_rejects(text: str) -> None:
    with pytest.raises(NodeIdError) as info:
        Level.parse(text)
    assert str(info.value) == f"unknown level {text!r}: expected one of city, county, township, village"


@pytest.mark.parametrize(
    ("node_id", "level"),
    [
        (CITY, Level.CITY),
        ("110100", Level.CITY),
        (COUNTY, Level.COUNTY),
        ("370181", Level.COUNTY),
        (TOWNSHIP, Level.TOWNSHIP),
        (VILLAGE, Level.VILLAGE),
    ],
)
def test_level_of(node_id: str, level: Level) -> None:
    assert level_of(node_id) is level


@pytest.mark.parametrize(
    ("node_id", "fragment"),
    [
        ("37110", "has 5 digits"),
        ("3711020012", "has 10 digits"),
        ("", "expected only the digits"),
        ("37a100", "expected only the digits"),
        ("３７１１００", "expected only the digits"),  # full-width digits are not ids
        (" 371100", "expected only the digits"),
        ("370000", "370000 is a province code"),
        ("370000001", "370000 is a province code"),
        ("001100", "province"),
        ("371102000", "township part (digits 7-9) cannot be 000"),
        ("371102001000", "village part (digits 10-12) cannot be 000"),
        ("371100001", "371100 is a city"),
        ("371100001201", "371100 is a city"),
        ("371102000201", "township part"),
    ],
)
def test_level_of_rejects(node_id: str, fragment: str) -> None:
    with pytest.raises(NodeIdError) as info:
        level_of(node_id)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_check_node_id_accepts_matching_level() -> None:
    for node_id, level in [(CITY, Level.CITY), (COUNTY, Level.COUNTY), (TOWNSHIP, Level.TOWNSHIP), (VILLAGE, Level.VILLAGE)]:
        check_node_id(node_id, level)


@pytest.mark.parametrize(
    ("node_id", "level", "message"),
    [
        ("37110", Level.TOWNSHIP, "node id 37110 does not fit level township: a township id has 9 digits, like 371102001"),
        (COUNTY, Level.CITY, "node id 371102 does not fit level city: a city id has 6 digits ending in 00, like 371100 (371102 is a county)"),
        (CITY, Level.COUNTY, "node id 371100 does not fit level county: a county id has 6 digits not ending in 00, like 371102 (371100 is a city)"),
        (TOWNSHIP, Level.VILLAGE, "node id 371102001 does not fit level village: a village id has 12 digits, like 371102001201"),
    ],
)
def test_check_node_id_rejects(node_id: str, level: Level, message: str) -> None:
    with pytest.raises(NodeIdError) as info:
        check_node_id(node_id, level)
    assert str(info.value) == message


def test_check_node_id_right_length_but_malformed() -> None:
    with pytest.raises(NodeIdError, match="township part"):
        check_node_id("371102000", Level.TOWNSHIP)


@pytest.mark.parametrize(
    ("node_id", "parent"),
    [(CITY, None), (COUNTY, CITY), ("370181", "370100"), (TOWNSHIP, COUNTY), (VILLAGE, TOWNSHIP)],
)
def test_parent_id(node_id: str, parent: str | None) -> None:
    assert parent_id(node_id) == parent


@pytest.mark.parametrize(
    ("node_id", "chain"),
    [
        (CITY, []),
        (COUNTY, [CITY]),
        (TOWNSHIP, [COUNTY, CITY]),
        (VILLAGE, [TOWNSHIP, COUNTY, CITY]),
    ],
)
def test_ancestors_nearest_first(node_id: str, chain: list[str]) -> None:
    assert ancestors(node_id) == chain


@pytest.mark.parametrize(
    ("ancestor", "node_id", "expected"),
    [
        (CITY, VILLAGE, True),
        (COUNTY, VILLAGE, True),
        (TOWNSHIP, VILLAGE, True),
        (VILLAGE, VILLAGE, False),  # strict
        (CITY, CITY, False),
        (VILLAGE, CITY, False),  # wrong direction
        ("371200", VILLAGE, False),  # another city
        ("371103", TOWNSHIP, False),  # sibling county
    ],
)
def test_is_ancestor(ancestor: str, node_id: str, expected: bool) -> None:
    assert is_ancestor(ancestor, node_id) is expected


@pytest.mark.parametrize(
    ("parent", "child", "expected"),
    [
        (CITY, COUNTY, True),
        (COUNTY, TOWNSHIP, True),
        (TOWNSHIP, VILLAGE, True),
        (CITY, TOWNSHIP, False),  # grandparent is not parent
        (COUNTY, CITY, False),
        ("371103", "371103001", True),
        ("371103", TOWNSHIP, False),
    ],
)
def test_is_parent(parent: str, child: str, expected: bool) -> None:
    assert is_parent(parent, child) is expected


def test_relations_reject_malformed_ids() -> None:
    with pytest.raises(NodeIdError):
        is_ancestor("3711", VILLAGE)
    with pytest.raises(NodeIdError):
        is_parent(COUNTY, "371102000")


@pytest.mark.parametrize(
    ("node_id", "level", "expected"),
    [
        (VILLAGE, Level.VILLAGE, VILLAGE),
        (VILLAGE, Level.TOWNSHIP, TOWNSHIP),
        (VILLAGE, Level.COUNTY, COUNTY),
        (VILLAGE, Level.CITY, CITY),
        (COUNTY, Level.CITY, CITY),
        (CITY, Level.CITY, CITY),
    ],
)
def test_ancestor_at(node_id: str, level: Level, expected: str) -> None:
    assert ancestor_at(node_id, level) == expected


def test_ancestor_at_below_own_level() -> None:
    with pytest.raises(NodeIdError) as info:
        ancestor_at(COUNTY, Level.VILLAGE)
    assert str(info.value) == (
        "county 371102 has no village above it: a node's ancestors are at its own level or higher (city, county)"
    )


@pytest.mark.parametrize(("parent", "child"), [(CITY, COUNTY), (COUNTY, TOWNSHIP), (TOWNSHIP, VILLAGE)])
def test_check_child_accepts(parent: str, child: str) -> None:
    check_child(parent, child)


@pytest.mark.parametrize(
    ("parent", "child", "message"),
    [
        (CITY, "371202", "county 371202 is not a child of city 371100: a county's id starts with its city's first 4 digits (3711)"),
        (COUNTY, "371103001", "township 371103001 is not a child of county 371102: a township's id starts with its county's 6 digits (371102)"),
        (TOWNSHIP, "371102002201", "village 371102002201 is not a child of township 371102001: a village's id starts with its township's 9 digits (371102001)"),
        (CITY, TOWNSHIP, "township 371102001 cannot be a direct child of city 371100: a city's children are county nodes"),
        (TOWNSHIP, COUNTY, "county 371102 cannot be a direct child of township 371102001: a township's children are village nodes"),
        (VILLAGE, "371102001202", "village 371102001202 cannot be a child of village 371102001201: villages have no children"),
    ],
)
def test_check_child_rejects(parent: str, child: str, message: str) -> None:
    with pytest.raises(NodeIdError) as info:
        check_child(parent, child)
    assert str(info.value) == message
