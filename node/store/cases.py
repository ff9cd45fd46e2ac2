"""Cases and their history in the store: the ``case_record`` row, its append-only
``case_event`` rows, and the idempotency keys that bind a client's request to its receipt.

Intake is the hot path: a new case, its first events and its key are inserted as plain
SQL on the unit's own connection (``unit``), never as ORM objects; an existing case is
loaded as a ``CaseRow`` and updated through the session. A ``CaseRecord`` is the case as
the domain sees it (lifecycle state plus what only people need), converted here both ways.
Every function takes the caller's session and never commits.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import and_, func, not_, or_
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from govnet.node.domain.applicant import Applicant
from govnet.node.domain.lifecycle import CaseState, CaseType, EventDraft, Status
from govnet.node.store import audit
from govnet.node.store.deliveries import Delivered
from govnet.node.store.models import CaseEventRow, CaseRow, IdempotencyKey, WindowDelivery
from govnet.node.store.unit import StoreMeta, Unit, _db, insert_rows, insert_sql, next_value, query, utc_text


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    action: str
    from_status: str
    to_status: str
    actor: str
    reason: str
    detail: dict[str, Any]
    happened_at: str
    recorded_at: str
    origin: str


@dataclass(frozen=True)
class CaseRecord:
    """A case as the store holds it: lifecycle state plus what only people need."""

    state: CaseState
    applicant: Applicant
    item_name: str
    department: str
    possible_duplicate: bool
    duplicate_of: str
    # Set where the result was handed over at this window and the owner has not recorded it yet
    # (``node.app.desk``: one window receives, one window delivers).
    window_delivery: Delivered | None = None


def _date_text(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


_IDEMPOTENCY = IdempotencyKey.__table__  # type: ignore[attr-defined]
_EVENTS = CaseEventRow.__table__  # type: ignore[attr-defined]
INSERT_EVENT_SQL = insert_sql(_EVENTS)
INSERT_CASE_SQL = insert_sql(CaseRow.__table__)  # type: ignore[attr-defined]
INSERT_KEY_SQL = insert_sql(_IDEMPOTENCY)


# --- reads ---


_CASE_COLUMNS = tuple(c.name for c in CaseRow.__table__.columns)  # type: ignore[attr-defined]
_CASE_BY_RECEIPT = f"SELECT {', '.join(_CASE_COLUMNS)} FROM case_record WHERE receipt = ?"


def read_case_row(s: Unit, receipt: str) -> CaseRow | None:
    """The case's row to read, not to change: plain SQL, its columns read as attributes (as
    ``case_history.state_of`` does), since the ORM's identity-map lookup cost ten times building
    a record from it. Pending ORM changes are flushed first (``unit.query``), so the row is the
    session's. A row to change is ``load_case_row``'s."""
    rows = query(s, _CASE_BY_RECEIPT, (receipt,))
    return cast(CaseRow, SimpleNamespace(**dict(zip(_CASE_COLUMNS, rows[0])))) if rows else None


def get_case(s: Unit, receipt: str) -> CaseRecord | None:
    row = read_case_row(s, receipt)  # every look at a case passes here
    return record_from_row(row) if row is not None else None


_EVENTS_OF = ("SELECT seq, action, from_status, to_status, actor, reason, detail, happened_at, recorded_at, origin "
              "FROM case_event WHERE receipt = ? ORDER BY seq")


def events(s: Unit, receipt: str) -> list[StoredEvent]:
    # Plain SQL: a case's history is read with the case at every look at it.
    return [StoredEvent(seq, action, from_status, to_status, actor, reason, json.loads(detail), happened_at,
                        recorded_at, origin)
            for seq, action, from_status, to_status, actor, reason, detail, happened_at, recorded_at, origin
            in query(s, _EVENTS_OF, (receipt,))]


def list_cases(
    s: Unit,
    *,
    statuses: Collection[str] = (),
    item_code: str = "",
    department: str = "",
    due_before: date | None = None,
    after_receipt: str = "",
    limit: int = 100,
    not_statuses: Collection[str] = (),
    after_green: bool = False,
) -> list[CaseRecord]:
    """Cases matching every given filter (``statuses``: any of them; ``not_statuses``: none of
    them), in the work queue's order: green-channel cases (绿色通道) first, then the others, each
    in receipt order; after ``after_receipt`` in the green part (``after_green``) or in the others."""
    # The rows as columns (a Core select), not ORM objects: a page of a thousand cases spent
    # most of its time building and tracking objects that are only read into records.
    chosen = sa_select(*CaseRow.__table__.columns)  # type: ignore[attr-defined]
    if statuses:
        chosen = chosen.where(col(CaseRow.status).in_(sorted(statuses)))
    if not_statuses:
        chosen = chosen.where(col(CaseRow.status).not_in(sorted(not_statuses)))
    if item_code:
        chosen = chosen.where(col(CaseRow.item_code) == item_code)
    if department:
        chosen = chosen.where(col(CaseRow.department) == department)
    if due_before:
        chosen = chosen.where(col(CaseRow.due).is_not(None), col(CaseRow.due) <= due_before.isoformat())
    green = col(CaseRow.green_channel)
    if after_receipt and after_green:
        chosen = chosen.where(or_(and_(green, col(CaseRow.receipt) > after_receipt), not_(green)))
    elif after_receipt:
        chosen = chosen.where(not_(green), col(CaseRow.receipt) > after_receipt)
    chosen = chosen.order_by(green.desc(), CaseRow.receipt).limit(limit)
    return [record_from_row(cast(CaseRow, r)) for r in s.execute(chosen).all()]


def count_cases(s: Unit) -> int:
    return s.exec(select(func.count()).select_from(CaseRow)).one()


# --- counts the node's gauges show ---


def count_by_status_and_type(s: Unit) -> list[tuple[str, str, int]]:
    """(status, case type, how many) over every case in this store."""
    return [(r[0], r[1], int(r[2])) for r in
            query(s, "SELECT status, case_type, count(*) FROM case_record GROUP BY status, case_type")]


def count_overdue(s: Unit, owner: str, today: date, finished: tuple[str, ...]) -> int:
    """Cases ``owner`` owns whose due date has passed and that are still waiting for it
    (their status is not one of ``finished``)."""
    marks = ", ".join("?" for _ in finished)
    sql = (f"SELECT count(*) FROM case_record WHERE owner = ? AND due IS NOT NULL AND due < ? "
           f"AND status NOT IN ({marks})")
    return int(query(s, sql, (owner, today.isoformat(), *finished))[0][0])


def count_open_alarms(s: Unit, alarm_actions: tuple[str, ...], running: tuple[str, ...]) -> int:
    """Alarm events (any of ``alarm_actions``) on cases still running: an alarm is an event
    on its case, and it stays open while the case runs (as ``govnet alarms`` shows it) — a
    yellow or red card only while it speaks of the case's due date (``deadlines.card_is_current``:
    one raised on a due date counted again since is history)."""
    sql = ("SELECT count(*) FROM case_event e JOIN case_record c ON c.receipt = e.receipt "
           f"WHERE e.action IN ({', '.join('?' for _ in alarm_actions)}) AND NOT e.superseded "
           f"AND c.status IN ({', '.join('?' for _ in running)}) "
           "AND (e.action NOT IN ('warn', 'overdue') OR json_extract(e.detail, '$.due') IS c.due)")
    return int(query(s, sql, (*alarm_actions, *running))[0][0])


def count_summaries_by_status(s: Unit) -> list[tuple[str, int]]:
    """(status, how many) over the case summaries held for the subtree (supervision)."""
    return [(r[0], int(r[1])) for r in query(s, "SELECT status, count(*) FROM case_summary GROUP BY status")]


def newest_summary_update(s: Unit) -> str | None:
    """When the most recently updated case summary was updated (None: no summaries)."""
    newest: str | None = query(s, "SELECT max(updated_at) FROM case_summary")[0][0]
    return newest


# --- intake and change (the hot path) ---


def find_idempotency(s: Unit, key: str) -> tuple[str, str] | None:
    """(request hash, receipt) recorded for an idempotency key, if any."""
    row = _db(s).execute("SELECT request_hash, receipt FROM idempotency_key WHERE key = ?", (key,)).fetchone()
    return (row[0], row[1]) if row else None


def record_idempotency(s: Unit, key: str, request_hash: str, receipt: str, now: datetime) -> None:
    insert_rows(s, INSERT_KEY_SQL, {"key": key, "request_hash": request_hash, "receipt": receipt,
                                    "created_at": utc_text(now)})


def find_recent_duplicate(s: Unit, applicant_id: str, item_code: str, since: datetime) -> str | None:
    """The latest receipt for the same applicant and item submitted at or after ``since``."""
    row = _db(s).execute(
        "SELECT receipt FROM case_record WHERE applicant_id = ? AND item_code = ? AND submitted_at >= ? "
        "ORDER BY submitted_at DESC LIMIT 1",
        (applicant_id, item_code, utc_text(since)),
    ).fetchone()
    return row[0] if row else None


def load_case_row(s: Unit, receipt: str) -> CaseRow | None:
    return s.get(CaseRow, receipt)


def case_columns(record: CaseRecord, now: datetime) -> dict[str, Any]:
    """Every column of a case's row, as stored."""
    return dict(
        receipt=record.state.receipt,
        item_name=record.item_name,
        department=record.department,
        applicant_name=record.applicant.name,
        applicant_id=record.applicant.id_number,
        applicant_phone=record.applicant.phone,
        possible_duplicate=record.possible_duplicate,
        duplicate_of=record.duplicate_of,
        **state_columns(record.state, now),
    )


