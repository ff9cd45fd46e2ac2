"""Supervision: complaints about a case or a window, tracked by the supervising level.

Alarms, evaluations, rectifications, appeals and suspensions are case events and need
no table of their own.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "complaint",
        sa.Column("complaint_id", sa.String(), nullable=False),
        sa.Column("receipt", sa.String(), nullable=True),
        sa.Column("about_node", sa.String(), nullable=False),
        sa.Column("item_code", sa.String(), nullable=True),
        sa.Column("department", sa.String(), nullable=False),
        sa.Column("filed_at_node", sa.String(), nullable=False),
        sa.Column("supervisor", sa.String(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("filed_at", sa.String(), nullable=False),
        sa.Column("filed_on", sa.String(), nullable=False),
        sa.Column("due", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("resolved_on", sa.String(), nullable=True),
        sa.Column("resolution", sa.String(), nullable=False),
        sa.Column("resolved_by", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("complaint_id"),
    )
    op.create_index("ix_complaint_about_filed", "complaint", ["about_node", "filed_on"])
    op.create_index("ix_complaint_supervisor_status", "complaint", ["supervisor", "status"])


def downgrade() -> None:
    op.drop_index("ix_complaint_supervisor_status", table_name="complaint")
    op.drop_index("ix_complaint_about_filed", table_name="complaint")
    op.drop_table("complaint")
