"""The error -> status map: how a refusal leaves the node, in one place.

Every servicer method is wrapped by ``rpc`` (``rpc_stream`` for a streamed answer). A
refusal the domain raises (``DeskError``, ``CatalogError``, a store ``Conflict``, the
sync floor's ``Busy`` and ``Refused``) becomes a ``Refusal``: a status code, the domain's
one-line message and, when the refusal names a request field, that field's path. It
leaves as a rich status (grpcio-status): the code, the message as the status message,
and a ``google.rpc.BadRequest`` with one ``FieldViolation(field, description)`` in the
details, so a program can highlight the field and a person reads the same line as before.
Anything else is a bug: it is logged with its trace and answered INTERNAL without
internals.

Bounded, whatever the message holds. The status message travels percent-encoded in the
``grpc-message`` trailer (a Chinese character is 9 bytes there) and the details, base64,
in ``grpc-status-details-bin``; a client refuses trailers over its metadata limit (8 KiB
soft, 16 KiB hard by default) with "received metadata size exceeds hard limit" instead of
the real reason. So every message is cut to ``MAX_MESSAGE_CHARS`` characters (and three times as many
bytes) on one line and every field path to ``MAX_FIELD_CHARS``, here and again at the
boundary (``node.rpc.boundary``) for messages that never came through this map: at most
900 × 3 + (900 + 900 + 360) × 4/3 ≈ 5.6 KB of trailers (tests/rpc/test_errors_map.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from govnet.node.app.desk import DeskError, ErrorKind
from govnet.node.app.inbox import Forbidden
from govnet.node.domain.catalog import CatalogError
from govnet.node.store.unit import Conflict
from govnet.sync.admission import Busy
from govnet.sync.transport.base import Refused
from govnet.sync.transport.grpc import RETRY_AFTER_KEY

log = logging.getLogger("govnet.rpc")

MAX_MESSAGE_CHARS = 300
MAX_FIELD_CHARS = 120
ELLIPSIS = "…"

STATUS_FOR = {
    ErrorKind.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.DENIED: grpc.StatusCode.PERMISSION_DENIED,
}
INTERNAL_MESSAGE = "internal error in the node; its log has the details"

R = TypeVar("R")


def short(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters and 3 × ``limit`` bytes of UTF-8
    (what ``limit`` Chinese characters take; rarer 4-byte characters are cut sooner), cut
    ones ending with '…'."""
    line = " ".join(text.split()) if ("\n" in text or "\r" in text) else text
    max_bytes = 3 * limit
    if len(line) <= limit and len(line.encode()) <= max_bytes:
        return line
    line = line[: limit - len(ELLIPSIS)]
    encoded = line.encode()
    if len(encoded) > max_bytes - len(ELLIPSIS.encode()):
        line = encoded[: max_bytes - len(ELLIPSIS.encode())].decode(errors="ignore")  # drops a cut character
    return line + ELLIPSIS


@dataclass(frozen=True)
class Refusal:
    """How one refusal leaves the node: code, one-line message, the request field it is about."""

    code: grpc.StatusCode
    message: str
    field: str = ""  # a request field path (``applicant.name``, ``items[3].code``), "" when none
    trailing: tuple[tuple[str, str], ...] = ()  # extra trailing metadata (a retry hint)

    def status(self) -> grpc.Status:
        """The rich status: the (cut) message, and a BadRequest in the details when a field is named."""
        message = short(self.message)
        rich = status_pb2.Status(code=self.code.value[0], message=message)
        if self.field:
            violation = error_details_pb2.BadRequest.FieldViolation(field=short(self.field, MAX_FIELD_CHARS),
                                                                    description=message)
            detail = any_pb2.Any()
            detail.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
            rich.details.append(detail)
        return rpc_status.to_status(rich)


def catalog_field(exc: CatalogError) -> str:
    """The request path of a catalog refusal: ``items[i].field`` when the item's place is known."""
    field = exc.field or ""
    if exc.index is None:
        return field
    return f"items[{exc.index - 1}]" + (f".{field}" if field else "")


def refusal_for(exc: BaseException) -> Refusal | None:
    """The status a domain refusal answers with; None for anything unexpected (a bug)."""
    if isinstance(exc, DeskError):
        return Refusal(STATUS_FOR[exc.kind], str(exc), exc.field)
    if isinstance(exc, CatalogError):
        return Refusal(grpc.StatusCode.INVALID_ARGUMENT, str(exc), catalog_field(exc))
    if isinstance(exc, Conflict):
        return Refusal(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    if isinstance(exc, Busy):
        retry_ms = str(int(exc.retry_after_s * 1000))
        return Refusal(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), trailing=((RETRY_AFTER_KEY, retry_ms),))
    if isinstance(exc, Forbidden):  # what this peer may not send (logged and counted where refused)
        return Refusal(grpc.StatusCode.PERMISSION_DENIED, str(exc))
    if isinstance(exc, Refused):
        return Refusal(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    return None


async def refuse(context: grpc.aio.ServicerContext, refusal: Refusal) -> NoReturn:
    """End the call with ``refusal`` (raises grpc's AbortError, as ``context.abort`` does)."""
    status = refusal.status()
    await context.abort(status.code, status.details, (*refusal.trailing, *status.trailing_metadata))
    raise AssertionError("unreachable: abort raises")


async def abort_for(exc: Exception, context: grpc.aio.ServicerContext, name: str) -> NoReturn:
    """End a call that raised ``exc`` with its status (INTERNAL, logged with its trace, if unexpected)."""
    refusal = refusal_for(exc)
    if refusal is None:
        log.error("unexpected error in %s", name, exc_info=exc)
        refusal = Refusal(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
    await refuse(context, refusal)


def rpc(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Map domain errors to statuses (``refusal_for``); never leak a trace to the caller."""

    @wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await method(self, request, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # noqa: BLE001  (each becomes a status; abort_for logs the unexpected)
            await abort_for(exc, context, method.__name__)

    return wrapper


def rpc_stream(method: Callable[..., AsyncIterator[R]]) -> Callable[..., AsyncIterator[R]]:
    """``rpc`` for a method that answers with a stream."""

    @wraps(method)
    async def wrapper(self: Any, requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[R]:
        try:
            async for reply in method(self, requests, context):
                yield reply
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # noqa: BLE001  (each becomes a status; abort_for logs the unexpected)
            await abort_for(exc, context, method.__name__)

    return wrapper
