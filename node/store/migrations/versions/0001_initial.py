"""Initial node store: meta, counters, catalog versions, cases, their events, idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _text(name: str, nullable: bool = False, default: str | None = None) -> sa.Column:
    return sa.Column(name, sa.String(), nullable=nullable, server_default=default)


def upgrade() -> None:
    op.create_table("meta", _text("key"), _text("value"), sa.PrimaryKeyConstraint("key"))
    op.create_table(
        "counter",
        _text("name"),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "catalog_version",
        sa.Column("version", sa.Integer(), nullable=False),
        _text("issuer"),
        _text("published_at"),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "catalog_item",
        sa.Column("version", sa.Integer(), nullable=False),
        _text("code"),
        _text("department"),
        _text("authority_level"),
        _text("item_type"),
        _text("data"),
        sa.ForeignKeyConstraint(["version"], ["catalog_version.version"]),
        sa.PrimaryKeyConstraint("version", "code"),
    )
    op.create_table(
        "case_record",
        _text("receipt"),
        _text("item_code"),
        _text("item_name"),
        _text("department"),
        _text("case_type"),
        _text("status"),
        _text("origin"),
        _text("owner"),
        sa.Column("owner_epoch", sa.Integer(), nullable=False),
        _text("agent"),
        _text("applicant_name"),
        _text("applicant_id"),
        _text("applicant_phone"),
        _text("materials"),
        _text("missing_core"),
        _text("pending_materials"),
        _text("requested_materials"),
        _text("joint"),
        _text("submitted_at"),
        _text("accepted_on", nullable=True),
        _text("decided_on", nullable=True),
        _text("due", nullable=True),
        _text("statutory_due", nullable=True),
        _text("supplement_due", nullable=True),
        _text("issue_due", nullable=True),
        _text("pause_started", nullable=True),
        sa.Column("paused_days", sa.Integer(), nullable=False),
        sa.Column("extended", sa.Boolean(), nullable=False),
        _text("decision"),
        _text("decision_reason"),
        _text("notice"),
        sa.Column("catalog_version", sa.Integer(), nullable=False),
        sa.Column("possible_duplicate", sa.Boolean(), nullable=False),
        _text("duplicate_of"),
        sa.Column("event_count", sa.Integer(), nullable=False),
        _text("updated_at"),
        sa.PrimaryKeyConstraint("receipt"),
    )
    op.create_index("ix_case_status_due", "case_record", ["status", "due"])
    op.create_index("ix_case_applicant_item", "case_record", ["applicant_id", "item_code"])
    op.create_index("ix_case_department", "case_record", ["department"])
    op.create_table(
        "case_event",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("receipt"),
        sa.Column("seq", sa.Integer(), nullable=False),
        _text("action"),
        _text("from_status"),
        _text("to_status"),
        _text("actor"),
        _text("reason"),
        _text("detail"),
        _text("happened_at"),
        _text("recorded_at"),
        _text("origin"),
        sa.Column("origin_incarnation", sa.Integer(), nullable=False),
        sa.Column("origin_seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["receipt"], ["case_record.receipt"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("receipt", "seq", name="uq_case_event_seq"),
        sa.UniqueConstraint("origin", "origin_incarnation", "origin_seq", name="uq_case_event_identity"),
    )
    op.create_table(
        "idempotency_key",
        _text("key"),
        _text("request_hash"),
        _text("receipt"),
        _text("created_at"),
        sa.ForeignKeyConstraint(["receipt"], ["case_record.receipt"]),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    for table in ("idempotency_key", "case_event", "case_record", "catalog_item", "catalog_version", "counter", "meta"):
        op.drop_table(table)
