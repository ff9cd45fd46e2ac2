"""Alembic migrations of the node store; run by ``node.store.engine.migrate`` on every open."""
