"""The node's store: one SQLite file in WAL mode, under alembic migrations.

Durability: ``synchronous=FULL`` so that a commit that returned survives a power cut;
nothing is acknowledged to a clerk or a peer before its commit returns.

Writes go through ``Store.transaction()``: one writer at a time (a lock, because SQLite
has one writer anyway and waiting on a Python lock is cheaper than on ``SQLITE_BUSY``),
one transaction per unit of work, committed when the block ends and rolled back whole
if it raises. The helper functions below take that session and never commit: the unit
of work that calls them owns the commit. Reads use their own short sessions and run
concurrently with the writer (WAL).

All calls block (async callers run them in a worker thread, ``asyncio.to_thread``) but
one: ``Store.run_unit``, the group-committed unit of work the event loop awaits.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, create_engine, select

from govnet.federation.tree import Level, ancestors
from govnet.node.domain.applicant import Applicant
from govnet.node.domain.catalog import Catalog, ServiceItem
from govnet.node.domain.lifecycle import CaseState, CaseType, EventDraft, Status
from govnet.node.store.models import (
    CaseEventRow,
    CaseRow,
    CatalogRelease,
    CatalogReleaseItem,
    IdempotencyKey,
    Meta,
)

DB_FILE = "govnet.db"


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


@dataclass(frozen=True)
class PublishedCatalog:
    """The catalog in force at a node: the newest release of each issuer on its path
    (the city's catalog and, say, its county's own items); the nearest issuer wins."""

    releases: dict[str, int]  # issuer -> version in force here
    items: dict[str, ServiceItem]
    sources: dict[str, tuple[str, int]]  # item code -> (issuer, version) it comes from
    issuer: str = ""  # the top-most issuer (normally the city)

    @property
    def version(self) -> int:
        """The version of the top-most issuer's release (0: no catalog yet)."""
        return self.releases.get(self.issuer, 0)


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    action: str
    from_status: str
    to_status: str
    actor: str
    reason: str
    detail: dict[str, Any]
    happened_at: str
    recorded_at: str
    origin: str


@dataclass(frozen=True)
class CaseRecord:
    """A case as the store holds it: lifecycle state plus what only people need."""

    state: CaseState
    applicant: Applicant
    item_name: str
    department: str
    possible_duplicate: bool
    duplicate_of: str