def insert_case(s: Unit, record: CaseRecord, now: datetime) -> dict[str, Any]:
    """Insert a new case (hot path: no ORM object); returns its columns."""
    columns = case_columns(record, now)
    insert_rows(s, INSERT_CASE_SQL, columns)
    return columns


def update_case(s: Unit, row: CaseRow, state: CaseState, now: datetime) -> None:
    for key, value in state_columns(state, now).items():
        setattr(row, key, value)
    s.add(row)


def append_event(s: Unit, meta: StoreMeta, receipt: str, seq: int, draft: EventDraft, now: datetime,
                 happened: datetime | None = None) -> dict[str, Any]:
    """Append one event (a Core insert: history is append-only); returns its columns.
    ``happened``: when it happened, if earlier than ``now`` (entered later, back-filled)."""
    row = dict(
        receipt=receipt,
        seq=seq,
        action=draft.action,
        from_status=draft.from_status,
        to_status=draft.to_status,
        actor=draft.actor,
        reason=draft.reason,
        detail=json.dumps(dict(draft.detail), ensure_ascii=False, sort_keys=True),
        happened_at=utc_text(happened or now),
        recorded_at=utc_text(now),
        origin=meta.node_id,
        origin_incarnation=meta.incarnation,
        origin_seq=next_value(s, "event_seq"),
        superseded=False,
    )
    audit.link_new(s, row)  # its place in this node's audit chain, in this same unit
    insert_rows(s, INSERT_EVENT_SQL, row)
    return row


