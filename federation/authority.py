"""Who may send what: the authorization rules of the tree, pure.

Transport security (mutual TLS, ``node.rpc.peer``) says *who* is on the other end of a link:
a child, or the parent. These rules say what that neighbour may send, given only node ids,
levels and the tree, so they hold over any transport (the in-memory one of the simulation
too, where the link's identity is the one its session was opened with). The node layer
calls them where envelopes come in and where releases are published, and turns a refusal
into PERMISSION_DENIED (or a quarantined envelope), a log line and
``govnet_sync_refused_total{reason}``; nothing refused is applied.

A subtree speaks only for itself
    Every envelope names its ``origin``, the node that created it (relays never change it).
    *From a child*, the origin must lie in the child's subtree: a child may relay what its
    descendants created, never what a sibling, an ancestor or a stranger did. So a township
    cannot push statistics "from" another township, summaries of its cases, or requests in
    its name. An envelope addressed to the link rather than to a node (empty ``target``:
    catalog releases, revocation lists) flows only down and is refused from a child.
    *From the parent*, the envelope must concern the receiver's subtree: its target is the
    receiver or a descendant (or the link itself, empty), and its origin lies *outside*
    the receiver's subtree — nothing that starts in a subtree ever comes back down into it,
    so a parent that claims to speak for the receiver or one of its descendants is lying.

What a payload says must match its envelope
    A payload may name nodes too (a statistics row's node, a case's origin, a request's
    asker, the subtree of a ``restored`` notice). Each such node must lie in the subtree of
    the envelope's origin (``check_vouched``); with the link rule above this means it lies in
    the pushing child's subtree. The owner of a case is on the path from its origin to the
    city, so a case's origin always lies in the subtree of the node that sends its
    summaries, transfers, events and copies — and in the subtree of where they go
    (``check_addressed``: a transfer goes up to an owner, events and copies back to the
    origin, summaries up to the city or, in a resync, down to the child they came from).
    With the parent rule above, a parent cannot hand a node a case from elsewhere.

Catalog releases
    Only the city and the counties issue releases (they run the administrative service
    centres where the departments' chief representatives sit); a township or a village
    issues none — an item decided at a township is published by the county or the city,
    which delegates it (``ISSUING_LEVELS``). A release may define only items whose authority
    level is the issuer's level or below, and it may not redefine an item that a farther
    issuer defines with an authority above the issuer's level: a county may publish its own
    items and its own version of a county-level item of the city's catalog (a shorter
    promised limit, say), never a city item. A release published at a node names that node
    as its issuer; a release received from the parent names one of the receiver's
    ancestors. One exception, for the top of a tree started without the levels above it (a
    county working before its city is online; a test's lone node): a node that has never
    reached its parent may have an ancestor's release loaded by hand. Once its parent has
    answered, an ancestor's release comes only from the parent. ``may_define`` is applied again when a node assembles the catalog in force,
    so a release that was stored before a farther issuer raised an item's authority no
    longer overrides it.

Deliveries at the window (一窗受理、一窗出件)
    The result of a case is handed over where the applicant applied, whoever owns the case:
    the owner records a delivery another node asks for only when that node is the case's
    origin (``check_window_delivery``); any other node asking is refused on the record.

Calendar years
    A year's official holiday schedule is published once, by the city, and travels down like
    a catalog release (``check_calendar``): published at a node only if that node is the
    city and names itself as issuer; received only from the parent, naming a city among the
    receiver's ancestors. A township or county cannot change the working days its subtree's
    deadlines are counted on.

Appeals
    An appeal against a rating of node X is decided at an ancestor of X, never at X or below
    it (``check_appeal_decider``); which person may decide it is the people rules' matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from govnet.federation.tree import Level, ancestors, in_subtree, is_ancestor, level_of, lineage, parent_id

__all__ = [
    "ISSUING_LEVELS",
    "Reason",
    "Refusal",
    "check_addressed",
    "check_ancestor_restored",
    "check_appeal_decider",
    "check_calendar",
    "check_custody",
    "check_from_child",
    "check_from_parent",
    "check_release",
    "check_window_delivery",
    "check_vouched",
    "in_subtree",
    "may_define",
]


class Reason(StrEnum):
    """Why something was refused: the ``reason`` label of ``govnet_sync_refused_total``."""

    OUTSIDE_SUBTREE = "outside_subtree"  # from a child: the origin is not in its subtree
    DOWN_ONLY = "down_only"  # from a child: addressed to the link (catalog, revocations), which flows only down
    NOT_FOR_RECEIVER = "not_for_receiver"  # from the parent: the target is not in the receiver's subtree
    SPEAKS_FOR_RECEIVER = "speaks_for_receiver"  # from the parent: the origin is in the receiver's subtree
    PAYLOAD_MISMATCH = "payload_mismatch"  # the payload names a node outside its origin's subtree
    NOT_A_NEIGHBOUR = "not_a_neighbour"  # the link is neither this node's parent nor a child
    BAD_ID = "bad_id"  # a node id that is not one
    CATALOG_ISSUER = "catalog_issuer"  # a release under another node's name
    CATALOG_AUTHORITY = "catalog_authority"  # an item above the issuer's authority
    NOT_AN_ISSUER = "not_an_issuer"  # a township or village release
    APPEAL_DECIDER = "appeal_decider"  # an appeal decided at or below the rated node
    NOT_THE_WINDOW = "not_the_window"  # a delivery recorded at a node other than the case's origin
    CALENDAR_ISSUER = "calendar_issuer"  # a calendar year not published by the city above
    NOT_ITS_CUSTODY = "not_its_custody"  # custody of a case not its sender's own, or not for its parent
    NOT_ABOVE = "not_above"  # a restored-ancestor notice naming a node that is not above the receiver


@dataclass(frozen=True)
class Refusal:
    reason: Reason
    message: str  # one line, for the log and the peer

    def __str__(self) -> str:
        return self.message


ISSUING_LEVELS: frozenset[Level] = frozenset({Level.CITY, Level.COUNTY})


def _bad_id(node_id: str, what: str) -> Refusal | None:
    if lineage(node_id) is None:
        return Refusal(Reason.BAD_ID, f"{what} {node_id!r} is not a node id")
    return None


def check_from_child(here: str, child: str, kind: str, origin: str, target: str) -> Refusal | None:
    """An envelope arriving at ``here`` on the link from ``child``: allowed (None) or why not."""
    chain = lineage(child)
    if chain is None or len(chain) < 2 or chain[1] != here:
        return Refusal(Reason.NOT_A_NEIGHBOUR, f"node {child} is not a child of {here}")
    if not target:
        return Refusal(Reason.DOWN_ONLY, f"a {kind} envelope flows only down, from the parent; "
                                         f"child {child} may not send one")
    bad = _bad_id(origin, f"from child {child}: the {kind} envelope's origin")
    if bad is not None:
        return bad
    if not in_subtree(origin, child):
        return Refusal(Reason.OUTSIDE_SUBTREE, f"child {child} may send only what its own subtree created; "
                                               f"this {kind} envelope comes from {origin}")
    return None


def check_from_parent(here: str, parent: str, kind: str, origin: str, target: str) -> Refusal | None:
    """An envelope arriving at ``here`` on the link from ``parent``: allowed (None) or why not."""
    if parent_id(here) != parent:  # ``here`` is this node's own, valid id
        return Refusal(Reason.NOT_A_NEIGHBOUR, f"node {parent} is not the parent of {here}")
    if target and not in_subtree(target, here):
        return Refusal(Reason.NOT_FOR_RECEIVER, f"parent {parent} may send {here} only what concerns its subtree; "
                                                f"this {kind} envelope is for {target}")
    bad = _bad_id(origin, f"from parent {parent}: the {kind} envelope's origin")
    if bad is not None:
        return bad
    if in_subtree(origin, here):
        return Refusal(Reason.SPEAKS_FOR_RECEIVER, f"parent {parent} may not speak for {origin}, which is in "
                                                   f"the subtree of {here}: a {kind} envelope from it never comes down")
    return None


def check_vouched(origin: str, named: Iterable[str], what: str) -> Refusal | None:
    """Every node a payload names (``named``) lies in the subtree of the envelope's origin."""
    for node in named:
        if not in_subtree(node, origin):
            return Refusal(Reason.PAYLOAD_MISMATCH, f"{what} from {origin} names node {node or '(none)'}, "
                                                    f"which is not in its subtree")
    return None


