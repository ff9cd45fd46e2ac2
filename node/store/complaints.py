"""Complaints in the store: one ``complaint`` row per complaint, at each node that keeps
a copy (where it was filed, the node it is about, its supervisor).

A copy is written only if its ``version`` is newer than the one held, so a repeat or a
late copy changes nothing. Functions take the caller's session and never commit.
"""

from __future__ import annotations

from typing import Any

from govnet.node.store.models import Complaint
from govnet.node.store.unit import Unit, execute, insert_sql, query

COLUMNS = list(Complaint.model_fields)
# The newest version wins; an older or equal one (a repeat, a late copy) changes nothing.
UPSERT_SQL = (
    insert_sql(Complaint.__table__)  # type: ignore[attr-defined]
    + " ON CONFLICT (complaint_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "complaint_id")
    + " WHERE excluded.version > complaint.version"
)


def keep(s: Unit, values: dict[str, Any]) -> None:
    """Write a complaint's columns unless the copy held is as new or newer."""
    execute(s, UPSERT_SQL, values)


def find(s: Unit, complaint_id: str) -> Complaint | None:
    """The complaint held under ``complaint_id``, detached from the session: a change is
    written as a new version through ``keep``, never through the object."""
    row = s.get(Complaint, complaint_id)
    if row is not None:
        s.expunge(row)
    return row


def case_subject(s: Unit, receipt: str) -> tuple[str, str | None, str] | None:
    """(owner, item code, department) of a case this node holds or supervises (None: unknown)."""
    known = query(s, "SELECT owner, item_code, department FROM case_record WHERE receipt = ?", (receipt,)) or \
        query(s, "SELECT owner, item_code, department FROM case_summary WHERE receipt = ?", (receipt,))
    return (known[0][0], known[0][1], known[0][2]) if known else None


def listed(s: Unit, status: str = "", about_node: str = "") -> list[Complaint]:
    """Complaints held here, with the given status and about the given node (empty: any),
    in the order they were filed."""
    sql = f"SELECT {', '.join(COLUMNS)} FROM complaint WHERE 1 = 1"
    args: list[Any] = []
    if status:
        sql += " AND status = ?"
        args.append(status)
    if about_node:
        sql += " AND about_node = ?"
        args.append(about_node)
    return [Complaint(**dict(zip(COLUMNS, r))) for r in query(s, sql + " ORDER BY filed_at", tuple(args))]


def count_about(s: Unit, node: str) -> int:
    """How many complaints held here are about ``node``."""
    return int(query(s, "SELECT count(*) FROM complaint WHERE about_node = ?", (node,))[0][0])


def filed_about(s: Unit, node: str) -> list[tuple[str, str | None, str | None]]:
    """(filed on, item code, department) of every complaint held here about ``node``."""
    return [(r[0], r[1], r[2]) for r in
            query(s, "SELECT filed_on, item_code, department FROM complaint WHERE about_node = ?", (node,))]


def count_open_supervised(s: Unit, supervisor: str) -> int:
    """Complaints ``supervisor`` tracks that are not resolved yet."""
    return int(query(s, "SELECT count(*) FROM complaint WHERE supervisor = ? AND status = 'open'",
                     (supervisor,))[0][0])
