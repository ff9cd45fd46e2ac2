"""Fees and payments, the green channel, and the case kind apart from who carried the case.

``case_record`` gains what a case owes and has paid (whole fen), whether what was due was
waived, and the green-channel flag; ``stat_row`` gains the counters of carriage, kinds at
intake, fees collected and waived, and green-channel cases (``node.domain.statistics``).

Stored cases of the deprecated kind ``proxy`` (a village agent carried them) get the kind
they really have: ``escalated`` when their item is decided above the node that received
them, otherwise the item's own type (from the catalog release they were received under);
their agent, already stored, says they were carried. Summaries held for the subtree follow.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# (name, type, default): what a case owes and has paid, in fen; waived; the green channel.
_CASE_COLUMNS = (("fees_due_fen", sa.Integer(), "0"), ("fees_paid_fen", sa.Integer(), "0"),
                 ("fees_waived", sa.Boolean(), "0"), ("green_channel", sa.Boolean(), "0"))
_STAT_COUNTERS = ("carried", "kind_immediate", "kind_promised", "kind_joint", "kind_escalated",
                  "fees_collected_fen", "fees_waived_fen", "green_channel")
# Level of a node from its id (federation.tree), spelled out: a migration must not change when the code does.
_RANK = {"city": 0, "county": 1, "township": 2, "village": 3}


def _level(node_id: str) -> str:
    if len(node_id) == 12:
        return "village"
    if len(node_id) == 9:
        return "township"
    return "city" if node_id.endswith("00") else "county"


def _kind(origin: str, item: sa.Row | None) -> str | None:
    """The kind of a case received at ``origin`` for ``item`` (authority level, item type), or None."""
    if item is None:
        return None
    authority, item_type = item
    if _RANK[_level(origin)] > _RANK.get(authority, 3):
        return "escalated"
    return item_type if item_type in ("immediate", "promised", "joint") else None


def upgrade() -> None:
    with op.batch_alter_table("case_record") as batch:
        for name, column_type, default in _CASE_COLUMNS:
            batch.add_column(sa.Column(name, column_type, nullable=False, server_default=default))
    with op.batch_alter_table("stat_row") as batch:
        for name in _STAT_COUNTERS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    conn = op.get_bind()
    release_item = sa.text("SELECT authority_level, item_type FROM catalog_release_item "
                           "WHERE issuer = :i AND version = :v AND code = :c")
    latest_item = sa.text("SELECT authority_level, item_type FROM catalog_release_item WHERE code = :c "
                          "ORDER BY version DESC LIMIT 1")
    for receipt, origin, issuer, version, code, status in conn.execute(sa.text(
            "SELECT receipt, origin, catalog_issuer, catalog_version, item_code, status FROM case_record "
            "WHERE case_type = 'proxy'")).all():
        item = conn.execute(release_item, {"i": issuer, "v": version, "c": code}).first()
        kind = "returned" if status == "returned" else _kind(origin, item)
        if kind is not None:  # None: its release is not held here, the kind cannot be known; left as it was
            conn.execute(sa.text("UPDATE case_record SET case_type = :k WHERE receipt = :r"), {"k": kind, "r": receipt})
    # Summaries held for the subtree say nothing of their catalog release: the newest release of the item here.
    for receipt, origin, code, status in conn.execute(sa.text(
            "SELECT receipt, origin, item_code, status FROM case_summary WHERE case_type = 'proxy'")).all():
        kind = "returned" if status == "returned" else _kind(origin, conn.execute(latest_item, {"c": code}).first())
        if kind is not None:
            conn.execute(sa.text("UPDATE case_summary SET case_type = :k, state = json_set(state, '$.case_type', :k) "
                                 "WHERE receipt = :r"), {"k": kind, "r": receipt})


def downgrade() -> None:
    with op.batch_alter_table("stat_row") as batch:
        for name in _STAT_COUNTERS:
            batch.drop_column(name)
    with op.batch_alter_table("case_record") as batch:
        for name, _kind, _default in reversed(_CASE_COLUMNS):
            batch.drop_column(name)
