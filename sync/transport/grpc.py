"""The real transport: the child calls its parent's SyncService over gRPC.

Each call has a deadline. A call that fails with UNAVAILABLE is retried a couple of
times at once (tenacity; short, so a blip costs milliseconds, not a backoff period);
anything longer is the link driver's business. Push is a stream (``GrpcPushStream``):
each of its steps has the deadline instead, and it is not retried. Status codes become the transport
errors the driver understands: RESOURCE_EXHAUSTED (with the parent's ``retry-after-ms``
hint) is ``ParentBusy``; FAILED_PRECONDITION, PERMISSION_DENIED and INVALID_ARGUMENT
are ``Refused``; everything else is ``LinkDown``.

A batch the receiver refuses itself is ``BatchRefused``, which the session answers by
splitting (``sync.uplink``): RESOURCE_EXHAUSTED without the retry hint saying a message was
larger than the limit (the receiver's, "Received message larger than max", or this side's
own send limit), on a push or a pull; and INVALID_ARGUMENT on a push (a batch the parent
could not parse). A push stream that such an error ended fails the next write with "RPC
already finished": the stream reads the call's final status and reports that instead, so
the cause is never hidden behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from govnet.sync.cursor import Cursor
from govnet.sync.digest import PeriodDigest
from govnet.sync.envelope import Envelope
from govnet.sync.transport.base import BatchRefused, Hello, HelloReply, LinkDown, ParentBusy, PullReply, Refused
from govnet.sync.transport.wire import cursor_from_proto, cursor_to_proto, envelope_from_proto, push_request
from govnet.v1 import sync_pb2, sync_pb2_grpc

T = TypeVar("T")
RETRY_AFTER_KEY = "retry-after-ms"
REFUSING = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT)
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # The link driver owns the backoff (persisted, full jitter, reset by contact). Left at
    # gRPC's defaults (1 s growing to 120 s), the channel keeps a second, hidden backoff:
    # after an outage it fails every call at once with the stale "connection refused" until
    # its own timer fires, so a parent that is back stays unreached for up to two minutes.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() is grpc.StatusCode.UNAVAILABLE


class GrpcTransport:
    """``credentials``: the node's own certificate and the city's root (mutual TLS; None:
    plaintext); ``server_name``: the name the parent's certificate must carry (its id's)."""

    def __init__(self, address: str, timeout_s: float = 10.0, retries: int = 3,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 credentials: grpc.ChannelCredentials | None = None, server_name: str | None = None) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.retries = retries
        self.sleep = sleep  # injectable, so tests need not wait
        self.server_name = server_name
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        else:
            options = [*CHANNEL_OPTIONS, *([("grpc.ssl_target_name_override", server_name)] if server_name else [])]
            self._channel = grpc.aio.secure_channel(address, credentials, options=options)
        self._stub = sync_pb2_grpc.SyncServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: Callable[..., Any], request: Any, timeout_s: float | None = None,
                    batch: bool = False) -> Any:
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.retries),
                wait=wait_exponential(multiplier=0.05, max=0.5),
                retry=retry_if_exception(_transient),
                sleep=self.sleep,
                reraise=True,
            ):
                with attempt:
                    return await method(request, timeout=timeout_s or self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, self.address, self.server_name, batch=batch) from None
        raise AssertionError("unreachable")

    async def hello(self, hello: Hello) -> HelloReply:
        r = await self._call(self._stub.Hello, sync_pb2.HelloRequest(
            node_id=hello.node_id, level=hello.level, protocol_version=hello.protocol_version,
            catalog_version=hello.catalog_version, incarnation=hello.incarnation,
            catalog_releases=dict(hello.catalog_releases)))
        return HelloReply(r.node_id, r.level, r.protocol_version, r.incarnation, r.catalog_version)

    def open_push(self, sender: str, incarnation: int, settled_below: int = 0) -> GrpcPushStream:
        return GrpcPushStream(self._stub, self.address, sender, incarnation, settled_below, self.timeout_s)

    async def pull(self, child: str, child_incarnation: int, parent_incarnation: int, applied: Cursor,
                   max_envelopes: int, max_bytes: int = 0) -> PullReply:
        r = await self._call(self._stub.Pull, sync_pb2.PullRequest(
            child=child, child_incarnation=child_incarnation, parent_incarnation=parent_incarnation,
            applied=cursor_to_proto(applied), max_envelopes=max_envelopes, max_bytes=max_bytes), batch=True)
        return PullReply(r.parent_incarnation, tuple(envelope_from_proto(e) for e in r.envelopes), r.more,
                         r.settled_below)

    async def digest(self, child: str, periods: Sequence[PeriodDigest]) -> list[str]:
        r = await self._call(self._stub.Digest, sync_pb2.DigestRequest(
            child=child, periods=[sync_pb2.PeriodDigest(period=p.period, count=p.count, hash=p.hash) for p in periods]))
        return list(r.divergent)


class GrpcPushStream:
    """The Push call: batches written in order, acknowledgements read in order.

    The call has no deadline of its own (a long backlog may take minutes on one stream);
    instead every write and every acknowledgement must complete within ``timeout_s``, so a
    parent that stops answering is noticed as quickly as with a single call. No retries
    here: a stream that fails is the link driver's to retry (the batches it did not get an
    acknowledgement for are sent again, and the parent's cursor drops what it had stored).
    """

    def __init__(self, stub: sync_pb2_grpc.SyncServiceStub, address: str, sender: str, incarnation: int,
                 settled_below: int, timeout_s: float) -> None:
        self.address = address
        self.sender = sender
        self.incarnation = incarnation
        self.settled_below = settled_below
        self.timeout_s = timeout_s
        self._call = stub.Push()

    async def _step(self, step: Awaitable[T], doing: str) -> T:
        try:
            return await asyncio.wait_for(step, self.timeout_s)
        except TimeoutError:
            self._call.cancel()
            raise LinkDown(f"{self.address}: no {doing} within {self.timeout_s:g} s") from None
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, self.address, batch=True, push=True) from None
        except asyncio.InvalidStateError:
            # "RPC already finished": the parent ended the stream (refused a batch); say why.
            raise await self._final_status() from None

    async def _final_status(self) -> Exception:
        try:
            code = await asyncio.wait_for(self._call.code(), self.timeout_s)
            details = await self._call.details()
        except (TimeoutError, grpc.aio.AioRpcError):
            return LinkDown(f"{self.address}: the push stream ended")
        return _classify(code, details or "", (), self.address, batch=True, push=True)

    async def send(self, envelopes: Sequence[Envelope]) -> None:
        request = push_request(self.sender, self.incarnation, envelopes, self.settled_below)
        await self._step(self._call.write(request), "room to send a batch")

    async def acknowledgement(self) -> Cursor:
        reply = await self._step(self._call.read(), "acknowledgement")
        if reply is grpc.aio.EOF:  # the parent ended the stream without saying why
            raise LinkDown(f"{self.address}: the push stream ended before every batch was acknowledged")
        return cursor_from_proto(reply.applied)

    async def close(self) -> None:
        """End the stream the way a finished call ends (so the parent counts it OK, not
        CANCELLED); cancel it if that does not happen within the timeout."""
        if self._call.done():
            return
        try:
            await asyncio.wait_for(self._finish(), self.timeout_s)
        except (TimeoutError, grpc.aio.AioRpcError):
            pass
        finally:
            self._call.cancel()

    async def _finish(self) -> None:
        await self._call.done_writing()
        await self._call.code()


def _translate(exc: grpc.aio.AioRpcError, address: str, server_name: str | None = None, *, batch: bool = False,
               push: bool = False) -> Exception:
    return _classify(exc.code(), exc.details() or "", exc.trailing_metadata() or (), address, server_name,
                     batch=batch, push=push)


def _classify(code: grpc.StatusCode, details: str, trailing: Any, address: str, server_name: str | None = None, *,
              batch: bool = False, push: bool = False) -> Exception:
    """The transport error for a status. ``batch``: the call carried a batch (push or pull);
    ``push``: it was the Push stream."""
    if code is grpc.StatusCode.UNAVAILABLE and "Hostname Verification" in details:
        # TLS: the node at that address holds a certificate for another node than the parent.
        expected = (server_name or "").split(".", 1)[0]
        return Refused(f"{address} is not node {expected}: its certificate names another node (check node.parent)")
    hint: int | None = None
    for key, value in trailing:
        if key == RETRY_AFTER_KEY:
            try:
                hint = int(value)
            except (TypeError, ValueError):
                hint = 1000
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        if batch and hint is None and "larger than max" in details.lower():
            return BatchRefused(f"{code.name}: {details}")
        return ParentBusy((1000 if hint is None else hint) / 1000, details)
    if push and code is grpc.StatusCode.INVALID_ARGUMENT:
        return BatchRefused(f"{code.name}: {details}")
    if code in REFUSING:
        return Refused(details)
    return LinkDown(f"{address}: {code.name}: {details}")
