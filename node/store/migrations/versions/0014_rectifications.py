"""Rectifications every ancestor watches (``rectification``).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rectification",
        sa.Column("receipt", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("item_code", sa.String(), nullable=False),
        sa.Column("department", sa.String(), nullable=False),
        sa.Column("rating", sa.String(), nullable=False),
        sa.Column("opened_at", sa.String(), nullable=False),
        sa.Column("due", sa.String(), nullable=False),
        sa.Column("closed_on", sa.String(), nullable=False, server_default=""),
        sa.Column("updated_at", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("receipt"),
    )


def downgrade() -> None:
    op.drop_table("rectification")
