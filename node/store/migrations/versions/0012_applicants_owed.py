"""Applicants owed: cases received here whose owner lacks the applicant (``applicant_owed``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applicant_owed",
        sa.Column("receipt", sa.String(), nullable=False),
        sa.Column("recorded_at", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("receipt"),
    )


def downgrade() -> None:
    op.drop_table("applicant_owed")
