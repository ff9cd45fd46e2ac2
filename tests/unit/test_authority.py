"""Who may send what (federation.authority): every rule, table-driven, pure."""

from __future__ import annotations

import pytest

from govnet.federation.authority import (
    Reason,
    check_addressed,
    check_ancestor_restored,
    check_appeal_decider,
    check_custody,
    check_from_child,
    check_from_parent,
    check_release,
    check_vouched,
    check_window_delivery,
    in_subtree,
)
from govnet.federation.tree import Level

CITY, COUNTY, TOWN, VILLAGE = "371100", "371102", "371102001", "371102001201"
OTHER_COUNTY, OTHER_TOWN, OTHER_VILLAGE = "371103", "371102002", "371102002201"
SIBLING_VILLAGE = "371102001202"


@pytest.mark.parametrize(("node", "root", "inside"), [
    (VILLAGE, VILLAGE, True),
    (VILLAGE, TOWN, True),
    (VILLAGE, COUNTY, True),
    (VILLAGE, CITY, True),
    (COUNTY, CITY, True),
    (TOWN, VILLAGE, False),
    (OTHER_VILLAGE, TOWN, False),
    (OTHER_COUNTY, COUNTY, False),
    ("3711", CITY, False),  # malformed: never inside
    ("", TOWN, False),
])
def test_in_subtree(node: str, root: str, inside: bool) -> None:
    assert in_subtree(node, root) is inside


# here, child, kind, origin, target -> reason (None: allowed)
FROM_CHILD = [
    ("own stats", COUNTY, TOWN, "stats", TOWN, CITY, None),
    ("a descendant's stats, relayed", COUNTY, TOWN, "stats", VILLAGE, CITY, None),
    ("a sibling's stats", COUNTY, TOWN, "stats", OTHER_TOWN, CITY, Reason.OUTSIDE_SUBTREE),
    ("a sibling's village", COUNTY, TOWN, "summary", OTHER_VILLAGE, CITY, Reason.OUTSIDE_SUBTREE),
    ("in the parent's name", COUNTY, TOWN, "stats", COUNTY, CITY, Reason.OUTSIDE_SUBTREE),
    ("in the city's name", COUNTY, TOWN, "request", CITY, COUNTY, Reason.OUTSIDE_SUBTREE),
    ("another county's", CITY, COUNTY, "stats", OTHER_COUNTY, CITY, Reason.OUTSIDE_SUBTREE),
    ("a transfer up", TOWN, VILLAGE, "transfer", VILLAGE, COUNTY, None),
    ("a catalog up", TOWN, VILLAGE, "catalog", VILLAGE, "", Reason.DOWN_ONLY),
    ("revocations up", TOWN, VILLAGE, "revocation", VILLAGE, "", Reason.DOWN_ONLY),
    ("not a child", COUNTY, VILLAGE, "stats", VILLAGE, CITY, Reason.NOT_A_NEIGHBOUR),
    ("not a child either", COUNTY, OTHER_COUNTY, "stats", OTHER_COUNTY, CITY, Reason.NOT_A_NEIGHBOUR),
    ("a malformed origin", TOWN, VILLAGE, "event", "x", COUNTY, Reason.BAD_ID),
]


@pytest.mark.parametrize(("name", "here", "child", "kind", "origin", "target", "reason"), FROM_CHILD,
                         ids=[c[0] for c in FROM_CHILD])
def test_from_a_child(name: str, here: str, child: str, kind: str, origin: str, target: str,
                      reason: Reason | None) -> None:
    refusal = check_from_child(here, child, kind, origin, target)
    assert (refusal.reason if refusal else None) is reason
    if refusal is not None:
        assert "\n" not in refusal.message and child in refusal.message


# here, parent, kind, origin, target -> reason
FROM_PARENT = [
    ("an event for the receiver", VILLAGE, TOWN, "event", COUNTY, VILLAGE, None),
    ("an event for a descendant", TOWN, COUNTY, "event", COUNTY, VILLAGE, None),
    ("a copy from the city", TOWN, COUNTY, "copy", CITY, VILLAGE, None),
    ("a catalog for the link", TOWN, COUNTY, "catalog", COUNTY, "", None),
    ("for a sibling", VILLAGE, TOWN, "event", COUNTY, SIBLING_VILLAGE, Reason.NOT_FOR_RECEIVER),
    ("for the parent itself", VILLAGE, TOWN, "request", COUNTY, TOWN, Reason.NOT_FOR_RECEIVER),
    ("a summary for the city", TOWN, COUNTY, "summary", COUNTY, CITY, Reason.NOT_FOR_RECEIVER),
    ("in the receiver's name", TOWN, COUNTY, "request", TOWN, TOWN, Reason.SPEAKS_FOR_RECEIVER),
    ("in a descendant's name", TOWN, COUNTY, "event", VILLAGE, VILLAGE, Reason.SPEAKS_FOR_RECEIVER),
    ("not the parent", VILLAGE, COUNTY, "event", COUNTY, VILLAGE, Reason.NOT_A_NEIGHBOUR),
    ("a malformed origin", VILLAGE, TOWN, "event", "", VILLAGE, Reason.BAD_ID),
]


