"""Tracking a receipt from any node: which node asks further up the tree, pure.

A receipt is answered by the first node that knows the case: its origin and its owner hold the
whole case; every node above the origin holds its summary (the owner's summaries go up to the
city, and the events it sends back to the origin refresh the summary each relay keeps). So a
node that does not know a receipt asks its parent only when the receipt was issued outside its
own subtree (a receipt number begins with its issuing node's id): for a receipt from its own
subtree, the levels above know nothing it could not, and the answer is "not (yet) known here".
Each hop is counted; a request that has gone ``MAX_HOPS`` hops is answered where it is (the
deepest tree, village to city, needs 3).
"""

from __future__ import annotations

from govnet.federation.tree import is_ancestor, parent_id

MAX_HOPS = 4


def asks_parent(here: str, receipt_origin: str, hops: int) -> bool:
    """Whether ``here``, which holds nothing of a receipt issued at ``receipt_origin`` and has been
    asked after ``hops`` hops, asks its parent."""
    if parent_id(here) is None or not 0 <= hops < MAX_HOPS:
        return False
    return receipt_origin != here and not is_ancestor(here, receipt_origin)
