"""Store-and-forward: outbox, inbound cursors, applied envelopes, link states,
registered children, quarantine, and case summaries held for descendants.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _s(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(), nullable=nullable)


def _i(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("case_event") as batch:
        batch.add_column(sa.Column("superseded", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "outbox", _s("link"), _i("seq"), _s("origin"), _i("origin_incarnation"), _i("origin_seq"),
        _s("kind"), _s("target"), _s("case_key"), _i("priority"), _s("payload"), _s("created_at"),
        sa.PrimaryKeyConstraint("link", "seq"),
    )
    op.create_table(
        "inbound_cursor", _s("link"), _i("incarnation"), _i("through"), _s("above"), _s("updated_at"),
        sa.PrimaryKeyConstraint("link", "incarnation"),
    )
    op.create_table(
        "applied_envelope", _s("origin"), _i("origin_incarnation"), _i("origin_seq"), _s("payload_hash"),
        _s("applied_at"), sa.PrimaryKeyConstraint("origin", "origin_incarnation", "origin_seq"),
    )
    op.create_table(
        "link_state", _s("neighbour"), _s("health"), _s("since", True), _i("failures"),
        _s("next_attempt", True), _s("last_success", True), _s("last_error"),
        sa.PrimaryKeyConstraint("neighbour"),
    )
    op.create_table(
        "child_link", _s("child_id"), _s("level"), _i("incarnation"), _i("protocol_version"),
        _i("catalog_version"), _s("registered_at"), _s("last_seen"), sa.PrimaryKeyConstraint("child_id"),
    )
    op.create_table(
        "quarantine", sa.Column("id", sa.Integer(), nullable=False), _s("link"), _i("seq"), _s("origin"),
        _i("origin_incarnation"), _i("origin_seq"), _s("kind"), _s("target"), _s("case_key"), _i("priority"),
        _s("payload"), _s("created_at"), _s("error"), _s("quarantined_at"), _s("replayed_at", True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "case_summary", _s("receipt"), _s("origin"), _s("owner"), _i("owner_epoch"), _s("item_code"),
        _s("department"), _s("case_type"), _s("status"), _s("due", True), _s("submitted_at"),
        _s("decided_on", True), _i("event_count"), _s("state"), _s("updated_at"),
        sa.PrimaryKeyConstraint("receipt"),
    )
    op.create_index("ix_case_summary_origin", "case_summary", ["origin"])


def downgrade() -> None:
    with op.batch_alter_table("case_event") as batch:
        batch.drop_column("superseded")
    op.drop_index("ix_case_summary_origin", "case_summary")
    for table in ("case_summary", "quarantine", "child_link", "link_state", "applied_envelope",
                  "inbound_cursor", "outbox"):
        op.drop_table(table)
