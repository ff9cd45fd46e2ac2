"""The audit chain: every event's place and link hash, this node's head, its descendants' heads.

Existing events are chained here, in the order this node appended them (``id``), with the
default algorithm (SHA-256); a store configured for SM3 is chained with SM3 only if it has
no events yet (``node.app.audit.use_algorithm``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from govnet.node.domain.audit import CHAINED_FIELDS, DEFAULT_ALGORITHM, GENESIS, link

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("case_event", sa.Column("chain_pos", sa.Integer(), nullable=True))
    op.add_column("case_event", sa.Column("chain_hash", sa.String(), nullable=True))
    op.create_index("ix_case_event_unchained", "case_event", ["id"], sqlite_where=sa.text("chain_pos IS NULL"))
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("head", sa.String(), nullable=False),
        sa.Column("sent_count", sa.Integer(), nullable=False),
        sa.Column("sent_event_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_peer_head",
        sa.Column("node", sa.String(), nullable=False),
        sa.Column("incarnation", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("head", sa.String(), nullable=False),
        sa.Column("kept_by_incarnation", sa.Integer(), nullable=False),
        sa.Column("origin_seq", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.String(), nullable=False),
        sa.Column("broken", sa.String(), nullable=False),
        sa.Column("broken_at", sa.String(), nullable=True),
        sa.Column("breaks", sa.Integer(), nullable=False),
        sa.Column("restores", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("node"),
    )
    conn = op.get_bind()
    head, count = GENESIS, 0
    rows = conn.exec_driver_sql(f"SELECT id, {', '.join(CHAINED_FIELDS)} FROM case_event ORDER BY id").fetchall()
    for row in rows:
        count += 1
        head = link(DEFAULT_ALGORITHM, head, dict(zip(CHAINED_FIELDS, row[1:])))
        conn.exec_driver_sql("UPDATE case_event SET chain_pos = ?, chain_hash = ? WHERE id = ?", (count, head, row[0]))
    conn.exec_driver_sql("INSERT INTO audit_head (id, algorithm, count, head, sent_count, sent_event_id) "
                         "VALUES (1, ?, ?, ?, 0, 0)", (DEFAULT_ALGORITHM, count, head))


def downgrade() -> None:
    op.drop_table("audit_peer_head")
    op.drop_table("audit_head")
    op.drop_index("ix_case_event_unchained", table_name="case_event")
    with op.batch_alter_table("case_event") as batch:
        batch.drop_column("chain_hash")
        batch.drop_column("chain_pos")
