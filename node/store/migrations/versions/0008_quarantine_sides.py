"""The quarantine holds both sides of a link: what this node could not apply (``receiver``)
and what it could not send (``sender``: larger than a batch may be, or refused by the
receiver), with a low-cardinality reason and the envelope's size on the wire.

Existing entries are receiver entries that could not be applied.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("side", sa.String(), nullable=False, server_default="receiver"))
        batch.add_column(sa.Column("reason", sa.String(), nullable=False, server_default="apply"))
        batch.add_column(sa.Column("size", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("size")
        batch.drop_column("reason")
        batch.drop_column("side")
