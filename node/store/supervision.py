"""The supervision office's reads: the running cases a scanner looks at, the alarms on record
and the case deadlines the subtree reported up. Each runs in the caller's session.

"Running" is the lifecycle's ``RUNNING`` group: the statuses in which a case's own deadline runs.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from govnet.node.domain.lifecycle import RUNNING
from govnet.node.store.models import Rectification
from govnet.node.store.unit import execute, insert_sql, query

_RUNNING_SQL = ", ".join(f"'{s.value}'" for s in sorted(RUNNING))


def running_receipts(s: Session, owner: str) -> list[str]:
    """The running cases ``owner`` holds that have a due date, in receipt order."""
    return [r for (r,) in query(
        s, f"SELECT receipt FROM case_record WHERE owner = ? AND due IS NOT NULL AND status IN ({_RUNNING_SQL}) "
           "ORDER BY receipt", (owner,))]


def received_receipts(s: Session, owner: str, submitted_before: str) -> list[str]:
    """The cases ``owner`` holds that wait to be accepted or refused (the acceptance deadline),
    submitted before ``submitted_before`` (RFC 3339, UTC, as stored), in receipt order."""
    return [r for (r,) in query(
        s, "SELECT receipt FROM case_record WHERE owner = ? AND status = 'received' AND submitted_at < ? "
           "ORDER BY receipt", (owner, submitted_before))]


def alarm_rows(s: Session, actions: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Every alarm event on a case held here (not superseded), with its case: (receipt, action, detail,
    happened_at, recorded_at, item_code, owner, status, due or '')."""
    return query(s, f"""
        SELECT e.receipt, e.action, e.detail, e.happened_at, e.recorded_at, c.item_code, c.owner,
               c.status, coalesce(c.due, '')
        FROM case_event e JOIN case_record c ON c.receipt = e.receipt
        WHERE e.action IN ({', '.join('?' for _ in actions)}) AND NOT e.superseded""", actions)


def running_summaries(s: Session) -> list[str]:
    """The states (JSON) of the running cases with a due date that the subtree reported up and
    this node does not hold itself."""
    return [state for (state,) in query(s, f"""
        SELECT state FROM case_summary
        WHERE status IN ({_RUNNING_SQL}) AND due IS NOT NULL
          AND receipt NOT IN (SELECT receipt FROM case_record)""")]


# A closed rectification stays closed: an open copy (late, repeated) never reopens it.
_KEEP_RECTIFICATION = (
    insert_sql(Rectification.__table__)  # type: ignore[attr-defined]
    + " ON CONFLICT (receipt) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in Rectification.model_fields if c != "receipt")
    + " WHERE rectification.closed_on = ''"
)


def keep_rectification(s: Session, values: dict[str, Any]) -> None:
    """Write a rectification's columns unless the one held is already closed."""
    execute(s, _KEEP_RECTIFICATION, values)


def open_rectifications(s: Session) -> list[Rectification]:
    """Every rectification held here that is not closed yet, the earliest due first."""
    return [Rectification(**dict(zip(Rectification.model_fields, r))) for r in query(
        s, f"SELECT {', '.join(Rectification.model_fields)} FROM rectification WHERE closed_on = '' "
           "ORDER BY due, receipt")]