def check_addressed(target: str, case_origin: str, what: str) -> Refusal | None:
    """A case travels only toward nodes on its origin's path (the owner above it, or back
    to the origin): a case-carrying envelope's target has the case's origin in its subtree."""
    if not in_subtree(case_origin, target):
        return Refusal(Reason.PAYLOAD_MISMATCH, f"{what} for {target or '(the link)'} is about a case from "
                                                f"{case_origin or '(none)'}, outside its subtree")
    return None


def check_custody(here: str, sender: str, target: str, case_origin: str, case_owner: str,
                  receipt: str) -> Refusal | None:
    """A node hands its parent, to keep, only a case it received and owns itself: custody is
    what a restored node gets back, so a node must not plant cases in another's custody."""
    if parent_id(sender) != here or target != here:
        return Refusal(Reason.NOT_ITS_CUSTODY, f"custody of case {receipt} from {sender}: only a child of {here} "
                                               "gives it cases to keep")
    if not case_origin == case_owner == sender:
        return Refusal(Reason.NOT_ITS_CUSTODY, f"custody of case {receipt} from {sender}: received at "
                                               f"{case_origin or '(none)'}, owned by {case_owner or '(none)'}; "
                                               "a node gives to keep only the cases it received and owns")
    return None


def check_ancestor_restored(here: str, restored: str) -> Refusal | None:
    """A notice that an ancestor was restored comes down the tree and names a node above ``here``
    (what it asks for, re-sending, is harmless; naming a node elsewhere is a sign of a bad parent)."""
    if lineage(restored) is None or not is_ancestor(restored, here):
        return Refusal(Reason.NOT_ABOVE, f"a notice that {restored or '(none)'} was restored reached {here}, "
                                         "which it is not above")
    return None