@pytest.mark.parametrize(("name", "here", "parent", "kind", "origin", "target", "reason"), FROM_PARENT,
                         ids=[c[0] for c in FROM_PARENT])
def test_from_the_parent(name: str, here: str, parent: str, kind: str, origin: str, target: str,
                         reason: Reason | None) -> None:
    refusal = check_from_parent(here, parent, kind, origin, target)
    assert (refusal.reason if refusal else None) is reason


@pytest.mark.parametrize(("origin", "named", "allowed"), [
    (TOWN, [TOWN], True),
    (TOWN, [TOWN, VILLAGE], True),
    (COUNTY, [VILLAGE], True),  # the owner's summary of a case from a village below it
    (TOWN, [OTHER_TOWN], False),
    (TOWN, [TOWN, OTHER_VILLAGE], False),
    (VILLAGE, [TOWN], False),
    (TOWN, [""], False),
])
def test_a_payload_names_only_its_origins_subtree(origin: str, named: list[str], allowed: bool) -> None:
    refusal = check_vouched(origin, named, "statistics")
    assert (refusal is None) is allowed
    if refusal is not None:
        assert refusal.reason is Reason.PAYLOAD_MISMATCH


@pytest.mark.parametrize(("target", "case_origin", "allowed"), [
    (COUNTY, VILLAGE, True),  # a transfer up to the owner
    (VILLAGE, VILLAGE, True),  # events and copies back to the origin
    (CITY, VILLAGE, True),  # a summary up to the city
    (TOWN, VILLAGE, True),  # a resync's summaries down to the child they came from
    (VILLAGE, SIBLING_VILLAGE, False),  # a copy of another village's case
    (OTHER_TOWN, VILLAGE, False),
    ("", VILLAGE, False),
])
def test_a_case_travels_only_on_its_origins_path(target: str, case_origin: str, allowed: bool) -> None:
    assert (check_addressed(target, case_origin, "the copy of case R1") is None) is allowed


C, K, T, V = Level.CITY, Level.COUNTY, Level.TOWNSHIP, Level.VILLAGE
CITY_ITEMS = {"HB-0001": (CITY, C), "HB-0002": (CITY, K), "NY-0001": (CITY, T)}

# here, issuer, items, local -> reason
RELEASES = [
    ("the city's own", CITY, CITY, [("HB-0001", C), ("HB-0002", K)], True, None),
    ("a county's own items", COUNTY, COUNTY, [("LY-0001", K), ("LY-0002", V)], True, None),
    ("a county's version of a county item", COUNTY, COUNTY, [("HB-0002", K)], True, None),
    ("a county redefines a city item", COUNTY, COUNTY, [("HB-0001", K)], True, Reason.CATALOG_AUTHORITY),
    ("a county defines a city-level item", COUNTY, COUNTY, [("LY-0003", C)], True, Reason.CATALOG_AUTHORITY),
    ("a village under the city's name", VILLAGE, CITY, [("HB-0001", C)], True, Reason.CATALOG_ISSUER),
    ("a county under the city's name", COUNTY, CITY, [("HB-0001", C)], True, Reason.CATALOG_ISSUER),
    ("a village's own", VILLAGE, VILLAGE, [("CUN-0001", V)], True, Reason.NOT_AN_ISSUER),
    ("a township's own", TOWN, TOWN, [("XZ-0001", T)], True, Reason.NOT_AN_ISSUER),
    ("received: the city's", VILLAGE, CITY, [("HB-0001", C)], False, None),
    ("received: the county's", VILLAGE, COUNTY, [("LY-0001", K)], False, None),
    ("received: the receiver's own name", TOWN, TOWN, [("XZ-0001", T)], False, Reason.CATALOG_ISSUER),
    ("received: another county's", TOWN, OTHER_COUNTY, [("LY-0001", K)], False, Reason.CATALOG_ISSUER),
    ("received: a township's", VILLAGE, TOWN, [("XZ-0001", T)], False, Reason.NOT_AN_ISSUER),
    ("received: a county overriding a city item", VILLAGE, COUNTY, [("HB-0001", C)], False,
     Reason.CATALOG_AUTHORITY),
    ("a malformed issuer", COUNTY, "37", [("HB-0001", C)], True, Reason.BAD_ID),
]


@pytest.mark.parametrize(("name", "here", "issuer", "items", "local", "reason"), RELEASES,
                         ids=[r[0] for r in RELEASES])
