"""The store: one SQLite file per node (WAL, ``synchronous=FULL``), under alembic migrations.

The only home of SQL: the engine (open, pragmas, migrate, group commit), the tables
(``models``), and the repositories that read and write them in the caller's unit of
work — cases and events, the catalog, the outbox and the inbox, statistics rows, and
the step that turns a restored backup into a new incarnation.
"""
