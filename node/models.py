"""The node's tables (SQLModel), as migration 0001 creates them.

Changing a table here means adding an alembic revision under ``node/migrations/versions``:
a data directory written by an earlier release is upgraded on start, never recreated.
Lists travel as JSON text columns; dates as ISO ``YYYY-MM-DD`` text and instants as
RFC 3339 text in UTC, so the SQLite file reads the same from any tool.
"""

from __future__ import annotations

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class Meta(SQLModel, table=True):
    """Facts about this store: node id, level, incarnation, creation time."""

    __tablename__ = "meta"
    key: str = Field(primary_key=True)
    value: str


class Counter(SQLModel, table=True):
    """Gapless per-store sequences (receipt numbers, event identities)."""

    __tablename__ = "counter"
    name: str = Field(primary_key=True)
    value: int = 0


class CatalogVersion(SQLModel, table=True):
    __tablename__ = "catalog_version"
    version: int = Field(primary_key=True)
    issuer: str
    published_at: str
    item_count: int


class CatalogItemRow(SQLModel, table=True):
    __tablename__ = "catalog_item"
    version: int = Field(primary_key=True, foreign_key="catalog_version.version")
    code: str = Field(primary_key=True)
    department: str
    authority_level: str
    item_type: str
    data: str  # the whole item as JSON (ServiceItem.to_dict)


class CaseRow(SQLModel, table=True):
    __tablename__ = "case_record"
    __table_args__ = (
        Index("ix_case_status_due", "status", "due"),
        Index("ix_case_applicant_item", "applicant_id", "item_code"),
        Index("ix_case_department", "department"),
    )
    receipt: str = Field(primary_key=True)
    item_code: str
    item_name: str
    department: str
    case_type: str
    status: str
    origin: str
    owner: str
    owner_epoch: int
    agent: str = ""
    applicant_name: str
    applicant_id: str
    applicant_phone: str
    materials: str = "[]"
    missing_core: str = "[]"
    pending_materials: str = "[]"
    requested_materials: str = "[]"
    joint: str = "[]"
    submitted_at: str
    accepted_on: str | None = None
    decided_on: str | None = None
    due: str | None = None
    statutory_due: str | None = None
    supplement_due: str | None = None
    issue_due: str | None = None
    pause_started: str | None = None
    paused_days: int = 0
    extended: bool = False
    decision: str = ""
    decision_reason: str = ""
    notice: str = ""
    catalog_version: int
    possible_duplicate: bool = False
    duplicate_of: str = ""
    event_count: int = 0
    updated_at: str


class CaseEventRow(SQLModel, table=True):
    """Append-only history. (origin, incarnation, origin_seq) is the event's global identity."""

    __tablename__ = "case_event"
    __table_args__ = (
        UniqueConstraint("receipt", "seq", name="uq_case_event_seq"),
        UniqueConstraint("origin", "origin_incarnation", "origin_seq", name="uq_case_event_identity"),
    )
    id: int | None = Field(default=None, primary_key=True)
    receipt: str = Field(foreign_key="case_record.receipt")
    seq: int
    action: str
    from_status: str
    to_status: str
    actor: str
    reason: str = ""
    detail: str = "{}"
    happened_at: str
    recorded_at: str
    origin: str
    origin_incarnation: int
    origin_seq: int


class IdempotencyKey(SQLModel, table=True):
    """A client's idempotency key, bound to the hash of the request it came with."""

    __tablename__ = "idempotency_key"
    key: str = Field(primary_key=True)
    request_hash: str
    receipt: str = Field(foreign_key="case_record.receipt")
    created_at: str