def utc_text(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def _date_text(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _alembic_config(connection: Any) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("govnet.node.store") / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def schema_head() -> str:
    """The newest migration revision this release knows."""
    head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
    assert head is not None
    return head


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
class _Unit:
    work: Callable[[Session], Any]
    done: Future[Any]


class Store:
    def __init__(self, engine: Engine, meta: StoreMeta, path: Path) -> None:
        self._engine = engine
        self.meta = meta
        self.path = path
        self._write_lock = threading.Lock()
        self._catalog: PublishedCatalog | None = None
        self._catalog_generation = 0
        self._catalog_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Unit | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_guard = threading.Lock()

    # --- opening ---

    @staticmethod
    def _engine_for(path: Path) -> Engine:
        engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _set_pragmas)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine

    @classmethod
    def create(cls, data_dir: Path, node_id: str, level: Level, now: datetime) -> Store:
        """A new, empty store for a node; refuses to overwrite an existing one."""
        path = data_dir / DB_FILE
        if path.exists():
            raise StoreError(f"{path} already exists: this directory already holds a node's store")
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

    def close(self) -> None:
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(10)
        self._engine.dispose()

    def schema_revision(self) -> str | None:
        with self._engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    # --- units of work ---

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with self._write_lock, Session(self._engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    async def run_unit(self, work: Callable[[Session], T]) -> T:
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

    def _enqueue(self, work: Callable[[Session], T]) -> Future[T]:
        if self._writer is None:
            with self._writer_guard:
                if self._writer is None:
                    self._writer = threading.Thread(target=self._write_loop, name="govnet-writer", daemon=True)
                    self._writer.start()
        unit = _Unit(work, Future())
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

    def _commit_group(self, batch: list[_Unit]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._write_lock, Session(self._engine, expire_on_commit=False) as s:
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
    def reading(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session:
            yield session

    # --- the catalog ---

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
            loaded = _load_catalog(s, self.meta.node_id)
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

    def publish_catalog_in(self, s: Session, catalog: Catalog, now: datetime, version: int | None = None,
                           expected_version: int = 0) -> int:
        """Store ``catalog`` within the caller's transaction: as ``version`` (a release received
        from the parent) or as its issuer's next one. Earlier releases are kept: cases name theirs."""
        path = catalog_path(self.meta.node_id)
        if catalog.issuer not in path:
            raise Conflict(f"catalog issuer {catalog.issuer} is neither this node ({self.meta.node_id}) nor one of "
                           f"its ancestors ({', '.join(path[1:]) or 'none'}); publish it where it belongs")
        current = s.exec(select(func.max(CatalogRelease.version)).where(CatalogRelease.issuer == catalog.issuer)).one() or 0
        if expected_version and expected_version != current:
            raise Conflict(f"catalog of {catalog.issuer} is at version {current}, not {expected_version}: "
                           "reload it and publish again")
        if version is None:
            version = current + 1
        elif version <= current:
            raise Conflict(f"catalog version {version} of {catalog.issuer} is not newer than {current}")
        s.add(CatalogRelease(issuer=catalog.issuer, version=version, published_at=utc_text(now),
                             item_count=len(catalog.items)))
        s.flush()
        for item in catalog.items:
            s.add(CatalogReleaseItem(issuer=catalog.issuer, version=version, code=item.code,
                                     department=item.department, authority_level=item.authority_level.value,
                                     item_type=item.item_type.value,
                                     data=json.dumps(item.to_dict(), ensure_ascii=False)))
        # The cache is dropped once this transaction has committed; the next read reloads it.
        event.listen(s, "after_commit", lambda _s: self._drop_catalog(), once=True)
        return version

    def catalog_item(self, issuer: str, version: int, code: str) -> ServiceItem | None:
        """An item as it was in a given release (the one a case was accepted under)."""
        with self.reading() as s:
            row = s.get(CatalogReleaseItem, (issuer, version, code))
        return ServiceItem.from_dict(json.loads(row.data)) if row else None

    # --- reads ---

    def get_case(self, receipt: str) -> CaseRecord | None:
        with self.reading() as s:
            row = s.get(CaseRow, receipt)
            return record_from_row(row) if row else None

    def events(self, receipt: str) -> list[StoredEvent]:
        with self.reading() as s:
            rows = s.exec(
                select(CaseEventRow).where(CaseEventRow.receipt == receipt).order_by(col(CaseEventRow.seq))
            ).all()
        return [
            StoredEvent(r.seq, r.action, r.from_status, r.to_status, r.actor, r.reason,
                        json.loads(r.detail), r.happened_at, r.recorded_at, r.origin)
            for r in rows
        ]

    def list_cases(
        self,
        *,
        status: str = "",
        item_code: str = "",
        department: str = "",
        due_before: date | None = None,
        after_receipt: str = "",
        limit: int = 100,
    ) -> list[CaseRecord]:
        """Cases matching every given filter, in receipt order, after ``after_receipt``."""
        query = select(CaseRow)
        if status:
            query = query.where(CaseRow.status == status)
        if item_code:
            query = query.where(CaseRow.item_code == item_code)
        if department:
            query = query.where(CaseRow.department == department)
        if due_before:
            query = query.where(CaseRow.due.is_not(None), CaseRow.due <= due_before.isoformat())  # type: ignore[union-attr,operator]
        if after_receipt:
            query = query.where(CaseRow.receipt > after_receipt)
        query = query.order_by(CaseRow.receipt).limit(limit)
        with self.reading() as s:
            return [record_from_row(r) for r in s.exec(query).all()]

    def count_cases(self) -> int:
        with self.reading() as s:
            return s.exec(select(func.count()).select_from(CaseRow)).one()


def migrate(engine: Engine) -> None:
    """Bring the schema to this release's head (a no-op when it is there already)."""
    with engine.begin() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        head = schema_head()
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


def catalog_path(node_id: str) -> list[str]:
    """The issuers whose catalogs apply at ``node_id``: itself, then its ancestors."""
    return [node_id, *ancestors(node_id)]


def _load_catalog(s: Session, node_id: str) -> PublishedCatalog:
    path = catalog_path(node_id)
    releases: dict[str, int] = {}
    for issuer, version in s.exec(
        select(CatalogRelease.issuer, func.max(CatalogRelease.version))
        .where(col(CatalogRelease.issuer).in_(path)).group_by(CatalogRelease.issuer)
    ).all():
        releases[issuer] = version
    items: dict[str, ServiceItem] = {}
    sources: dict[str, tuple[str, int]] = {}
    for issuer in reversed(path):  # farthest first, so the nearest issuer's item wins
        if issuer not in releases:
            continue
        version = releases[issuer]
        for r in s.exec(select(CatalogReleaseItem).where(CatalogReleaseItem.issuer == issuer,
                                                        CatalogReleaseItem.version == version)).all():
            items[r.code] = ServiceItem.from_dict(json.loads(r.data))
            sources[r.code] = (issuer, version)
    top = next((i for i in reversed(path) if i in releases), "")
    return PublishedCatalog(releases, items, sources, top)


# --- the write hot path ---
#
# Every intake runs about a dozen statements: counters, lookups and append-only inserts.
# Through SQLAlchemy each costs 5-10 times what SQLite itself spends on it, so these go
# straight to the DB-API cursor of the session's own connection: same connection, same
# transaction, same savepoint. The INSERT statements are generated from the SQLModel
# tables, so the models stay the one definition of the schema.


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


_IDEMPOTENCY = IdempotencyKey.__table__  # type: ignore[attr-defined]
_EVENTS = CaseEventRow.__table__  # type: ignore[attr-defined]
INSERT_EVENT_SQL = insert_sql(_EVENTS)
INSERT_CASE_SQL = insert_sql(CaseRow.__table__)  # type: ignore[attr-defined]
INSERT_KEY_SQL = insert_sql(_IDEMPOTENCY)
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


def next_value(s: Session, name: str) -> int:
    """The next value of a gapless counter (1, 2, 3 …), within the caller's transaction."""
    return int(_db(s).execute(NEXT_VALUE_SQL, (name,)).fetchone()[0])


def find_idempotency(s: Session, key: str) -> tuple[str, str] | None:
    """(request hash, receipt) recorded for an idempotency key, if any."""
    row = _db(s).execute("SELECT request_hash, receipt FROM idempotency_key WHERE key = ?", (key,)).fetchone()
    return (row[0], row[1]) if row else None


def record_idempotency(s: Session, key: str, request_hash: str, receipt: str, now: datetime) -> None:
    insert_rows(s, INSERT_KEY_SQL, {"key": key, "request_hash": request_hash, "receipt": receipt,
                                    "created_at": utc_text(now)})


def find_recent_duplicate(s: Session, applicant_id: str, item_code: str, since: datetime) -> str | None:
    """The latest receipt for the same applicant and item submitted at or after ``since``."""
    row = _db(s).execute(
        "SELECT receipt FROM case_record WHERE applicant_id = ? AND item_code = ? AND submitted_at >= ? "
        "ORDER BY submitted_at DESC LIMIT 1",
        (applicant_id, item_code, utc_text(since)),
    ).fetchone()
    return row[0] if row else None


def load_case_row(s: Session, receipt: str) -> CaseRow | None:
    return s.get(CaseRow, receipt)


def case_columns(record: CaseRecord, now: datetime) -> dict[str, Any]:
    """Every column of a case's row, as stored."""
    return dict(
        receipt=record.state.receipt,
        item_name=record.item_name,
        department=record.department,
        applicant_name=record.applicant.name,
        applicant_id=record.applicant.id_number,
        applicant_phone=record.applicant.phone,
        possible_duplicate=record.possible_duplicate,
        duplicate_of=record.duplicate_of,
        **_state_columns(record.state, now),
    )


def insert_case(s: Session, record: CaseRecord, now: datetime) -> dict[str, Any]:
    """Insert a new case (hot path: no ORM object); returns its columns."""
    columns = case_columns(record, now)
    insert_rows(s, INSERT_CASE_SQL, columns)
    return columns


def update_case(s: Session, row: CaseRow, state: CaseState, now: datetime) -> None:
    for key, value in _state_columns(state, now).items():
        setattr(row, key, value)
    s.add(row)


def append_event(s: Session, meta: StoreMeta, receipt: str, seq: int, draft: EventDraft, now: datetime,
                 happened: datetime | None = None) -> dict[str, Any]:
    """Append one event (a Core insert: history is append-only); returns its columns.
    ``happened``: when it happened, if earlier than ``now`` (entered later, back-filled)."""
    row = dict(
        receipt=receipt,
        seq=seq,
        action=draft.action,
        from_status=draft.from_status,
        to_status=draft.to_status,
        actor=draft.actor,
        reason=draft.reason,
        detail=json.dumps(dict(draft.detail), ensure_ascii=False, sort_keys=True),
        happened_at=utc_text(happened or now),
        recorded_at=utc_text(now),
        origin=meta.node_id,
        origin_incarnation=meta.incarnation,
        origin_seq=next_value(s, "event_seq"),
        superseded=False,
    )
    insert_rows(s, INSERT_EVENT_SQL, row)
    return row


def _state_columns(st: CaseState, now: datetime) -> dict[str, Any]:
    return {
        "item_code": st.item_code,
        "case_type": st.case_type.value,
        "status": st.status.value,
        "origin": st.origin,
        "owner": st.owner,
        "owner_epoch": st.owner_epoch,
        "agent": st.agent,
        "materials": json.dumps(list(st.materials), ensure_ascii=False),
        "missing_core": json.dumps(list(st.missing_core), ensure_ascii=False),
        "pending_materials": json.dumps(list(st.pending_materials), ensure_ascii=False),
        "requested_materials": json.dumps(list(st.requested_materials), ensure_ascii=False),
        "joint": json.dumps([list(j) for j in st.joint], ensure_ascii=False),
        "submitted_at": utc_text(st.submitted_at),
        "accepted_on": _date_text(st.accepted_on),
        "decided_on": _date_text(st.decided_on),
        "due": _date_text(st.due),
        "statutory_due": _date_text(st.statutory_due),
        "supplement_due": _date_text(st.supplement_due),
        "issue_due": _date_text(st.issue_due),
        "pause_started": _date_text(st.pause_started),
        "paused_days": st.paused_days,
        "extended": st.extended,
        "decision": st.decision,
        "decision_reason": st.decision_reason,
        "notice": st.notice,
        "catalog_version": st.catalog_version,
        "catalog_issuer": st.catalog_issuer,
        "event_count": st.event_count,
        "updated_at": utc_text(now),
    }


def record_from_row(r: CaseRow) -> CaseRecord:
    state = CaseState(
        receipt=r.receipt,
        item_code=r.item_code,
        case_type=CaseType(r.case_type),
        status=Status(r.status),
        origin=r.origin,
        owner=r.owner,
        owner_epoch=r.owner_epoch,
        submitted_at=datetime.fromisoformat(r.submitted_at),
        catalog_version=r.catalog_version,
        catalog_issuer=r.catalog_issuer,
        materials=tuple(json.loads(r.materials)),
        agent=r.agent,
        missing_core=tuple(json.loads(r.missing_core)),
        pending_materials=tuple(json.loads(r.pending_materials)),
        requested_materials=tuple(json.loads(r.requested_materials)),
        joint=tuple(tuple(j) for j in json.loads(r.joint)),
        due=_date(r.due),
        statutory_due=_date(r.statutory_due),
        supplement_due=_date(r.supplement_due),
        issue_due=_date(r.issue_due),
        pause_started=_date(r.pause_started),
        paused_days=r.paused_days,
        extended=r.extended,
        decision=r.decision,
        decision_reason=r.decision_reason,
        notice=r.notice,
        accepted_on=_date(r.accepted_on),
        decided_on=_date(r.decided_on),
        event_count=r.event_count,
    )
    applicant = Applicant(r.applicant_name, r.applicant_id, r.applicant_phone)
    return CaseRecord(state, applicant, r.item_name, r.department, r.possible_duplicate, r.duplicate_of)
