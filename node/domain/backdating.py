"""Honest back-dating: when a step entered later may say it happened.

A window that was offline, or worked on paper, enters its steps later with the time they
really happened (``happened_at``); the lifecycle then runs at that time, so its dates count
from it (a due date from the real acceptance, a joint reviewer's share from the real start of
the joint review, which is what timeout defaults, 超时默认, count from). That power must not
rewrite history:

- a step may not say it happened before the case's previous event (the history stays in
  the order things happened: back-filled steps are entered oldest first);
- nor before the step it depends on (``DEPENDS_ON``: an opinion not before the joint review
  started, a decision not before the case was accepted, a delivery not before completion),
  which the refusal names, so the clerk sees which fact stands in the way.

Back-filled events stay flagged (``backfilled`` in their detail, set by the desk from
``deadlines.is_backfilled``'s setting), and ``case show`` marks them.

Pure: the earlier steps come in as ``(action, happened_at)`` pairs, oldest first; the answer
is the refusal's text (naming ``happened_at``) or None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from govnet.node.domain.lifecycle import Action, SystemAction

A, SA = Action, SystemAction
_ACCEPTED = (A.ACCEPT.value, SA.DEEM_ACCEPT.value)

# For each step, the earlier steps it follows from: it cannot have happened before the latest of them.
DEPENDS_ON: Mapping[str, tuple[str, ...]] = {
    A.REVIEW: _ACCEPTED,
    A.REQUEST_SUPPLEMENT: (A.REVIEW.value,),
    A.SUPPLEMENT: (*_ACCEPTED, A.REQUEST_SUPPLEMENT.value),
    A.START_JOINT: (A.REVIEW.value,),
    A.OPINION: (A.START_JOINT.value,),
    A.APPROVE: _ACCEPTED,
    A.REJECT: _ACCEPTED,
    A.ESCALATE: (A.REVIEW.value,),
    A.EXTEND: _ACCEPTED,
    A.SUSPEND: (A.REVIEW.value,),
    A.RESUME: (A.SUSPEND.value,),
    A.COMPLETE: (A.APPROVE.value, A.REJECT.value),
    A.DELIVER: (A.COMPLETE.value,),
}


def backdating_refusal(step: str, happened: datetime, past: Sequence[tuple[str, datetime]]) -> str | None:
    """Why ``step`` may not have happened at ``happened`` given the case's earlier steps, or None."""
    wanted = DEPENDS_ON.get(step, ())
    depended = [(action, at) for action, at in past if action in wanted]
    if depended:
        action, at = max(depended, key=lambda pair: pair[1])
        if happened < at:
            return (f"happened_at {happened.isoformat()} is before the {action} it follows ({at.isoformat()}): "
                    f"a {step} cannot have happened before it")
    if past:
        action, at = max(past, key=lambda pair: pair[1])
        if happened < at:
            return (f"happened_at {happened.isoformat()} is before the case's last event ({action} at "
                    f"{at.isoformat()}): enter back-filled steps in the order they happened")
    return None
