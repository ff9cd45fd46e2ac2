"""Cases as replication reads and writes them: held copies, their events, summaries, and the
identities of what was applied. The SQL of ``node.app.replication`` lives here.

Reads give plain values (``federation.ownership.Held``, wire snapshots); writes take wire
values (``node.domain.messages``) and store them as the case tables hold them. The wire's
field names are the columns' names, but the statements name the wire's fields, not the
table's columns: a column added to a table takes its default here and stays off the wire.
Helpers take the caller's session and never commit (one unit of work per envelope chunk).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from govnet.federation.ownership import EventRef, Held
from govnet.node.domain.messages import CASE_FIELDS, EVENT_FIELDS, PERSONAL_FIELDS, CaseEvent, CaseSnapshot
from govnet.node.store.models import CaseEventRow, CaseRow, CaseSummary, ChildLink
from govnet.node.store.unit import execute, insert_many, insert_rows, query, utc_text


def _insert(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"


def _update(columns: Iterable[str]) -> str:
    return "UPDATE case_record SET " + ", ".join(f"{c} = :{c}" for c in columns) + " WHERE receipt = :receipt"


_INSERT_CASE = _insert("case_record", (*CASE_FIELDS, *PERSONAL_FIELDS))
_INSERT_EVENT = _insert("case_event", EVENT_FIELDS)
_STATE = tuple(f for f in CASE_FIELDS if f not in ("receipt", "event_count"))
_UPDATE_STATE = _update(_STATE)
_UPDATE_STATE_AND_COUNT = _update((*_STATE, "event_count"))
_UPDATE_WHOLE = _update((*_STATE, "event_count", *PERSONAL_FIELDS))
_SUMMARY_COLUMNS = ("receipt", "origin", "owner", "owner_epoch", "item_code", "department", "case_type", "status",
                    "due", "submitted_at", "decided_on", "event_count", "state", "updated_at")
# Keep the newest view: a summary replaces the one held only if it has more events.
_UPSERT_SUMMARY = (
    _insert("case_summary", _SUMMARY_COLUMNS)
    + " ON CONFLICT (receipt) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _SUMMARY_COLUMNS[1:])
    + " WHERE excluded.event_count > case_summary.event_count"
)


# --- reading what this node holds ---


def held_case(s: Session, receipt: str, history: bool = True) -> Held | None:
    """What this node holds of a case, for ``federation.ownership.decide`` (None: nothing).
    ``history``: with the identities of its events (one query either way)."""
    if not history:
        found = query(s, "SELECT owner, owner_epoch, event_count FROM case_record WHERE receipt = ?", (receipt,))
        return Held(*found[0]) if found else None
    rows = query(s, "SELECT c.owner, c.owner_epoch, c.event_count, e.seq, e.origin, e.origin_incarnation, e.origin_seq "
                    "FROM case_record c LEFT JOIN case_event e ON e.receipt = c.receipt WHERE c.receipt = ?", (receipt,))
    if not rows:
        return None
    owner, epoch, count = rows[0][:3]
    return Held(owner, epoch, count, tuple(EventRef(*r[3:]) for r in rows if r[3] is not None))


def case_row(s: Session, receipt: str) -> CaseRow | None:
    """The case's row as the database has it now (statements of this module write past the ORM)."""
    return s.get(CaseRow, receipt, populate_existing=True)


def events_of(s: Session, receipt: str, after_seq: int = 0) -> list[CaseEventRow]:
    """A case's history in order (the superseded events, kept apart at negative places, left out)."""
    return list(
        s.exec(
            select(CaseEventRow).where(CaseEventRow.receipt == receipt, CaseEventRow.seq > after_seq)
            .order_by(col(CaseEventRow.seq))
        ).all()
    )


def snapshot_of(row: CaseRow, personal: bool) -> CaseSnapshot:
    """A case's row in its wire form (with the applicant's personal data or without)."""
    fields = (*CASE_FIELDS, *PERSONAL_FIELDS) if personal else CASE_FIELDS
    return CaseSnapshot.from_dict({f: getattr(row, f) for f in fields})


def event_of(row: CaseEventRow) -> CaseEvent:
    return CaseEvent.from_dict({f: getattr(row, f) for f in EVENT_FIELDS})


def whole_case(s: Session, row: CaseRow) -> tuple[CaseSnapshot, tuple[CaseEvent, ...]]:
    """The case with personal data and its whole history (what a transfer or a copy carries)."""
    return snapshot_of(row, personal=True), tuple(event_of(e) for e in events_of(s, row.receipt))


def cases_owned_elsewhere(s: Session, here: str) -> list[CaseRow]:
    return list(s.exec(select(CaseRow).where(CaseRow.owner != here).order_by(col(CaseRow.receipt))).all())


