"""The green channel's place in the work queue: a partial index of a node's green-channel cases
by due date, so the queue finds the few flagged cases first without walking all the others.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_case_green_owner_due", "case_record", ["owner", "due", "receipt"],
                    sqlite_where=sa.text("green_channel = 1"))


def downgrade() -> None:
    op.drop_index("ix_case_green_owner_due", table_name="case_record")
