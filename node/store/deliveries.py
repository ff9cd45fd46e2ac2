"""Window deliveries (``window_delivery``): results handed over at the window where the
applicant applied, of cases owned elsewhere. Helpers take the caller's session and never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from govnet.node.store.models import WindowDelivery
from govnet.node.store.unit import query, utc_text


@dataclass(frozen=True)
class Delivered:
    """The result of a case handed over at this window: who handed it over, and when (RFC 3339, UTC)."""

    actor: str
    at: str


def record(s: Session, receipt: str, actor: str, delivered_at: datetime, now: datetime) -> Delivered:
    s.add(WindowDelivery(receipt=receipt, actor=actor, delivered_at=utc_text(delivered_at), recorded_at=utc_text(now)))
    return Delivered(actor, utc_text(delivered_at))


def delivered_here(s: Session, receipt: str) -> Delivered | None:
    """The delivery this window recorded of ``receipt``, if any."""
    # Plain SQL: every read of a case at its window asks (``CaseDesk.seen_here``), and the
    # ORM's identity-map lookup cost several times the query.
    rows = query(s, "SELECT actor, delivered_at FROM window_delivery WHERE receipt = ?", (receipt,))
    return Delivered(*rows[0]) if rows else None