def state_columns(st: CaseState, now: datetime) -> dict[str, Any]:
    return {
        "item_code": st.item_code,
        "case_type": st.case_type.value,
        "status": st.status.value,
        "origin": st.origin,
        "owner": st.owner,
        "owner_epoch": st.owner_epoch,
        "agent": st.agent,
        "materials": json.dumps(list(st.materials), ensure_ascii=False),
        "missing_core": json.dumps(list(st.missing_core), ensure_ascii=False),
        "pending_materials": json.dumps(list(st.pending_materials), ensure_ascii=False),
        "requested_materials": json.dumps(list(st.requested_materials), ensure_ascii=False),
        "joint": json.dumps([list(j) for j in st.joint], ensure_ascii=False),
        "submitted_at": utc_text(st.submitted_at),
        "accepted_on": _date_text(st.accepted_on),
        "decided_on": _date_text(st.decided_on),
        "due": _date_text(st.due),
        "statutory_due": _date_text(st.statutory_due),
        "supplement_due": _date_text(st.supplement_due),
        "issue_due": _date_text(st.issue_due),
        "pause_started": _date_text(st.pause_started),
        "paused_days": st.paused_days,
        "extended": st.extended,
        "decision": st.decision,
        "decision_reason": st.decision_reason,
        "notice": st.notice,
        "catalog_version": st.catalog_version,
        "catalog_issuer": st.catalog_issuer,
        "event_count": st.event_count,
        "updated_at": utc_text(now),
        "fees_due_fen": st.fees_due_fen,
        "fees_paid_fen": st.fees_paid_fen,
        "fees_waived": st.fees_waived,
        "green_channel": st.green_channel,
    }


