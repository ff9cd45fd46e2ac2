"""The inbox keeps a received batch as one row (its envelopes as one EnvelopeBatch), not a
row per envelope: storing a batch before acknowledging it is one insert.

Envelopes waiting in the old table become batches of one, in the same order.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

from govnet.v1 import sync_pb2

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OLD_COLUMNS = ("link", "seq", "origin", "origin_incarnation", "origin_seq", "kind", "target", "case_key", "priority",
               "payload", "created_at", "received_at")


def upgrade() -> None:
    op.create_table(
        "inbox_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link", sa.String(), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("applied", sa.Integer(), nullable=False),
        sa.Column("envelopes", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    conn = op.get_bind()
    rows = conn.exec_driver_sql(f"SELECT id, {', '.join(OLD_COLUMNS)} FROM inbox ORDER BY id").fetchall()
    for row in rows:
        old = dict(zip(("id", *OLD_COLUMNS), row))
        body = sync_pb2.EnvelopeBatch(envelopes=[sync_pb2.Envelope(
            seq=old["seq"], origin=old["origin"], origin_incarnation=old["origin_incarnation"],
            origin_seq=old["origin_seq"], kind=old["kind"], target=old["target"], case_key=old["case_key"],
            priority=old["priority"], payload=old["payload"].encode(), created_at=old["created_at"])]).SerializeToString()
        conn.exec_driver_sql(
            "INSERT INTO inbox_batch (id, link, first_seq, last_seq, count, applied, envelopes, received_at) "
            "VALUES (?, ?, ?, ?, 1, 0, ?, ?)",
            (old["id"], old["link"], old["seq"], old["seq"], body, old["received_at"]))
    op.drop_table("inbox")
    op.rename_table("inbox_batch", "inbox")


def downgrade() -> None:
    op.create_table(
        "inbox_envelope",
        *(sa.Column(name, sa.Integer() if name in ("seq", "origin_incarnation", "origin_seq", "priority") else sa.String(),
                    nullable=False) for name in OLD_COLUMNS),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    conn = op.get_bind()
    rows = conn.exec_driver_sql("SELECT link, applied, envelopes, received_at FROM inbox ORDER BY id").fetchall()
    for link, applied, body, received_at in rows:
        for m in sync_pb2.EnvelopeBatch.FromString(body).envelopes[applied:]:
            conn.exec_driver_sql(
                f"INSERT INTO inbox_envelope ({', '.join(OLD_COLUMNS)}) VALUES ({', '.join('?' for _ in OLD_COLUMNS)})",
                (link, m.seq, m.origin, m.origin_incarnation, m.origin_seq, m.kind, m.target, m.case_key, m.priority,
                 m.payload.decode("utf-8", errors="backslashreplace"), m.created_at, received_at))
    op.drop_table("inbox")
    op.rename_table("inbox_envelope", "inbox")
