"""The case desk: intake and actions as units of work over the store.

Each call is one transaction: validate everything first, then read what is needed,
run the pure lifecycle, and write the new state together with its event (and, at
intake, the idempotency key and the receipt counter). A refused call raises and
leaves the store exactly as it was.

Errors carry a ``kind`` the gRPC layer maps to a status code; their text is one line a
clerk can act on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from node.applicant import Applicant, ApplicantError
from node.calendar import WorkCalendar
from node.catalog import ServiceItem
from node.clock import Clock
from node.lifecycle import (
    ActionRefused,
    ActParams,
    Context,
    InvalidParams,
    LifecycleError,
    act,
    intake,
)
from node.receipt import Receipt, ReceiptError
from node.store import (
    CaseRecord,
    Store,
    StoredEvent,
    append_event,
    find_idempotency,
    find_recent_duplicate,
    insert_case,
    load_case_row,
    next_value,
    record_from_row,
    update_case,
    utc_text,
)
from node.models import CatalogItemRow, IdempotencyKey

MAX_KEY_LENGTH = 128


class ErrorKind(StrEnum):
    INVALID = "invalid"  # INVALID_ARGUMENT
    NOT_FOUND = "not_found"  # NOT_FOUND
    PRECONDITION = "precondition"  # FAILED_PRECONDITION
    CONFLICT = "conflict"  # ALREADY_EXISTS


class DeskError(Exception):
    def __init__(self, kind: ErrorKind, message: str, field: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


@dataclass(frozen=True)
class SubmitCommand:
    idempotency_key: str
    item_code: str
    applicant_name: str
    applicant_id: str
    applicant_phone: str
    materials: tuple[str, ...]
    agent: str = ""
    note: str = ""
    actor: str = ""

    def fingerprint(self) -> str:
        """What the idempotency key is bound to: every field but the key itself."""
        body = {
            "item": self.item_code.strip(),
            "name": self.applicant_name.strip(),
            "id": self.applicant_id.strip().upper(),
            "phone": self.applicant_phone.strip(),
            "materials": sorted(m.strip() for m in self.materials),
            "agent": self.agent.strip(),
            "note": self.note.strip(),
            "actor": self.actor.strip(),
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class Submitted:
    record: CaseRecord
    replayed: bool


class CaseDesk:
    def __init__(self, store: Store, calendar: WorkCalendar, clock: Clock, duplicate_window_days: int) -> None:
        self.store = store
        self.calendar = calendar
        self.clock = clock
        self.duplicate_window = timedelta(days=duplicate_window_days)

    def submit(self, cmd: SubmitCommand) -> Submitted:
        key = cmd.idempotency_key.strip()
        if not key:
            raise DeskError(ErrorKind.INVALID, "idempotency_key is required: any unique string per application", "idempotency_key")
        if len(key) > MAX_KEY_LENGTH:
            raise DeskError(ErrorKind.INVALID, f"idempotency_key is longer than {MAX_KEY_LENGTH} characters", "idempotency_key")
        try:
            applicant = Applicant.create(cmd.applicant_name, cmd.applicant_id, cmd.applicant_phone)
        except ApplicantError as exc:
            raise DeskError(ErrorKind.INVALID, str(exc), f"applicant.{exc.field}") from None
        catalog = self.store.catalog()
        if catalog.version == 0:
            raise DeskError(ErrorKind.PRECONDITION, "no catalog is loaded on this node: run 'govnet catalog load FILE' first")
        code = cmd.item_code.strip()
        item = catalog.items.get(code)
        if item is None:
            raise DeskError(ErrorKind.NOT_FOUND, f"no item {code or '(empty)'} in catalog version {catalog.version}", "item_code")
        fingerprint = cmd.fingerprint()
        meta = self.store.meta
        now = self.clock.now()
        with self.store.transaction() as s:
            seen = find_idempotency(s, key)
            if seen is not None:
                if seen.request_hash != fingerprint:
                    raise DeskError(
                        ErrorKind.CONFLICT,
                        f"idempotency key {key!r} was already used for another application "
                        f"(receipt {seen.receipt}); use a new key for a new application",
                        "idempotency_key",
                    )
                row = load_case_row(s, seen.receipt)
                assert row is not None
                return Submitted(record_from_row(row), replayed=True)
            receipt = Receipt(meta.node_id, meta.incarnation, next_value(s, "case_seq"))
            try:
                transition = intake(
                    receipt=str(receipt),
                    item=item,
                    node_id=meta.node_id,
                    node_level=meta.level,
                    now=now,
                    catalog_version=catalog.version,
                    materials=cmd.materials,
                    agent=cmd.agent.strip(),
                    actor=cmd.actor or cmd.agent,
                )
            except LifecycleError as exc:
                raise _desk_error(exc) from None
            duplicate_of = ""
            if self.duplicate_window:
                duplicate_of = find_recent_duplicate(s, applicant.id_number, code, now - self.duplicate_window) or ""
            record = CaseRecord(
                state=transition.case,
                applicant=applicant,
                item_name=item.name,
                department=item.department,
                possible_duplicate=bool(duplicate_of),
                duplicate_of=duplicate_of,
            )
            insert_case(s, record, now)
            s.flush()  # the case row must exist before rows that refer to it
            append_event(s, meta, record.state.receipt, 1, transition.event, now)
            s.add(IdempotencyKey(key=key, request_hash=fingerprint, receipt=record.state.receipt, created_at=utc_text(now)))
        return Submitted(record, replayed=False)

    def act(self, receipt_text: str, action: str, params: ActParams) -> CaseRecord:
        receipt = self._parse_receipt(receipt_text)
        meta = self.store.meta
        now = self.clock.now()
        with self.store.transaction() as s:
            row = load_case_row(s, receipt)
            if row is None:
                raise DeskError(ErrorKind.NOT_FOUND, f"no case {receipt} on node {meta.node_id}", "receipt")
            record = record_from_row(row)
            if record.state.owner != meta.node_id:
                raise DeskError(
                    ErrorKind.PRECONDITION,
                    f"case {receipt} is owned by node {record.state.owner}; act on it there",
                )
            item = self._item_at(record.state.catalog_version, record.state.item_code)
            ctx = Context(item=item, node_id=meta.node_id, node_level=meta.level, now=now, calendar=self.calendar)
            try:
                transition = act(record.state, action, params, ctx)
            except LifecycleError as exc:
                raise _desk_error(exc) from None
            update_case(s, row, transition.case, now)
            append_event(s, meta, receipt, transition.case.event_count, transition.event, now)
            return CaseRecord(transition.case, record.applicant, record.item_name, record.department,
                              record.possible_duplicate, record.duplicate_of)

    def get(self, receipt_text: str) -> tuple[CaseRecord, list[StoredEvent]]:
        receipt = self._parse_receipt(receipt_text)
        record = self.store.get_case(receipt)
        if record is None:
            raise DeskError(ErrorKind.NOT_FOUND, f"no case {receipt} on node {self.store.meta.node_id}", "receipt")
        return record, self.store.events(receipt)

    def _parse_receipt(self, text: str) -> str:
        try:
            return str(Receipt.parse(text))
        except ReceiptError as exc:
            raise DeskError(ErrorKind.INVALID, str(exc), "receipt") from None

    def _item_at(self, version: int, code: str) -> ServiceItem:
        """The item as it was in the catalog version the case was accepted under."""
        current = self.store.catalog()
        if current.version == version and code in current.items:
            return current.items[code]
        with self.store.reading() as s:
            row = s.get(CatalogItemRow, (version, code))
        if row is None:
            raise DeskError(ErrorKind.PRECONDITION, f"catalog version {version} has no item {code}")
        return ServiceItem.from_dict(json.loads(row.data))


def _desk_error(exc: LifecycleError) -> DeskError:
    if isinstance(exc, InvalidParams):
        return DeskError(ErrorKind.INVALID, str(exc))
    assert isinstance(exc, ActionRefused) or isinstance(exc, LifecycleError)
    return DeskError(ErrorKind.PRECONDITION, str(exc))
