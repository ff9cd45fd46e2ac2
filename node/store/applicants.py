"""Applicants owed to their owners (``applicant_owed``; ``node.app.keyring`` decides when).
Helpers take the caller's session and never commit."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from govnet.node.domain.messages import PERSONAL_FIELDS
from govnet.node.store.models import ApplicantOwed
from govnet.node.store.unit import execute, utc_text


def owe(s: Session, receipt: str, now: datetime) -> None:
    """Note that ``receipt``'s owner lacks the applicant (once: a second note changes nothing)."""
    if s.get(ApplicantOwed, receipt) is None:
        s.add(ApplicantOwed(receipt=receipt, recorded_at=utc_text(now)))


def owed(s: Session) -> list[str]:
    """The receipts whose applicant is owed, oldest note first."""
    rows = s.exec(select(ApplicantOwed).order_by(col(ApplicantOwed.recorded_at), col(ApplicantOwed.receipt)))
    return [r.receipt for r in rows.all()]


def paid(s: Session, receipt: str) -> None:
    row = s.get(ApplicantOwed, receipt)
    if row is not None:
        s.delete(row)


_SET = ", ".join(f"{f} = :{f}" for f in PERSONAL_FIELDS)
_NONE = " AND ".join(f"{f} = ''" for f in PERSONAL_FIELDS)
_FILL = f"UPDATE case_record SET {_SET} WHERE receipt = :receipt AND {_NONE}"


def fill_applicant(s: Session, receipt: str, values: dict[str, str]) -> bool:
    """Write the applicant of a held case that has none (one held is never overwritten); True if written."""
    return execute(s, _FILL, {**values, "receipt": receipt}) > 0
