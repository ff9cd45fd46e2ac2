"""The store: one SQLite file per node (WAL, ``synchronous=FULL``), under alembic migrations.

The only home of SQL (an import contract keeps the database libraries here):

- ``engine``: open, pragmas, migrate, the store's identity, units of work and group commit;
- ``unit``: the unit of work's session (``Unit``) and the plain-SQL hot path under it;
- ``models`` and ``migrations``: the tables;
- repositories that read and write them in the caller's unit of work, never committing:
  ``cases`` (cases, events, idempotency keys), ``catalog`` (releases), ``outbox``,
  ``statistics`` (rows, reports), ``complaints``, ``quarantine``;
- ``backup``: the snapshot copy and the step that brings a backup back as a new incarnation.
"""
