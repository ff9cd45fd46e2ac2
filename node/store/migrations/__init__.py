"""Alembic migrations of the node store; run by ``node.store.migrate`` on every open."""