def may_define(issuer: str, authority: Level) -> bool:
    """Whether ``issuer``'s release may define an item decided at ``authority``."""
    return authority.rank >= level_of(issuer).rank


def check_release(here: str, issuer: str, items: Sequence[tuple[str, Level]],
                  inherited: Mapping[str, tuple[str, Level]], *, local: bool, isolated: bool = False) -> Refusal | None:
    """A catalog release of ``issuer`` with ``items`` (code, authority level), published at
    ``here`` (``local``) or received from its parent. ``inherited``: the items in force at
    ``here`` from issuers other than ``issuer`` (code -> (issuer, authority level)).
    ``isolated``: ``here`` has never reached its parent (the only time an ancestor's
    release may be loaded by hand, see the module's docstring)."""
    bad = _bad_id(issuer, "catalog issuer")
    if bad is not None:
        return bad
    if local and issuer != here and not (isolated and issuer in ancestors(here)):
        return Refusal(Reason.CATALOG_ISSUER, f"node {here} publishes releases under its own name only, "
                                              f"not under {issuer}'s: an ancestor's release comes from the parent")
    if not local and issuer not in ancestors(here):
        return Refusal(Reason.CATALOG_ISSUER, f"a release received by {here} must be issued by one of its "
                                              f"ancestors, not by {issuer}")
    level = level_of(issuer)
    if level not in ISSUING_LEVELS:
        return Refusal(Reason.NOT_AN_ISSUER, f"{level} {issuer} issues no catalog releases: only the city and "
                                             "the counties do (an item decided below them is delegated in theirs)")
    for code, authority in items:
        if not may_define(issuer, authority):
            return Refusal(Reason.CATALOG_AUTHORITY, f"{level} {issuer} may not define item {code}, decided at "
                                                     f"{authority} level: a release defines only items at its "
                                                     "issuer's level or below")
        held = inherited.get(code)
        if held is not None and held[0] != issuer and in_subtree(issuer, held[0]) and not may_define(issuer, held[1]):
            return Refusal(Reason.CATALOG_AUTHORITY, f"item {code} is {held[0]}'s ({held[1]} level): "
                                                     f"{level} {issuer} may not redefine it")
    return None


def check_appeal_decider(decider: str, rated: str) -> Refusal | None:
    """An appeal against a rating of node ``rated`` is decided by one of its ancestors."""
    if rated == decider or decider not in (lineage(rated) or ()):
        return Refusal(Reason.APPEAL_DECIDER, f"an appeal about node {rated} is decided by one of its ancestors, "
                                              f"not by {decider}")
    return None


def check_window_delivery(sender: str, case_origin: str, receipt: str) -> Refusal | None:
    """A delivery of case ``receipt`` recorded at ``sender`` is the owner's to record only if
    ``sender`` is the window where the applicant applied (the case's origin)."""
    if not sender or sender != case_origin:
        return Refusal(Reason.NOT_THE_WINDOW, f"case {receipt} is delivered at the window where it was applied "
                                              f"for ({case_origin}), not at {sender or 'an unknown node'}")
    return None


def check_calendar(here: str, issuer: str, *, local: bool) -> Refusal | None:
    """A calendar year published at ``here`` (``local``) or received from its parent, under
    ``issuer``'s name: only the city issues one, and only at itself."""
    bad = _bad_id(issuer, "calendar issuer")
    if bad is not None:
        return bad
    if level_of(issuer) is not Level.CITY:
        return Refusal(Reason.CALENDAR_ISSUER, f"{level_of(issuer)} {issuer} publishes no calendar years: "
                                               "only the city does")
    if local and issuer != here:
        return Refusal(Reason.CALENDAR_ISSUER, f"node {here} is not the city {issuer}: a calendar year is "
                                               "published at the city and comes down the tree")
    if not local and issuer not in ancestors(here):
        return Refusal(Reason.CALENDAR_ISSUER, f"a calendar year received by {here} must come from its city, "
                                               f"not from {issuer}")
    return None
