"""The node's store engine: one SQLite file in WAL mode, under alembic migrations.

This module opens the file (pragmas, schema migration, the store's identity and
incarnation) and runs units of work; what the tables hold is read and written by the
repositories beside it (``cases``, ``catalog``, ``statistics``, ``complaints``, the
outbox …), and a backup comes back as a new incarnation through ``restore``.

Files: the database, its WAL and shared memory hold applicants' personal data, so they are
created readable by their owner only — the database file is made 0600 before SQLite opens it
(``create_private``), and SQLite gives the -wal and -shm files the mode of the database file.
A relay's inbox and outbox rows carry applicants only sealed (``node.domain.sealed``), so the
freed pages ``secure_delete=FAST`` leaves as they were hold no applicant in clear.

Durability: ``synchronous=FULL`` so that a commit that returned survives a power cut;
nothing is acknowledged to a clerk or a peer before its commit returns.

Writes go through ``Store.transaction()``: one writer at a time (a lock, because SQLite
has one writer anyway and waiting on a Python lock is cheaper than on ``SQLITE_BUSY``),
one transaction per unit of work, committed when the block ends and rolled back whole
if it raises. The repository functions take that session (``unit.Unit``) and never
commit: the unit of work that calls them owns the commit. Reads use their own short
sessions and run concurrently with the writer (WAL).

All calls block (async callers run them in a worker thread, ``asyncio.to_thread``) but
one: ``Store.run_unit``, the group-committed unit of work the event loop awaits.
"""

from __future__ import annotations

import asyncio
import functools
import os
import queue
import shutil
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine, select

from govnet.federation.tree import Level
from govnet.node.domain.catalog import Catalog, ServiceItem
from govnet.node.store import cases
from govnet.node.store import catalog as catalogs
from govnet.node.store.cases import CaseRecord, StoredEvent
from govnet.node.store.catalog import PublishedCatalog
from govnet.node.store.models import Meta
from govnet.node.store.unit import StoreError, StoreMeta, Unit, savepoint, utc_text

if TYPE_CHECKING:
    from alembic.config import Config

# alembic (with mako and pygments under it, ~0.2 s of CPU) is imported by the functions that
# use it, not here: every `govnet` process imports this module, and only those that open or
# create a store need it (the CLI's client commands, `--help` and the tests' helpers do not).

