"""The revocation lists a node holds: one row per CA, only ever replaced by a higher number.
Helpers take the caller's session and never commit."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from govnet.node.store.models import RevocationList
from govnet.node.store.unit import utc_text


def lists(s: Session) -> list[RevocationList]:
    return list(s.exec(select(RevocationList)).all())


def keep_newer(s: Session, issuer: str, number: int, bundle: str, now: datetime) -> bool:
    """Store ``bundle`` as ``issuer``'s list if it is newer than the one held; True if it was."""
    row = s.get(RevocationList, issuer)
    if row is not None and row.number >= number:
        return False
    if row is None:
        row = RevocationList(issuer=issuer, number=number, bundle=bundle, received_at=utc_text(now))
    else:
        row.number, row.bundle, row.received_at = number, bundle, utc_text(now)
    s.add(row)
    return True
