"""The work queue's index: a node's own cases by due date (the console's queue, most urgent first).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_case_owner_due", "case_record", ["owner", "due", "receipt"])


def downgrade() -> None:
    op.drop_index("ix_case_owner_due", table_name="case_record")