def test_catalog_releases(name: str, here: str, issuer: str, items: list[tuple[str, Level]], local: bool,
                          reason: Reason | None) -> None:
    refusal = check_release(here, issuer, items, CITY_ITEMS, local=local)
    assert (refusal.reason if refusal else None) is reason


def test_the_city_may_raise_its_own_item() -> None:
    """An issuer's own earlier items are not "inherited": the city may change any of them."""
    assert check_release(CITY, CITY, [("NY-0001", C)], CITY_ITEMS, local=True) is None


@pytest.mark.parametrize(("decider", "rated", "allowed"), [
    (COUNTY, TOWN, True),
    (CITY, TOWN, True),
    (TOWN, TOWN, False),  # its own appeal
    (VILLAGE, TOWN, False),  # below it
    (OTHER_COUNTY, TOWN, False),  # not on its path
    (CITY, CITY, False),  # the city's ratings are appealed outside govnet
])
def test_an_appeal_is_decided_above_the_rated_node(decider: str, rated: str, allowed: bool) -> None:
    refusal = check_appeal_decider(decider, rated)
    assert (refusal is None) is allowed


@pytest.mark.parametrize(("here", "issuer", "isolated", "reason"), [
    (COUNTY, CITY, True, None),  # a county working before its city is online loads the city's release
    (TOWN, CITY, True, None),
    (COUNTY, CITY, False, Reason.CATALOG_ISSUER),  # once its parent answered: only from the parent
    (TOWN, OTHER_COUNTY, True, Reason.CATALOG_ISSUER),  # never a stranger's
    (VILLAGE, TOWN, True, Reason.NOT_AN_ISSUER),
])
def test_an_ancestors_release_is_loaded_by_hand_only_before_the_parent_answered(
        here: str, issuer: str, isolated: bool, reason: Reason | None) -> None:
    refusal = check_release(here, issuer, [("HB-0001", C)], {}, local=True, isolated=isolated)
    assert (refusal.reason if refusal else None) is reason


@pytest.mark.parametrize(("sender", "case_origin", "allowed"), [
    (VILLAGE, VILLAGE, True),  # the window where the applicant applied
    (TOWN, VILLAGE, False),  # a relay on the way
    (SIBLING_VILLAGE, VILLAGE, False),
    (COUNTY, VILLAGE, False),  # the owner delivers with its own action, not by request
    ("", VILLAGE, False),
])
def test_a_delivery_is_recorded_for_the_cases_origin_only(sender: str, case_origin: str, allowed: bool) -> None:
    refusal = check_window_delivery(sender, case_origin, "371102001201-01-000001-5")
    assert (refusal is None) is allowed
    if refusal is not None:
        assert refusal.reason is Reason.NOT_THE_WINDOW


@pytest.mark.parametrize(("here", "sender", "target", "origin", "owner", "allowed"), [
    (TOWN, VILLAGE, TOWN, VILLAGE, VILLAGE, True),  # a village's own case, to its parent
    (COUNTY, TOWN, COUNTY, TOWN, TOWN, True),  # a township's own case, to the county
    (TOWN, VILLAGE, TOWN, VILLAGE, TOWN, False),  # handed over: its owner answers for it now
    (TOWN, VILLAGE, TOWN, SIBLING_VILLAGE, SIBLING_VILLAGE, False),  # another village's case
    (TOWN, OTHER_VILLAGE, TOWN, OTHER_VILLAGE, OTHER_VILLAGE, False),  # not a child of this township
    (COUNTY, VILLAGE, COUNTY, VILLAGE, VILLAGE, False),  # custody is kept by the parent, not further up
    (TOWN, VILLAGE, COUNTY, VILLAGE, VILLAGE, False),  # addressed past the parent
])
def test_a_node_gives_its_parent_to_keep_only_the_cases_it_received_and_owns(
        here: str, sender: str, target: str, origin: str, owner: str, allowed: bool) -> None:
    refusal = check_custody(here, sender, target, origin, owner, "371102001201-01-000001-5")
    assert (refusal is None) is allowed
    if refusal is not None:
        assert refusal.reason is Reason.NOT_ITS_CUSTODY


@pytest.mark.parametrize(("here", "restored", "allowed"), [
    (VILLAGE, TOWN, True),  # the parent
    (VILLAGE, COUNTY, True),  # passed down from the township
    (VILLAGE, CITY, True),
    (VILLAGE, VILLAGE, False),  # itself
    (TOWN, VILLAGE, False),  # below
    (VILLAGE, OTHER_COUNTY, False),  # elsewhere
    (VILLAGE, "", False),
    (VILLAGE, "37110x", False),  # not a node id
])
def test_a_restored_ancestor_notice_names_a_node_above_the_receiver(here: str, restored: str, allowed: bool) -> None:
    refusal = check_ancestor_restored(here, restored)
    assert (refusal is None) is allowed
    if refusal is not None:
        assert refusal.reason is Reason.NOT_ABOVE
