"""Statistics: per-node rows per day × item × department, and each node's latest report.

A node writes its own rows; ancestors keep their subtree's, the highest version per key
(see federation/rollup.py). Counter columns are written out here, not taken from
node/statistics.py, so this revision stays what it was when it shipped.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COUNTERS = (
    "received", "accepted", "immediate", "completed", "on_time", "overdue", "warnings", "returned", "escalated",
    "supplement_requests", "eval_very_satisfied", "eval_satisfied", "eval_basically_satisfied", "eval_dissatisfied",
    "eval_very_dissatisfied", "complaints", "fees_fen", "processing_days",
)


def upgrade() -> None:
    op.create_table(
        "stat_row",
        sa.Column("node", sa.String(), nullable=False),
        sa.Column("day", sa.String(), nullable=False),
        sa.Column("item_code", sa.String(), nullable=False),
        sa.Column("department", sa.String(), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in COUNTERS),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("node", "day", "item_code", "department"),
    )
    op.create_index("ix_stat_row_day", "stat_row", ["day"])
    op.create_table(
        "stat_report",
        sa.Column("node", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.String(), nullable=False),
        sa.Column("children", sa.String(), nullable=False),
        sa.Column("received_at", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("node"),
    )


def downgrade() -> None:
    op.drop_table("stat_report")
    op.drop_index("ix_stat_row_day", table_name="stat_row")
    op.drop_table("stat_row")
