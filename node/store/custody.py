"""Cases kept in custody for a child (``case_custody``): the newest whole form of each case a
child owns where it was received, as the child sent it. The SQL of ``node.app.replication``'s
custody lives here; helpers take the caller's session and never commit."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from govnet.node.store.unit import execute, query, utc_text

# Keep the newest form: a later epoch, or more events at the same one (repeats and late
# arrivals change nothing).
_KEEP = (
    "INSERT INTO case_custody (receipt, origin, owner_epoch, event_count, payload, kept_at) "
    "VALUES (:receipt, :origin, :owner_epoch, :event_count, :payload, :kept_at) "
    "ON CONFLICT (receipt) DO UPDATE SET origin = excluded.origin, owner_epoch = excluded.owner_epoch, "
    "event_count = excluded.event_count, payload = excluded.payload, kept_at = excluded.kept_at "
    "WHERE (excluded.owner_epoch, excluded.event_count) > (case_custody.owner_epoch, case_custody.event_count)"
)


def keep(s: Session, receipt: str, origin: str, epoch: int, event_count: int, payload: bytes, now: datetime) -> bool:
    """Keep this form of the case if it is newer than the one held; returns whether it was."""
    return bool(execute(s, _KEEP, {"receipt": receipt, "origin": origin, "owner_epoch": epoch,
                                   "event_count": event_count, "payload": payload, "kept_at": utc_text(now)}))


def still_owned_by(s: Session, child: str) -> list[tuple[str, bytes]]:
    """The receipts and custody payloads of the cases ``child`` still owns, by receipt. A case it
    handed over since (the summary held here names another owner) is left out: its new owner
    sends it back."""
    rows = query(s, "SELECT c.receipt, c.payload FROM case_custody c LEFT JOIN case_summary m "
                    "ON m.receipt = c.receipt WHERE c.origin = ? AND (m.receipt IS NULL OR m.owner = c.origin) "
                    "ORDER BY c.receipt", (child,))
    return [(r, bytes(p)) for r, p in rows]
