"""The unit of work's session and the plain SQL every repository writes through.

A unit of work is one transaction: ``Store.transaction()`` or ``Store.run_unit()`` (see
``engine``) opens it, hands its session — typed ``Unit`` — to the code that does the
work, and commits when that code returns. Repository functions (``cases``, ``catalog``,
``statistics``, ``complaints``, the outbox …) take that session and never commit.

Who writes: ``StoreMeta`` is the store's identity (node, level, incarnation), stamped on
every event and message a unit writes.

The write hot path. Every intake runs about a dozen statements: counters, lookups and
append-only inserts. Through SQLAlchemy each costs 5-10 times what SQLite itself spends on
it, so these go straight to the DB-API cursor of the session's own connection: same
connection, same transaction, same savepoint. The INSERT statements are generated from the
SQLModel tables, so the models stay the one definition of the schema.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from govnet.federation.tree import Level

# The session of one unit of work. Code above the store names it by this alias, so that
# only the store imports the database libraries.
Unit = Session
# The database itself failed (locked past its timeout, disk I/O): nothing of the unit was
# written, and the same work may succeed later. Named here for the same reason.
DatabaseFailure = OperationalError


class StoreError(Exception):
    """The store cannot be opened or used; ``str()`` says what to fix."""


class Conflict(StoreError):
    """A unit of work found the data changed under it (e.g. an optimistic version check)."""


@dataclass(frozen=True)
class StoreMeta:
    node_id: str
    level: Level
    incarnation: int
    created_at: str


def utc_text(ts: datetime) -> str:
    """An instant as the store keeps it: RFC 3339 text in UTC, to the microsecond."""
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def _db(s: Session) -> Any:
    """The sqlite3 connection under the session's current transaction.

    ORM changes still pending are flushed first, so SQL sent this way sees them and
    comes after them. The handle is kept in ``s.info``: every session of this store
    lives for one transaction on one connection (``Store.transaction``, ``Store.run_unit``).
    """
    if s.new or s.dirty or s.deleted:
        s.flush()
    db = s.info.get("db")
    if db is None:
        db = s.info["db"] = s.connection().connection.driver_connection
    return db


@contextmanager
def savepoint(s: Session) -> Iterator[None]:
    """A part of the session's transaction that is rolled back alone if it raises.

    A plain SAVEPOINT on the connection rather than ``Session.begin_nested``: SQLAlchemy
    emits its SAVEPOINT only when the ORM next touches the connection, so statements sent
    straight to the DB-API cursor (this module's hot path) could run before it and escape
    the rollback; and it costs more than the small units it wraps. ORM changes are flushed
    before the release; on failure the session forgets its objects (what came before the
    savepoint is already flushed, so nothing else is lost).
    """
    db = _db(s)
    db.execute("SAVEPOINT part")
    try:
        yield
        s.flush()
    except BaseException:
        db.execute("ROLLBACK TO part")
        db.execute("RELEASE part")
        s.expunge_all()
        raise
    db.execute("RELEASE part")


def insert_sql(table: Any) -> str:
    """An INSERT with a named parameter per column (a surrogate ``id`` key is left to SQLite)."""
    columns = [c.name for c in table.columns if not (c.primary_key and c.name == "id")]
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"


NEXT_VALUE_SQL = (
    "INSERT INTO counter (name, value) VALUES (?, 1) "
    "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value"
)


def insert_rows(s: Session, sql: str, row: dict[str, Any]) -> None:
    _db(s).execute(sql, row)


def insert_many(s: Session, sql: str, rows: Sequence[dict[str, Any] | tuple[Any, ...]]) -> None:
    if rows:
        _db(s).executemany(sql, rows)


def query(s: Session, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of a read on the hot path (plain SQL, same transaction)."""
    return _db(s).execute(sql, args).fetchall()


def execute(s: Session, sql: str, args: tuple[Any, ...] | dict[str, Any] = ()) -> int:
    """A write on the hot path; returns the number of rows it changed."""
    return int(_db(s).execute(sql, args).rowcount)


def table_names(s: Session) -> set[str]:
    """The tables this store's file has."""
    return {r[0] for r in query(s, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def next_value(s: Session, name: str) -> int:
    """The next value of a gapless counter (1, 2, 3 …), within the caller's transaction."""
    return int(_db(s).execute(NEXT_VALUE_SQL, (name,)).fetchone()[0])
