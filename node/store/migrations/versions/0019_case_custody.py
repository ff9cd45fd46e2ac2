"""Cases a child owns itself, kept whole by its parent (``case_custody``), so a child restored
from an older backup gets back the cases nobody else held.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_custody",
        sa.Column("receipt", sa.String(), nullable=False),
        sa.Column("origin", sa.String(), nullable=False),
        sa.Column("owner_epoch", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("kept_at", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("receipt"),
    )
    op.create_index("ix_case_custody_origin", "case_custody", ["origin"])


def downgrade() -> None:
    op.drop_index("ix_case_custody_origin", table_name="case_custody")
    op.drop_table("case_custody")
