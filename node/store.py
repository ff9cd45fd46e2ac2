"""The node's store: one SQLite file in WAL mode, under alembic migrations.

Durability: ``synchronous=FULL`` so that a commit that returned survives a power cut;
nothing is acknowledged to a clerk or a peer before its commit returns.

Writes go through ``Store.transaction()``: one writer at a time (a lock, because SQLite
has one writer anyway and waiting on a Python lock is cheaper than on ``SQLITE_BUSY``),
one transaction per unit of work, committed when the block ends and rolled back whole
if it raises. The helper functions below take that session and never commit: the unit
of work that calls them owns the commit. Reads use their own short sessions and run
concurrently with the writer (WAL).

All calls block; async callers run them in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine, select

from federation.tree import Level
from node.applicant import Applicant
from node.catalog import Catalog, ServiceItem
from node.lifecycle import CaseState, CaseType, EventDraft, Status
from node.models import (
    CaseEventRow,
    CaseRow,
    CatalogItemRow,
    CatalogVersion,
    Counter,
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
    version: int
    issuer: str
    items: dict[str, ServiceItem]


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
    return ts.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _date_text(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _alembic_config(connection: Any) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("node") / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def schema_head() -> str:
    """The newest migration revision this release knows."""
    head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
    assert head is not None
    return head


def _set_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Store:
    def __init__(self, engine: Engine, meta: StoreMeta, path: Path) -> None:
        self._engine = engine
        self.meta = meta
        self.path = path
        self._write_lock = threading.Lock()
        self._catalog: PublishedCatalog | None = None

    # --- opening ---

    @staticmethod
    def _engine_for(path: Path) -> Engine:
        engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _set_pragmas)
        return engine

    @classmethod
    def create(cls, data_dir: Path, node_id: str, level: Level, now: datetime) -> "Store":
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
    def open(cls, data_dir: Path) -> "Store":
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

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session:
            yield session

    # --- the catalog ---

    def catalog(self) -> PublishedCatalog:
        """The current catalog version (cached; replaced on publish)."""
        cached = self._catalog
        if cached is not None:
            return cached
        with self.reading() as s:
            loaded = _load_catalog(s)
        self._catalog = loaded
        return loaded

    def publish_catalog(self, catalog: Catalog, now: datetime, expected_version: int = 0) -> int:
        """Store ``catalog`` as the next version in its own transaction; return the version."""
        with self.transaction() as s:
            return self.publish_catalog_in(s, catalog, now, expected_version=expected_version)

    def publish_catalog_in(self, s: Session, catalog: Catalog, now: datetime, version: int | None = None,
                           expected_version: int = 0) -> int:
        """Store ``catalog`` within the caller's transaction: as ``version`` (a version received
        from the parent) or as the next one. Earlier versions are kept: cases name theirs."""
        current = s.exec(select(func.max(CatalogVersion.version))).one() or 0
        if expected_version and expected_version != current:
            raise Conflict(f"catalog is at version {current}, not {expected_version}: reload it and publish again")
        if version is None:
            version = current + 1
        elif version <= current:
            raise Conflict(f"catalog version {version} is not newer than {current}")
        s.add(CatalogVersion(version=version, issuer=catalog.issuer, published_at=utc_text(now),
                             item_count=len(catalog.items)))
        s.flush()
        for item in catalog.items:
            s.add(CatalogItemRow(version=version, code=item.code, department=item.department,
                                 authority_level=item.authority_level.value, item_type=item.item_type.value,
                                 data=json.dumps(item.to_dict(), ensure_ascii=False)))
        # The cache is replaced only once this transaction has committed.
        published = PublishedCatalog(version, catalog.issuer, {i.code: i for i in catalog.items})
        event.listen(s, "after_commit", lambda _s: setattr(self, "_catalog", published), once=True)
        return version

    # --- reads ---

    def get_case(self, receipt: str) -> CaseRecord | None:
        with self.reading() as s:
            row = s.get(CaseRow, receipt)
            return record_from_row(row) if row else None

    def events(self, receipt: str) -> list[StoredEvent]:
        with self.reading() as s:
            rows = s.exec(
                select(CaseEventRow).where(CaseEventRow.receipt == receipt).order_by(CaseEventRow.seq)
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


def _load_catalog(s: Session) -> PublishedCatalog:
    latest = s.exec(select(CatalogVersion).order_by(CatalogVersion.version.desc()).limit(1)).first()  # type: ignore[attr-defined]
    if latest is None:
        return PublishedCatalog(0, "", {})
    rows = s.exec(select(CatalogItemRow).where(CatalogItemRow.version == latest.version)).all()
    items = {r.code: ServiceItem.from_dict(json.loads(r.data)) for r in rows}
    return PublishedCatalog(latest.version, latest.issuer, items)


# --- helpers for units of work: they take the session and never commit ---


def next_value(s: Session, name: str) -> int:
    """The next value of a gapless counter (1, 2, 3 …), within the caller's transaction."""
    counter = s.get(Counter, name)
    if counter is None:
        counter = Counter(name=name, value=0)
    counter.value += 1
    s.add(counter)
    return counter.value


def find_idempotency(s: Session, key: str) -> IdempotencyKey | None:
    return s.get(IdempotencyKey, key)


def find_recent_duplicate(s: Session, applicant_id: str, item_code: str, since: datetime) -> str | None:
    """The latest receipt for the same applicant and item submitted at or after ``since``."""
    return s.exec(
        select(CaseRow.receipt)
        .where(CaseRow.applicant_id == applicant_id, CaseRow.item_code == item_code,
               CaseRow.submitted_at >= utc_text(since))
        .order_by(CaseRow.submitted_at.desc())  # type: ignore[attr-defined]
        .limit(1)
    ).first()


def load_case_row(s: Session, receipt: str) -> CaseRow | None:
    return s.get(CaseRow, receipt)


def insert_case(s: Session, record: CaseRecord, now: datetime) -> CaseRow:
    row = CaseRow(
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
    s.add(row)
    return row


def update_case(s: Session, row: CaseRow, state: CaseState, now: datetime) -> None:
    for key, value in _state_columns(state, now).items():
        setattr(row, key, value)
    s.add(row)


def append_event(s: Session, meta: StoreMeta, receipt: str, seq: int, draft: EventDraft, now: datetime) -> CaseEventRow:
    row = CaseEventRow(
        receipt=receipt,
        seq=seq,
        action=draft.action,
        from_status=draft.from_status,
        to_status=draft.to_status,
        actor=draft.actor,
        reason=draft.reason,
        detail=json.dumps(dict(draft.detail), ensure_ascii=False, sort_keys=True),
        happened_at=utc_text(now),
        recorded_at=utc_text(now),
        origin=meta.node_id,
        origin_incarnation=meta.incarnation,
        origin_seq=next_value(s, "event_seq"),
    )
    s.add(row)
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
        materials=tuple(json.loads(r.materials)),
        agent=r.agent,
        missing_core=tuple(json.loads(r.missing_core)),
        pending_materials=tuple(json.loads(r.pending_materials)),
        requested_materials=tuple(json.loads(r.requested_materials)),
        joint=tuple(tuple(j) for j in json.loads(r.joint)),  # type: ignore[misc]
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
