"""The supervision views of the statistics, pure (issue #13, point 9): per-department figures
roll up exactly like the others, a drill-down into a node below gives exactly that node's
subtree, and ranking orders groups by any rate or counter with stable ties and unknown rates
last."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govnet.federation.rollup import OWN, RowKey, VersionedRow, grand_total, merge, totals
from govnet.federation.tree import in_subtree
from govnet.node.domain.statistics import COUNTERS, RANKINGS, RATES, measure, rank

CITY, COUNTY, OTHER_COUNTY = "371100", "371102", "371103"
TOWN, VILLAGE, OTHER_TOWN = "371102001", "371102001201", "371103001"
NODES = [CITY, COUNTY, OTHER_COUNTY, TOWN, VILLAGE, OTHER_TOWN]
DEPARTMENTS = ["市场监督管理局", "民政局", "公安局", ""]  # "": a complaint about no particular window

keys = st.builds(RowKey, st.sampled_from(NODES), st.sampled_from(["2026-03-10", "2026-03-11", "2026-03-12"]),
                 st.sampled_from(["SJ-0001", "MZ-0005", "GA-0002"]), st.sampled_from(DEPARTMENTS))
counts = st.fixed_dictionaries({c: st.integers(0, 50) for c in COUNTERS})


@st.composite
def held_rows(draw: st.DrawFn) -> list[VersionedRow]:
    """What a city holds after merging its subtree's rows (one per key, any versions, in any order)."""
    rows = [VersionedRow(k, draw(st.integers(1, 9)), draw(counts))
            for k in draw(st.lists(keys, min_size=0, max_size=25, unique=True))]
    return list(merge({}, draw(st.permutations(rows))).values())


@settings(max_examples=200, deadline=None)
@given(held_rows(), st.sampled_from(["", "2026-03-11"]), st.sampled_from(["", "2026-03-11"]))
def test_department_sums_equal_the_totals_of_every_other_grouping(rows, first, last) -> None:
    by_department = totals(rows, "department", CITY, COUNTERS, first, last)
    whole = grand_total(by_department, COUNTERS)
    for by in ("node", "item", "day", "child", "level"):
        assert grand_total(totals(rows, by, CITY, COUNTERS, first, last), COUNTERS) == whole, by
    # Each department's figure is exactly the sum of its own rows, nothing else.
    for department, sums in by_department.items():
        mine = [r for r in rows if r.key.department == department and (not first or r.key.day >= first)
                and (not last or r.key.day <= last)]
        assert sums == {c: sum(r.counters[c] for r in mine) for c in COUNTERS}


@settings(max_examples=200, deadline=None)
@given(held_rows(), st.sampled_from([COUNTY, OTHER_COUNTY, TOWN, VILLAGE]))
def test_drilling_down_gives_exactly_the_subtree_and_its_departments(rows, root) -> None:
    below = totals(rows, "child", root, COUNTERS)
    expected = [r for r in rows if in_subtree(r.key.node, root)]
    assert grand_total(below, COUNTERS) == {c: sum(r.counters[c] for r in expected) for c in COUNTERS}
    assert set(below) <= {OWN, *(n for n in NODES if n != root and in_subtree(n, root) and len(n) == len(root) + 3)}
    assert grand_total(totals(rows, "department", root, COUNTERS), COUNTERS) == grand_total(below, COUNTERS)
    # The city's figure of that child is the drill-down's total.
    if root in (COUNTY, OTHER_COUNTY):
        at_city = totals(rows, "child", CITY, COUNTERS)
        assert at_city.get(root, dict.fromkeys(COUNTERS, 0)) == grand_total(below, COUNTERS)


def group(completed: int = 0, on_time: int = 0, accepted: int = 0, complaints: int = 0) -> dict[str, int]:
    return {"completed": completed, "on_time": on_time, "accepted": accepted, "complaints": complaints}


GROUPS = {
    "371102": group(completed=10, on_time=9),  # 90 %
    "371103": group(completed=4, on_time=2, complaints=3),  # 50 %
    "371104": group(accepted=2),  # nothing completed: on-time rate unknown
    "371105": group(completed=2, on_time=1),  # 50 %, ties with 371103
    "371106": group(completed=5, on_time=5, complaints=1),  # 100 %
}


def test_rank_by_on_time_highest_first_ties_in_key_order_unknown_last() -> None:
    assert rank(GROUPS, "on_time") == ["371106", "371102", "371103", "371105", "371104"]


def test_rank_ascending_keeps_ties_in_key_order_and_unknown_still_last() -> None:
    assert rank(GROUPS, "on_time", descending=False) == ["371103", "371105", "371102", "371106", "371104"]


def test_rank_by_a_counter() -> None:
    assert rank(GROUPS, "complaints") == ["371103", "371106", "371102", "371104", "371105"]
    assert rank(GROUPS, "complaints", descending=False) == ["371102", "371104", "371105", "371106", "371103"]


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(NODES), counts, max_size=6), st.sampled_from(RANKINGS), st.booleans())
def test_rank_is_an_ordering_of_every_group(groups, name, descending) -> None:
    ordered = rank(groups, name, descending)
    assert sorted(ordered) == sorted(groups)
    values = [measure(groups[k], name) for k in ordered]
    known = [v for v in values if v is not None]
    assert values[:len(known)] == known  # the unknown ones all at the end
    assert known == sorted(known, reverse=descending)


def test_every_rate_can_be_ranked_and_a_name_that_is_neither_is_refused() -> None:
    assert set(RATES) <= set(RANKINGS) and set(COUNTERS) <= set(RANKINGS)
    with pytest.raises(ValueError, match="cannot rank by 'speed'"):
        rank(GROUPS, "speed")
