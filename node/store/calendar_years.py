"""The calendar years published down the tree, one row per year. Helpers take the caller's
session and never commit."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from govnet.node.store.models import CalendarYear
from govnet.node.store.unit import query, utc_text


def published_years(s: Session) -> list[CalendarYear]:
    return list(s.exec(select(CalendarYear).order_by(col(CalendarYear.year))).all())


def published_year(s: Session, year: int) -> CalendarYear | None:
    return s.get(CalendarYear, year)


def keep_year(s: Session, year: int, issuer: str, schedule: str, published_at: str, now: datetime) -> None:
    """Store a year not held yet (the caller has checked that it is not)."""
    s.add(CalendarYear(year=year, issuer=issuer, schedule=schedule, published_at=published_at,
                       received_at=utc_text(now)))


def owned_receipts(s: Session, owner: str, statuses: tuple[str, ...], reaching: str, also: str) -> list[str]:
    """The cases ``owner`` owns in one of ``statuses`` with a due date on or after ``reaching``
    (ISO), or in status ``also`` whatever their dates, in receipt order: those whose due dates
    may need counting again."""
    marks = ", ".join("?" for _ in statuses)
    return [r for (r,) in query(s, f"""
        SELECT receipt FROM case_record WHERE owner = ? AND status IN ({marks})
          AND (due >= ? OR statutory_due >= ? OR supplement_due >= ? OR issue_due >= ? OR status = ?)
        ORDER BY receipt""", (owner, *statuses, reaching, reaching, reaching, reaching, also))]


def count_due_outside(s: Session, owner: str, years: frozenset[int], finished: tuple[str, ...]) -> int:
    """Cases ``owner`` owns, not finished, whose due date lies outside ``years`` (the years with
    an official schedule): their due dates are provisional."""
    finished_marks = ", ".join("?" for _ in finished)
    year_marks = ", ".join("?" for _ in years) or "-1"  # no year covered: every due date
    sql = (f"SELECT count(*) FROM case_record WHERE owner = ? AND due IS NOT NULL "
           f"AND status NOT IN ({finished_marks}) "
           f"AND CAST(substr(due, 1, 4) AS INTEGER) NOT IN ({year_marks})")
    return int(query(s, sql, (owner, *finished, *sorted(years)))[0][0])
