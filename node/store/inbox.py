"""The inbox's tables: received batches waiting to be applied, inbound cursors, the quarantine.

The SQL of ``node.app.inbox`` (which says how receiving and applying work). A batch goes in
as plain SQL, in one insert (every batch passes here); the models stay the schema's
definition: the import fails if the two ever disagree. Helpers take the caller's session
and never commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from govnet.node.store.models import InboxRow, QuarantineRow
from govnet.node.store.unit import execute, query, utc_text
from govnet.sync.cursor import Cursor
from govnet.sync.envelope import Received

_COLUMNS = ("link", "first_seq", "last_seq", "count", "applied", "envelopes", "received_at")
assert set(_COLUMNS) == {c.name for c in InboxRow.__table__.columns} - {"id"}  # type: ignore[attr-defined]
_INSERT = f"INSERT INTO inbox ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
_SAVE_CURSOR = (
    "INSERT INTO inbound_cursor (link, incarnation, through, above, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (link, incarnation) DO UPDATE SET through = excluded.through, above = excluded.above, "
    "updated_at = excluded.updated_at"
)
_NEXT_BATCH = "SELECT id, link, applied, count, envelopes FROM inbox WHERE id > ? ORDER BY id LIMIT 1"


def fits(n: int) -> bool:
    """Whether ``n`` fits an SQLite INTEGER."""
    return -(2**63) <= n < 2**63


def _fit(n: int) -> int:
    """``n`` for an INTEGER column (a batch's first and last position, a quarantined envelope's
    numbers): -1 when it does not fit (a quarantine entry's error says what it was)."""
    return n if fits(n) else -1


# --- cursors ---


def inbound_cursor(s: Session, link: str, incarnation: int) -> Cursor:
    """What this node has stored of a neighbour's stream (of one incarnation of it)."""
    found = query(s, "SELECT through, above FROM inbound_cursor WHERE link = ? AND incarnation = ?", (link, incarnation))
    return Cursor.of(found[0][0], json.loads(found[0][1])) if found else Cursor()


def save_cursor(s: Session, link: str, incarnation: int, cursor: Cursor, at: str) -> None:
    execute(s, _SAVE_CURSOR, (link, incarnation, cursor.through, json.dumps(sorted(cursor.above)), at))


# --- batches ---


@dataclass(frozen=True)
class StoredBatch:
    id: int
    link: str
    applied: int  # envelopes of it applied so far (the first ones)
    count: int
    envelopes: bytes  # sync.transport.wire.encode_envelopes


def waiting(s: Session) -> int:
    """Envelopes received and not yet applied."""
    return int(query(s, "SELECT coalesce(sum(count - applied), 0) FROM inbox")[0][0])


def holds_from(s: Session, link: str) -> bool:
    """Whether envelopes received from ``link`` wait to be applied."""
    return bool(query(s, "SELECT 1 FROM inbox WHERE link = ? LIMIT 1", (link,)))


def store_batch(s: Session, link: str, seqs: set[int], envelopes: bytes, received_at: str) -> None:
    """A batch of ``len(seqs)`` envelopes at those link positions, encoded, none applied yet."""
    execute(s, _INSERT, (link, _fit(min(seqs)), _fit(max(seqs)), len(seqs), 0, envelopes, received_at))


def next_batch(s: Session, after_id: int) -> StoredBatch | None:
    """The oldest batch after ``after_id`` (0: the oldest of all)."""
    found = query(s, _NEXT_BATCH, (after_id,))
    return StoredBatch(*found[0]) if found else None


def mark_applied(s: Session, batch: StoredBatch, applied: int) -> None:
    """``applied`` envelopes of ``batch`` are applied now: the batch goes once all are."""
    if applied >= batch.count:
        execute(s, "DELETE FROM inbox WHERE id = ?", (batch.id,))
    else:
        execute(s, "UPDATE inbox SET applied = ? WHERE id = ?", (applied, batch.id))


# --- the quarantine ---


def quarantine(s: Session, link: str, env: Received, error: str, now: datetime, *, reason: str = "apply",
               kind: str | None = None, size: int = 0) -> None:
    """Set ``env`` aside with the reason it could not be applied (``reason`` ``withheld``: it is
    the marker of an envelope of ``kind`` and ``size`` bytes that its sender withheld)."""
    s.add(QuarantineRow(link=link, seq=_fit(env.seq), origin=env.origin,
                        origin_incarnation=_fit(env.origin_incarnation), origin_seq=_fit(env.origin_seq),
                        kind=kind or env.kind, target=env.target, case_key=env.case_key, priority=_fit(env.priority),
                        payload=env.payload.decode("utf-8", errors="backslashreplace"),
                        created_at=env.created_at, error=error[:2000], quarantined_at=utc_text(now),
                        reason=reason, size=size or len(env.payload)))


def quarantined(s: Session) -> list[QuarantineRow]:
    """What waits in the quarantine (not replayed), oldest first."""
    return list(s.exec(select(QuarantineRow).where(col(QuarantineRow.replayed_at).is_(None))
                       .order_by(col(QuarantineRow.id))).all())


def quarantined_item(s: Session, item_id: int) -> QuarantineRow | None:
    """A quarantined envelope still waiting (None: no such item, or replayed already)."""
    row = s.get(QuarantineRow, item_id)
    return row if row is not None and row.replayed_at is None else None


def record_replay(s: Session, row: QuarantineRow, error: str, now: datetime) -> None:
    """A replay's outcome: applied (``error`` empty), or failed again with ``error``."""
    if error:
        row.error = error[:2000]
    else:
        row.replayed_at = utc_text(now)
    s.add(row)
