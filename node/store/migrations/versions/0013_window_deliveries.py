"""Window deliveries: results handed over at the window where the applicant applied (``window_delivery``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "window_delivery",
        sa.Column("receipt", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("delivered_at", sa.String(), nullable=False),
        sa.Column("recorded_at", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("receipt"),
    )


def downgrade() -> None:
    op.drop_table("window_delivery")
