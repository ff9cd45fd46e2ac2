"""Catalog releases per issuer: the city publishes the catalog, a county its own items.

A node's catalog is the newest release of every issuer on its path (itself and its
ancestors). Releases are keyed by (issuer, version); cases name the issuer of their
release. Existing versions are carried over with their issuer.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_release",
        sa.Column("issuer", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.String(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "version"),
    )
    op.create_table(
        "catalog_release_item",
        sa.Column("issuer", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("department", sa.String(), nullable=False),
        sa.Column("authority_level", sa.String(), nullable=False),
        sa.Column("item_type", sa.String(), nullable=False),
        sa.Column("data", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["issuer", "version"], ["catalog_release.issuer", "catalog_release.version"]),
        sa.PrimaryKeyConstraint("issuer", "version", "code"),
    )
    op.execute("INSERT INTO catalog_release SELECT issuer, version, published_at, item_count FROM catalog_version")
    op.execute(
        "INSERT INTO catalog_release_item SELECT v.issuer, i.version, i.code, i.department, i.authority_level,"
        " i.item_type, i.data FROM catalog_item i JOIN catalog_version v ON v.version = i.version"
    )
    with op.batch_alter_table("case_record") as batch:
        batch.add_column(sa.Column("catalog_issuer", sa.String(), nullable=False, server_default=""))
    op.execute(
        "UPDATE case_record SET catalog_issuer = coalesce("
        "(SELECT issuer FROM catalog_version v WHERE v.version = case_record.catalog_version), '')"
    )
    op.drop_table("catalog_item")
    op.drop_table("catalog_version")


def downgrade() -> None:
    raise NotImplementedError("catalog releases cannot be folded back into one version sequence")