def record_from_row(r: CaseRow) -> CaseRecord:
    state = CaseState(
        receipt=r.receipt,
        item_code=r.item_code,
        case_type=CaseType(r.case_type),
        status=Status(r.status),
        origin=r.origin,
        owner=r.owner,
        owner_epoch=r.owner_epoch,
        submitted_at=datetime.fromisoformat(r.submitted_at),
        catalog_version=r.catalog_version,
        catalog_issuer=r.catalog_issuer,
        materials=tuple(json.loads(r.materials)),
        agent=r.agent,
        missing_core=tuple(json.loads(r.missing_core)),
        pending_materials=tuple(json.loads(r.pending_materials)),
        requested_materials=tuple(json.loads(r.requested_materials)),
        joint=tuple(tuple(j) for j in json.loads(r.joint)),
        due=_date(r.due),
        statutory_due=_date(r.statutory_due),
        supplement_due=_date(r.supplement_due),
        issue_due=_date(r.issue_due),
        pause_started=_date(r.pause_started),
        paused_days=r.paused_days,
        extended=bool(r.extended),  # SQLite's 0 or 1 when the row was read as plain SQL
        decision=r.decision,
        decision_reason=r.decision_reason,
        notice=r.notice,
        accepted_on=_date(r.accepted_on),
        decided_on=_date(r.decided_on),
        event_count=r.event_count,
        fees_due_fen=r.fees_due_fen,
        fees_paid_fen=r.fees_paid_fen,
        fees_waived=bool(r.fees_waived),
        green_channel=bool(r.green_channel),
    )
    applicant = Applicant(r.applicant_name, r.applicant_id, r.applicant_phone)
    return CaseRecord(state, applicant, r.item_name, r.department, bool(r.possible_duplicate), r.duplicate_of)


def work_queue(s: Unit, owner: str, finished: tuple[str, ...], *, status: str = "", department: str = "",
               due_before: date | None = None, limit: int = 200) -> list[CaseRecord]:
    """The cases ``owner`` owns that are still being worked on (status not in ``finished``), most
    urgent first: green-channel cases (绿色通道) on top, then by due date, then receipt; cases
    without a due date after them. The console's work queue. Walks of ``ix_case_owner_due`` in its
    order, each stopping at ``limit``, so the page costs the same at 100 cases as at 100,000."""

    def walk(dated: bool | None, room: int) -> list[CaseRow]:
        """``dated`` None: the green-channel cases (few: they go first, whatever their due date)."""
        chosen = select(CaseRow).where(CaseRow.owner == owner, col(CaseRow.status).not_in(finished),
                                       CaseRow.green_channel == (dated is None))
        if status:
            chosen = chosen.where(CaseRow.status == status)
        if department:
            chosen = chosen.where(CaseRow.department == department)
        if dated is not None:
            chosen = chosen.where(col(CaseRow.due).is_not(None) if dated else col(CaseRow.due).is_(None))
        if due_before and dated is not False:
            chosen = chosen.where(col(CaseRow.due) <= due_before.isoformat())
        return list(s.exec(chosen.order_by(col(CaseRow.due), CaseRow.receipt).limit(room)).all())

    rows = walk(None, limit)
    rows += walk(True, limit - len(rows))
    if len(rows) < limit and due_before is None:
        rows += walk(False, limit - len(rows))
    return [record_from_row(r) for r in rows]


def awaiting_delivery(s: Unit, origin: str, *, limit: int = 200) -> list[CaseRecord]:
    """The cases applied for at ``origin`` whose result waits to be handed over there (一窗出件):
    completed, whoever owns them, and not yet delivered at this window; oldest receipt first."""
    handed = select(WindowDelivery.receipt)
    chosen = select(CaseRow).where(CaseRow.status == Status.COMPLETED.value, CaseRow.origin == origin,
                                   col(CaseRow.receipt).not_in(handed))
    return [record_from_row(r) for r in s.exec(chosen.order_by(CaseRow.receipt).limit(limit)).all()]
