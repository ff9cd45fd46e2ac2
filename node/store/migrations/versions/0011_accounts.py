"""People: accounts (argon2id hashes, never passwords), login tokens (hashed) and the
one-time rating codes printed on receipts (hashed).

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("login", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("roles", sa.String(), nullable=False),
        sa.Column("departments", sa.String(), nullable=False),
        sa.Column("backup_for", sa.String(), nullable=False),
        sa.Column("absent", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.String(), nullable=False),
        sa.Column("changed_at", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("login"),
    )
    op.create_table(
        "session_token",
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("login", sa.String(), nullable=False),
        sa.Column("issued_at", sa.String(), nullable=False),
        sa.Column("expires_at", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_session_token_login", "session_token", ["login"])
    op.create_table(
        "rating_code",
        sa.Column("receipt", sa.String(), nullable=False),
        sa.Column("code_hash", sa.String(), nullable=False),
        sa.Column("issued_at", sa.String(), nullable=False),
        sa.Column("used_at", sa.String(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("receipt"),
    )


def downgrade() -> None:
    op.drop_table("rating_code")
    op.drop_index("ix_session_token_login", "session_token")
    op.drop_table("session_token")
    op.drop_table("account")
