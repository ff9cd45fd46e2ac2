"""The rollup merge and its totals: pure, no store, no network.

The merge must be a join-semilattice (highest version per key wins): applying rows in
any order, any number of times, gives the same state. Negative control: summing the
rows that arrive (what a naive "send increments" rollup does) breaks under a duplicate.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govnet.federation.rollup import (
    OWN,
    Report,
    RowKey,
    VersionedRow,
    child_toward,
    coverage,
    grand_total,
    merge,
    merge_reports,
    totals,
)

CITY, COUNTY, TOWN, VILLAGE = "371100", "371102", "371102001", "371102001201"
OTHER_TOWN, OTHER_VILLAGE = "371102002", "371102002201"
T0 = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
NAMES = ("received", "completed")

nodes = st.sampled_from([CITY, COUNTY, TOWN, VILLAGE, OTHER_TOWN, OTHER_VILLAGE])
keys = st.builds(RowKey, nodes, st.sampled_from(["2026-03-10", "2026-03-11"]), st.sampled_from(["SJ-0001", "MZ-0005"]),
                 st.sampled_from(["市场监督管理局", "民政局"]))


@st.composite
def histories(draw: st.DrawFn) -> list[VersionedRow]:
    """Rows as their nodes publish them: per key, versions grow and each version's counts are fixed."""
    out = []
    for key in draw(st.lists(keys, min_size=1, max_size=6, unique=True)):
        for version in sorted(draw(st.sets(st.integers(1, 30), min_size=1, max_size=4))):
            out.append(VersionedRow(key, version, {"received": version * 3 % 7, "completed": version % 3}))
    return out


def latest(rows: list[VersionedRow]) -> dict[RowKey, VersionedRow]:
    """What the merge must end in, computed the obvious way."""
    best: dict[RowKey, VersionedRow] = {}
    for r in rows:
        if r.key not in best or r.version > best[r.key].version:
            best[r.key] = r
    return best


@settings(max_examples=150, deadline=None)
@given(histories(), st.randoms(use_true_random=False), st.data())
def test_merge_is_order_independent_and_idempotent(rows: list[VersionedRow], rnd, data) -> None:
    delivered = list(rows)
    # Duplicates, replays of old versions, any order, delivered in several batches.
    delivered += data.draw(st.lists(st.sampled_from(rows), max_size=10))
    rnd.shuffle(delivered)
    cut = data.draw(st.integers(0, len(delivered)))
    state = merge(merge({}, delivered[:cut]), delivered[cut:])
    assert state == latest(rows)
    assert merge(state, delivered) == state  # applying everything again changes nothing


def test_an_older_version_arriving_late_does_not_overwrite() -> None:
    key = RowKey(VILLAGE, "2026-03-10", "MZ-0005", "民政局")
    new, old = VersionedRow(key, 5, {"received": 4}), VersionedRow(key, 2, {"received": 1})
    assert merge(merge({}, [new]), [old]) == {key: new}
    assert merge(merge({}, [old]), [new]) == {key: new}


def test_naive_summing_of_deliveries_would_double_count() -> None:
    """Negative control: the same duplicate that the merge absorbs breaks a sum of deliveries."""
    key = RowKey(VILLAGE, "2026-03-10", "MZ-0005", "民政局")
    row = VersionedRow(key, 1, {"received": 3})
    delivered = [row, row]
    summed = sum(r.counters["received"] for r in delivered)
    merged = totals(merge({}, delivered).values(), "node", CITY, NAMES)
    assert merged[VILLAGE]["received"] == 3 != summed


def test_reports_keep_the_highest_version() -> None:
    a = Report(VILLAGE, 3, T0)
    b = Report(VILLAGE, 7, T0 + timedelta(minutes=5))
    assert merge_reports(merge_reports({}, [b]), [a]) == {VILLAGE: b}


ROWS = [
    VersionedRow(RowKey(CITY, "2026-03-10", "HB-0001", "生态环境局"), 1, {"received": 1}),
    VersionedRow(RowKey(COUNTY, "2026-03-10", "SJ-0001", "市场监督管理局"), 4, {"received": 2, "completed": 1}),
    VersionedRow(RowKey(TOWN, "2026-03-11", "MZ-0001", "民政局"), 2, {"received": 5}),
    VersionedRow(RowKey(VILLAGE, "2026-03-11", "MZ-0005", "民政局"), 9, {"received": 7, "completed": 2}),
    VersionedRow(RowKey(OTHER_VILLAGE, "2026-03-12", "MZ-0005", "民政局"), 1, {"received": 1}),
]


@pytest.mark.parametrize("by, root, expected", [
    ("node", CITY, {CITY: 1, COUNTY: 2, TOWN: 5, VILLAGE: 7, OTHER_VILLAGE: 1}),
    ("level", CITY, {"city": 1, "county": 2, "township": 5, "village": 8}),
    ("child", CITY, {OWN: 1, COUNTY: 15}),
    ("child", COUNTY, {OWN: 2, TOWN: 12, OTHER_TOWN: 1}),
    ("child", TOWN, {OWN: 5, VILLAGE: 7}),
    ("item", COUNTY, {"SJ-0001": 2, "MZ-0001": 5, "MZ-0005": 8}),
    ("department", TOWN, {"民政局": 12}),
    ("day", CITY, {"2026-03-10": 3, "2026-03-11": 12, "2026-03-12": 1}),
])
def test_totals_group_the_subtree(by: str, root: str, expected: dict[str, int]) -> None:
    got = totals(ROWS, by, root, NAMES)
    assert {g: c["received"] for g, c in got.items()} == expected
    assert grand_total(got, NAMES)["received"] == sum(expected.values())


def test_totals_keep_to_the_days_asked() -> None:
    got = totals(ROWS, "day", CITY, NAMES, first_day="2026-03-11", last_day="2026-03-11")
    assert got == {"2026-03-11": {"received": 12, "completed": 2}}
    assert totals(ROWS, "node", CITY, NAMES, first_day="2026-03-12") == {OTHER_VILLAGE: {"received": 1, "completed": 0}}


def test_a_grouping_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot group by 'window'.*level, child, node"):
        totals(ROWS, "window", CITY, NAMES)


def test_child_toward_walks_up_to_the_root() -> None:
    assert child_toward(CITY, VILLAGE) == COUNTY
    assert child_toward(COUNTY, VILLAGE) == TOWN
    assert child_toward(TOWN, TOWN) == OWN
    with pytest.raises(ValueError, match="not under"):
        child_toward(OTHER_TOWN, VILLAGE)


def test_coverage_names_who_reported_up_to_when_and_who_never_did() -> None:
    reports = [Report(COUNTY, 4, T0, (TOWN, OTHER_TOWN)), Report(VILLAGE, 9, T0 - timedelta(hours=2)),
               Report("371103", 1, T0)]  # another county: not under 371102
    cov = coverage(COUNTY, reports, {TOWN: T0, OTHER_TOWN: None})
    assert cov.known == (COUNTY, TOWN, VILLAGE, OTHER_TOWN)
    assert [r.node for r in cov.reports] == [COUNTY, VILLAGE] and cov.reported == 2
    assert cov.missing == (TOWN, OTHER_TOWN)
    assert cov.oldest == reports[1]
    assert [(c.child, c.last_heard) for c in cov.children] == [(TOWN, T0), (OTHER_TOWN, None)]


def test_coverage_of_a_node_nobody_reported_to() -> None:
    cov = coverage(CITY, [], {})
    assert cov.known == (CITY,) and cov.missing == (CITY,) and cov.oldest is None
