"""The error -> status map, pure (no node): codes, field violations, and the bound on what a
status can put in the trailers whatever a message holds."""

from __future__ import annotations

import base64
from urllib.parse import quote

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from govnet.node.app.desk import DeskError, ErrorKind
from govnet.node.domain.catalog import CatalogError
from govnet.node.rpc.errors import MAX_MESSAGE_CHARS, Refusal, refusal_for, short
from govnet.node.store.unit import Conflict
from govnet.sync.admission import Busy
from govnet.sync.transport.base import Refused
from govnet.sync.transport.grpc import RETRY_AFTER_KEY

S = grpc.StatusCode
SOFT_METADATA_LIMIT = 8 * 1024  # grpc's default grpc.max_metadata_size at a client


@pytest.mark.parametrize("error, code, field", [
    (DeskError(ErrorKind.INVALID, "name is empty", "applicant.name"), S.INVALID_ARGUMENT, "applicant.name"),
    (DeskError(ErrorKind.NOT_FOUND, "no case X"), S.NOT_FOUND, ""),
    (DeskError(ErrorKind.PRECONDITION, "no catalog"), S.FAILED_PRECONDITION, ""),
    (DeskError(ErrorKind.CONFLICT, "key used", "idempotency_key"), S.ALREADY_EXISTS, "idempotency_key"),
    (CatalogError("25 exceeds statutory_days 20", field="promised_days", index=4), S.INVALID_ARGUMENT,
     "items[3].promised_days"),
    (CatalogError("missing", field="code"), S.INVALID_ARGUMENT, "code"),
    (Conflict("version moved"), S.FAILED_PRECONDITION, ""),
    (Busy(1.5), S.RESOURCE_EXHAUSTED, ""),
    (Refused("unknown child"), S.FAILED_PRECONDITION, ""),
])
def test_each_refusal_has_its_code_and_field(error: Exception, code: grpc.StatusCode, field: str) -> None:
    refusal = refusal_for(error)
    assert refusal is not None and (refusal.code, refusal.field) == (code, field)
    assert refusal.message == str(error)


def test_a_bug_is_no_refusal() -> None:
    assert refusal_for(KeyError("x")) is None and refusal_for(ZeroDivisionError()) is None


def test_busy_carries_its_retry_hint() -> None:
    refusal = refusal_for(Busy(1.5))
    assert refusal is not None and refusal.trailing == ((RETRY_AFTER_KEY, "1500"),)


@pytest.mark.parametrize("text, expected", [
    ("short", "short"),
    ("two\nlines", "two lines"),
    ("x" * MAX_MESSAGE_CHARS, "x" * MAX_MESSAGE_CHARS),
    ("x" * (MAX_MESSAGE_CHARS + 1), "x" * (MAX_MESSAGE_CHARS - 1) + "…"),
])
def test_short_keeps_one_line_of_a_bounded_length(text: str, expected: str) -> None:
    assert short(text) == expected
    assert short(short(text)) == short(text)  # the boundary cuts again: nothing changes twice


def trailer_bytes(status: grpc.Status) -> int:
    """What a status puts in the trailers: the percent-encoded message and the base64 details."""
    message = len(quote(status.details.encode(), safe=bytes(range(0x20, 0x7F)).decode().replace("%", "")))
    details = sum(len(k) + len(base64.b64encode(v)) for k, v in status.trailing_metadata)
    return message + details


@pytest.mark.parametrize("character", ["x", "号", "\U00020000", "\n"])
def test_a_status_fits_the_metadata_limit_whatever_the_message_holds(character: str) -> None:
    huge = character * 100_000
    status = Refusal(S.INVALID_ARGUMENT, f"name {huge!r} is not a name", field="applicant." + huge).status()
    assert len(status.details) <= MAX_MESSAGE_CHARS and "\n" not in status.details
    assert trailer_bytes(status) < SOFT_METADATA_LIMIT * 3 // 4, trailer_bytes(status)
    rich = status_pb2.Status.FromString(dict(status.trailing_metadata)["grpc-status-details-bin"])
    bad = error_details_pb2.BadRequest()
    assert rich.message == status.details and rich.details[0].Unpack(bad)
    assert bad.field_violations[0].field.startswith("applicant.") and bad.field_violations[0].description == status.details
