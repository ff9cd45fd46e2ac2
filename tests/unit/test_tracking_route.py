"""Which node asks up the tree about a receipt it does not know (federation.tracking), pure."""

from __future__ import annotations

import pytest

from govnet.federation.tracking import MAX_HOPS, asks_parent

CITY, COUNTY, TOWN, VILLAGE = "371100", "371102", "371102001", "371102001201"
SIBLING, OTHER_TOWN, OTHER_COUNTY = "371102001202", "371102002", "371103"


@pytest.mark.parametrize(("here", "origin", "hops", "asks"), [
    (SIBLING, VILLAGE, 0, True),  # a neighbouring village knows nothing: ask the township
    (OTHER_TOWN, VILLAGE, 1, True),
    (OTHER_COUNTY, VILLAGE, 0, True),
    (VILLAGE, VILLAGE, 0, False),  # issued here and not held: it does not exist (any more) here
    (TOWN, VILLAGE, 1, False),  # from its own subtree: the summaries pass through it, nobody above knows more
    (COUNTY, VILLAGE, 2, False),
    (CITY, VILLAGE, 3, False),  # the top of the tree asks nobody
    (CITY, "371200001201", 0, False),
    (SIBLING, VILLAGE, MAX_HOPS, False),  # asked far enough
    (SIBLING, VILLAGE, -1, False),
])
def test_a_node_asks_its_parent_only_about_receipts_from_outside_its_subtree(here: str, origin: str, hops: int,
                                                                             asks: bool) -> None:
    assert asks_parent(here, origin, hops) is asks
