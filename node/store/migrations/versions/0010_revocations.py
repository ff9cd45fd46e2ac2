"""Revocation lists: the newest signed list of each CA, kept at every node (``revocation_list``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revocation_list",
        sa.Column("issuer", sa.String(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("bundle", sa.String(), nullable=False),
        sa.Column("received_at", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("issuer"),
    )


def downgrade() -> None:
    op.drop_table("revocation_list")
