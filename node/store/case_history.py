"""A case's history as the units of work read it, and the write of a verdict on a bare row.

The desk and supervision decide every change through the lifecycle's table; what a step
needs to know beyond the case's state lives in its events (when the last one happened,
whether the case was rated, a rectification opened, an appeal made). These reads run in
the caller's unit of work and never commit.

``write_state`` is for a case row inserted by plain SQL in the same unit of work (a case
received by transfer, on the replication hot path, has no ORM object): the verdict of its
take-over is written the same way, without loading one.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from enum import StrEnum
from types import SimpleNamespace
from typing import Any, cast

from sqlmodel import Session

from govnet.node.domain.lifecycle import RECTIFY_OPEN, CaseState, RatingRecord, SystemAction
from govnet.node.store.cases import record_from_row, state_columns
from govnet.node.store.models import CaseRow
from govnet.node.store.unit import execute, query, utc_text


def step_times(s: Session, receipt: str) -> tuple[tuple[str, datetime], ...]:
    """The case's steps as its history holds them, (action, happened_at), oldest first (``Context.past``)."""
    return tuple((str(action), datetime.fromisoformat(str(at))) for action, at in query(
        s, "SELECT action, happened_at FROM case_event WHERE receipt = ? AND NOT superseded ORDER BY seq", (receipt,)))


def rating_record(s: Session, receipt: str) -> RatingRecord:
    """What the case's history holds of its rating, the rectification and the appeal."""
    kinds = (SystemAction.EVALUATE.value, RECTIFY_OPEN, SystemAction.RECTIFY_CLOSE.value, SystemAction.APPEAL.value,
             SystemAction.APPEAL_DECIDED.value)
    first: dict[str, dict[str, Any]] = {}
    for action, detail in query(s, f"SELECT action, detail FROM case_event WHERE receipt = ? AND NOT superseded "
                                   f"AND action IN ({', '.join('?' for _ in kinds)}) ORDER BY seq", (receipt, *kinds)):
        first.setdefault(action, json.loads(detail))
    return RatingRecord(
        rating=first.get(SystemAction.EVALUATE.value, {}).get("rating", ""),
        rectification_due=first.get(RECTIFY_OPEN, {}).get("due", ""),
        rectified=SystemAction.RECTIFY_CLOSE.value in first,
        appealed=SystemAction.APPEAL.value in first,
        appeal_decided=SystemAction.APPEAL_DECIDED.value in first,
    )


def state_of(columns: dict[str, Any]) -> CaseState:
    """The lifecycle state of a row given as its columns. Read as attributes, the way the row
    itself is: building an ORM object for it would cost more than the rest of a take-over."""
    return record_from_row(cast(CaseRow, SimpleNamespace(**columns))).state


# Fields stored as they are (an enum as its value): a verdict that changes only these (a take-over
# changes the owner and the event count) is written without encoding the rest of the state again.
_PLAIN = ("status", "case_type", "origin", "owner", "owner_epoch", "agent", "paused_days", "extended", "decision",
          "decision_reason", "notice", "catalog_version", "catalog_issuer", "event_count", "fees_due_fen",
          "fees_paid_fen", "fees_waived", "green_channel")


def write_state(s: Session, columns: dict[str, Any], before: CaseState, after: CaseState, now: datetime) -> None:
    """Write the verdict ``before`` -> ``after`` on the row ``columns`` describes (the columns of a
    row inserted by plain SQL), and bring ``columns`` up to date with it."""
    changed = [f.name for f in dataclasses.fields(CaseState) if getattr(before, f.name) != getattr(after, f.name)]
    if all(name in _PLAIN for name in changed):
        fresh = {name: getattr(after, name) for name in changed}
        fresh = {k: v.value if isinstance(v, StrEnum) else v for k, v in fresh.items()}
        fresh["updated_at"] = utc_text(now)
    else:
        fresh = state_columns(after, now)
    execute(s, "UPDATE case_record SET " + ", ".join(f"{k} = :{k}" for k in fresh) + " WHERE receipt = :receipt",
            {**fresh, "receipt": columns["receipt"]})
    columns.update(fresh)