def cases_owned_from(s: Session, here: str, subtree: str) -> list[CaseRow]:
    """Cases owned here that originated in ``subtree``, by receipt."""
    return list(s.exec(select(CaseRow).where(CaseRow.owner == here, col(CaseRow.origin).startswith(subtree))
                       .order_by(col(CaseRow.receipt))).all())


def cases_received_and_owned(s: Session, here: str) -> list[str]:
    """The receipts of the cases received here that this node owns (those kept in custody above)."""
    return [r for (r,) in query(s, "SELECT receipt FROM case_record WHERE owner = ? AND origin = ? ORDER BY receipt",
                                (here, here))]


def owners_in_summaries(s: Session, subtree: str) -> list[str]:
    """The owners the summaries held here name for cases from ``subtree``."""
    return [o for (o,) in query(s, "SELECT DISTINCT owner FROM case_summary WHERE origin LIKE ? ORDER BY owner",
                                (subtree + "%",))]


def summary_snapshot(summary: CaseSummary) -> CaseSnapshot:
    """A summary held here, as the snapshot it was stored from."""
    return CaseSnapshot.from_dict(json.loads(summary.state), personal=False)


def child_ids(s: Session) -> list[str]:
    return list(s.exec(select(ChildLink.child_id)).all())


# --- writing a verdict ---


_WITHHELD = dict.fromkeys(PERSONAL_FIELDS, "")  # no applicant in clear here (none carried, or sealed to another)


def insert_case(s: Session, case: CaseSnapshot, owner: str) -> dict[str, Any]:
    """A case this node did not hold, whole, with ``owner``; returns its columns. The applicant
    is stored only if it arrived in clear (opened here); otherwise its fields stay empty."""
    columns = {**_WITHHELD, **case.to_dict(), "owner": owner}
    insert_rows(s, _INSERT_CASE, columns)
    return columns


def replace_case(s: Session, case: CaseSnapshot, owner: str) -> None:
    """Every field of ``case`` (personal data included) over the held row, with ``owner``. An
    applicant not carried in clear leaves the one held unchanged."""
    values = {**case.to_dict(), "owner": owner}
    execute(s, _UPDATE_WHOLE if PERSONAL_FIELDS[0] in values else _UPDATE_STATE_AND_COUNT, values)


def write_state(s: Session, case: CaseSnapshot, owner: str, event_count: int | None) -> None:
    """The state of ``case`` over the held row, with ``owner`` (and ``event_count`` unless None)."""
    values = {**case.state(), "owner": owner, "receipt": case.receipt}
    if event_count is None:
        execute(s, _UPDATE_STATE, values)
    else:
        execute(s, _UPDATE_STATE_AND_COUNT, {**values, "event_count": event_count})


def write_event_count(s: Session, receipt: str, count: int) -> None:
    execute(s, "UPDATE case_record SET event_count = ? WHERE receipt = ?", (count, receipt))


def add_events(s: Session, events: Sequence[CaseEvent]) -> None:
    insert_many(s, _INSERT_EVENT, [e.to_dict() for e in events])


def keep_superseded(s: Session, events: Sequence[CaseEvent]) -> None:
    """Events from a superseded owner epoch: kept for the record, flagged, out of the normal
    numbering (at minus their origin sequence) so they cannot collide with it."""
    insert_many(s, _INSERT_EVENT, [{**e.to_dict(), "seq": -e.origin_seq, "superseded": True} for e in events])


def store_summary(s: Session, case: CaseSnapshot, now: datetime) -> bool:
    """Keep ``case`` (without personal data) as this node's summary of it if it has more events
    than the one held; returns whether it did."""
    public = case.public().to_dict()
    values = {c: public.get(c) for c in _SUMMARY_COLUMNS}
    values["state"] = json.dumps(public, ensure_ascii=False, sort_keys=True)
    values["updated_at"] = utc_text(now)
    return bool(execute(s, _UPSERT_SUMMARY, values))


# --- what this node applied, forever ---


def applied_hash(s: Session, identity: tuple[str, int, int]) -> str | None:
    """The payload hash of the envelope applied here under ``identity``, if one was."""
    seen = query(s, "SELECT payload_hash FROM applied_envelope WHERE origin = ? AND origin_incarnation = ? "
                    "AND origin_seq = ?", identity)
    return str(seen[0][0]) if seen else None


_INSERT_APPLIED = _insert("applied_envelope", ("origin", "origin_incarnation", "origin_seq", "payload_hash",
                                               "applied_at"))


def record_applied(s: Session, identity: tuple[str, int, int], payload_hash: str, now: datetime) -> None:
    origin, incarnation, seq = identity
    insert_rows(s, _INSERT_APPLIED, {"origin": origin, "origin_incarnation": incarnation, "origin_seq": seq,
                                     "payload_hash": payload_hash, "applied_at": utc_text(now)})