DB_FILE = "govnet.db"
STORE_FILES = (DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm")  # the database, its WAL and shared memory
WRITE = "govnet_write"  # the execution option of the store's write transactions (``_begin``)
SQLITE_VERSION = sqlite3.sqlite_version  # the SQLite library under every store (benchmarks report it)


def _alembic_config(connection: Any) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("govnet.node.store") / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def schema_head() -> str:
    """The newest migration revision this release knows (read once: the migrations ship with
    the release; reading them costs a tenth of a second, which a simulation of 1,741 nodes
    paid twice per node)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
    assert head is not None
    return head


def _begin(conn: Any) -> None:
    # A write transaction takes SQLite's write lock at BEGIN (IMMEDIATE). Another process writing
    # the same store (an operator's 'govnet user add --data-dir' beside a running node, a test's
    # second Store) then makes it wait up to busy_timeout; a deferred BEGIN that read first would
    # fail at its first write with "database is locked", at once, whatever the timeout.
    # Sent on the DB-API connection itself: through SQLAlchemy's statement machinery this one
    # word cost more than many of the units it opens (every read and every write begins here).
    conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


def _set_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own transaction handling starts a transaction only before a write, so a
    # SAVEPOINT taken first would become the outermost transaction and its RELEASE would
    # commit. We switch that off and emit BEGIN ourselves when SQLAlchemy begins (the
    # "begin" listener in Store._engine_for), so a transaction is one transaction.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    # Some builds (Debian's among them) default to secure_delete=ON, which overwrites every
    # deleted row with zeros on disk: each outbox and inbox envelope, deleted once
    # delivered or applied, was then written a second time, and deleting a drained backlog
    # cost more than storing it. FAST still clears deleted content on the pages a change
    # writes anyway (those envelopes are copies of cases that stay in this store).
    cur.execute("PRAGMA secure_delete=FAST")
    cur.close()


T = TypeVar("T")
GROUP_MAX = 64  # units of work committed together at most


@dataclass
class _Queued:
    """A unit of work waiting for the writer thread, and where its outcome goes."""

    work: Callable[[Unit], Any]
    done: Future[Any]


class Store:
    def __init__(self, engine: Engine, meta: StoreMeta, path: Path) -> None:
        self._engine = engine
        self._write_engine = engine.execution_options(**{WRITE: True})  # its transactions BEGIN IMMEDIATE
        self.meta = meta
        self.path = path
        self._write_lock = threading.Lock()
        self._catalog: PublishedCatalog | None = None
        self._catalog_generation = 0
        self._catalog_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_guard = threading.Lock()
        # Given to every session this store opens (``Session.info``): what the node's parts put
        # there for the code that runs inside a unit of work (the keyring: ``node.app.keyring``).
        self.session_info: dict[str, Any] = {}

    # --- opening ---

    @staticmethod
    def _engine_for(path: Path) -> Engine:
        engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _set_pragmas)
        event.listen(engine, "begin", _begin)
        return engine

    @classmethod
    def create(cls, data_dir: Path, node_id: str, level: Level, now: datetime,
               schema_from: Path | None = None) -> Store:
        """A new, empty store for a node; refuses to overwrite an existing one.

        ``schema_from``: a file ``empty_schema`` made, copied instead of running the migration
        history again (a simulation creates 1,741 stores; the history takes a third of a second)."""
        path = data_dir / DB_FILE
        if path.exists():
            raise StoreError(f"{path} already exists: this directory already holds a node's store")
        create_private(path)
        if schema_from is not None:
            shutil.copyfile(schema_from, path)  # into the file made private above
        engine = cls._engine_for(path)
        migrate(engine)
        with Session(engine) as s:
            for key, value in (
                ("node_id", node_id),
                ("level", level.value),
                ("incarnation", "1"),
                ("created_at", utc_text(now)),
            ):
                s.add(Meta(key=key, value=value))
            s.commit()
        return cls(engine, _read_meta(engine), path)

    @classmethod
    def open(cls, data_dir: Path) -> Store:
        """Open an existing store, upgrading its schema to this release's."""
        path = data_dir / DB_FILE
        if not path.is_file():
            raise StoreError(f"no store at {path}: run 'govnet node init {data_dir} …' first")
        engine = cls._engine_for(path)
        try:
            migrate(engine)
            meta = _read_meta(engine)
        except StoreError:
            engine.dispose()
            raise
        except Exception as exc:  # a damaged or foreign file
            engine.dispose()
            raise StoreError(f"cannot open store {path}: {exc.__class__.__name__}: {exc}") from None
        return cls(engine, meta, path)

    def without_fsync(self) -> None:
        """``synchronous=OFF`` on every connection from now on: a commit still commits, but SQLite
        does not wait for the disk. Only for stores no crash may cost anything real: a
        simulation's nodes, a benchmark's setup; a node process never calls it. Pooled
        connections are dropped so that every new one gets it."""

        def relax(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA synchronous=OFF")
            cur.close()

        event.listen(self._engine, "connect", relax)
        self._engine.dispose()

    def close(self) -> None:
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(10)
        self._engine.dispose()

    def schema_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self._engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    # --- units of work ---

    @contextmanager
    def transaction(self) -> Iterator[Unit]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with self._write_lock, Session(self._write_engine, expire_on_commit=False, info=self.session_info) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    async def run_unit(self, work: Callable[[Unit], T]) -> T:
        """Run ``work`` as one unit of work, committed together with others (group commit).

        Intake is many small writes from many clients at once; committing each alone would
        spend most of the time in BEGIN, COMMIT and fsync. The writer thread takes every
        unit queued at that moment, runs each in its own SAVEPOINT (a unit that raises is
        rolled back alone and changes nothing), commits them with one fsync, and only then
        answers each caller. So a unit's result is never seen before it is durable. The
        caller waits on the event loop, with no worker thread in between, so every call in
        flight can reach the writer and share its commit. (Blocking code that writes uses
        ``transaction``.)
        """
        return await asyncio.wrap_future(self._enqueue(work))

    def _enqueue(self, work: Callable[[Unit], T]) -> Future[T]:
        if self._writer is None:
            with self._writer_guard:
                if self._writer is None:
                    self._writer = threading.Thread(target=self._write_loop, name="govnet-writer", daemon=True)
                    self._writer.start()
        unit = _Queued(work, Future())
        self._queue.put(unit)
        return unit.done

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < GROUP_MAX:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(nxt)
            self._commit_group(batch)

    def _commit_group(self, batch: list[_Queued]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._write_lock, Session(self._write_engine, expire_on_commit=False, info=self.session_info) as s:
                for unit in batch:
                    try:
                        with savepoint(s):
                            result = unit.work(s)
                        outcomes.append((True, result))
                    except Exception as exc:
                        outcomes.append((False, exc))
                s.commit()
        except BaseException as exc:  # the commit itself failed: nothing in the group is durable
            for unit in batch:
                unit.done.set_exception(StoreError(f"the store could not commit: {exc}"))
            return
        for unit, (ok, value) in zip(batch, outcomes):
            if ok:
                unit.done.set_result(value)
            else:
                unit.done.set_exception(value)

    @contextmanager
    def reading(self) -> Iterator[Unit]:
        with Session(self._engine, expire_on_commit=False, info=self.session_info) as session:
            yield session

    # --- the catalog ---

    @property
    def cached_catalog(self) -> PublishedCatalog | None:
        """The catalog if it is cached: the event loop takes it as it is (intake's hot path)
        and reads a miss with ``catalog`` in a worker thread."""
        return self._catalog

    def catalog(self) -> PublishedCatalog:
        """The catalog in force here (cached; dropped when a release is published).

        A load that began before a publish committed must not put its older result in
        the cache after the publish dropped it: the generation counter tells them apart.
        """
        cached = self._catalog
        if cached is not None:
            return cached
        generation = self._catalog_generation
        with self.reading() as s:
            loaded = catalogs.load_catalog(s, self.meta.node_id)
        with self._catalog_lock:
            if self._catalog_generation == generation:
                self._catalog = loaded
        return loaded

    def _drop_catalog(self) -> None:
        with self._catalog_lock:
            self._catalog_generation += 1
            self._catalog = None

    def publish_catalog(self, catalog: Catalog, now: datetime, expected_version: int = 0) -> int:
        """Store ``catalog`` as its issuer's next release in its own transaction; return the version."""
        with self.transaction() as s:
            return self.publish_catalog_in(s, catalog, now, expected_version=expected_version)

    def publish_catalog_in(self, s: Unit, catalog: Catalog, now: datetime, version: int | None = None,
                           expected_version: int = 0) -> int:
        """Store ``catalog`` within the caller's transaction: as ``version`` (a release received
        from the parent) or as its issuer's next one. Earlier releases are kept: cases name theirs."""
        version = catalogs.add_release(s, self.meta.node_id, catalog, now, version, expected_version)
        # The cache is dropped once this transaction has committed; the next read reloads it.
        event.listen(s, "after_commit", lambda _s: self._drop_catalog(), once=True)
        return version

    def catalog_item(self, issuer: str, version: int, code: str) -> ServiceItem | None:
        """An item as it was in a given release (the one a case was accepted under)."""
        with self.reading() as s:
            data = catalogs.item_data(s, issuer, version, code)
        return ServiceItem.from_dict(data) if data else None

    # --- reads ---

    def get_case(self, receipt: str) -> CaseRecord | None:
        with self.reading() as s:
            return cases.get_case(s, receipt)

    def events(self, receipt: str) -> list[StoredEvent]:
        with self.reading() as s:
            return cases.events(s, receipt)

    def list_cases(
        self,
        *,
        statuses: Collection[str] = (),
        item_code: str = "",
        department: str = "",
        due_before: date | None = None,
        after_receipt: str = "",
        limit: int = 100,
        not_statuses: Collection[str] = (),
        after_green: bool = False,
    ) -> list[CaseRecord]:
        """Cases matching every given filter, green-channel cases first (``cases.list_cases``)."""
        with self.reading() as s:
            return cases.list_cases(s, statuses=statuses, item_code=item_code, department=department,
                                    due_before=due_before, after_receipt=after_receipt, limit=limit,
                                    not_statuses=not_statuses, after_green=after_green)

    def count_cases(self) -> int:
        with self.reading() as s:
            return cases.count_cases(s)


def empty_schema(path: Path) -> None:
    """A store file at ``path`` with this release's schema and no node in it, for
    ``Store.create(schema_from=path)``."""
    create_private(path)
    engine = Store._engine_for(path)
    try:
        migrate(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the file itself
    finally:
        engine.dispose()


def create_private(path: Path) -> None:
    """Create ``path`` empty, readable and writable by its owner only (0600 from the first byte,
    whatever the umask: never briefly readable by others). Its folder is made 0700 if new."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def migrate(engine: Engine) -> None:
    """Bring the schema to this release's head (a no-op when it is there already)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.begin() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        head = schema_head()
        if current == head:
            return  # already there: no need to run alembic's environment
        if current is not None and current != head:
            known = {s.revision for s in ScriptDirectory.from_config(_alembic_config(None)).walk_revisions()}
            if current not in known:
                raise StoreError(
                    f"store schema {current} is newer than this govnet release knows (head {head}): "
                    "upgrade govnet"
                )
        command.upgrade(_alembic_config(conn), "head")


def _read_meta(engine: Engine) -> StoreMeta:
    with Session(engine) as s:
        values = {m.key: m.value for m in s.exec(select(Meta)).all()}
    try:
        return StoreMeta(values["node_id"], Level(values["level"]), int(values["incarnation"]),
                         values["created_at"])
    except KeyError as missing:
        raise StoreError(f"store is missing its {missing} record: it was not created by govnet") from None
