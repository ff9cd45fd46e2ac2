"""The RPC boundary: every call, of every service (govnet's, health, reflection), passes here.

grpc.aio parses a request with its handler's deserializer *before* any servicer or
interceptor code runs (for a stream, inside grpc's own read): bytes that are not the
request message (random bytes, a truncated body, a string field that is not UTF-8) make
the parser raise there, and grpc answers UNKNOWN with Python's exception text, logs a
traceback, and no interceptor sees a status. ``Boundary`` is a server interceptor that
re-wraps each ``RpcMethodHandler`` so grpc hands over the raw bytes (no deserializer)
and govnet parses them, inside a try:

* a body that does not parse answers INVALID_ARGUMENT "request body is not a valid
  govnet.v1.SubmitCaseRequest (...)" and logs one warning line with method and peer;
* the servicer gets a context whose ``abort`` and ``set_details`` cut the message to a
  short line and drop oversized trailers (``node.rpc.errors`` explains the bound), so no
  answer can exceed the client's metadata limit, whatever a message echoes;
* a method a servicer does not implement answers UNIMPLEMENTED; any other exception that
  escapes a servicer (a bug) is logged once with its trace and answers INTERNAL.

The shape of each method is kept: unary or streamed requests (a stream's messages are
parsed one by one as the servicer reads them: sync Push is a bidirectional stream), and
streamed answers either as an async generator or through ``context.write``.

Interceptors run outside in: the metrics interceptor (``node.process.metrics``) is put
before this one, so it wraps what this returns and counts the INVALID_ARGUMENT of an
undecodable call like any other status. Since grpc no longer parses the request, the
parsed message of a unary call is left in ``PARSED`` (a context variable: one per call's
task) for the metrics' log line.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any

import grpc

from govnet.node.rpc.errors import INTERNAL_MESSAGE, short

log = logging.getLogger("govnet.rpc")

Behavior = Callable[[Any, Any], Any]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]

MAX_TRAILER_VALUE_BYTES = 4096  # one trailing metadata value; the node's own are far smaller
PARSED: ContextVar[Any] = ContextVar("govnet_rpc_parsed_request", default=None)

_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def behavior_of(handler: grpc.RpcMethodHandler) -> Behavior:
    """The one function of a handler that serves its calls."""
    found = handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    assert found is not None, "a method handler without a behavior"
    return found


def with_behavior(handler: grpc.RpcMethodHandler, behavior: Behavior, request_deserializer: Any) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` serving with ``behavior``."""
    factory: Any = _FACTORIES[(bool(handler.request_streaming), bool(handler.response_streaming))]
    handled: grpc.RpcMethodHandler = factory(behavior, request_deserializer=request_deserializer,
                                             response_serializer=handler.response_serializer)
    return handled


def message_name(deserializer: Any) -> str:
    """The full name of the message a generated ``FromString`` parses ("request" if unknown)."""
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", "") or "request")


def _bounded_metadata(metadata: Sequence[tuple[str, str | bytes]] | None) -> tuple[tuple[str, str | bytes], ...]:
    return tuple((k, v) for k, v in (metadata or ()) if len(v) <= MAX_TRAILER_VALUE_BYTES)


class BoundedContext:
    """A servicer context whose status messages are short and whose trailers are bounded."""

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def abort(self, code: grpc.StatusCode, details: str = "",
                    trailing_metadata: Sequence[tuple[str, str | bytes]] = ()) -> None:
        await self._context.abort(code, short(details), _bounded_metadata(trailing_metadata))

    def set_details(self, details: str) -> None:
        self._context.set_details(short(details))

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str | bytes]]) -> None:
        self._context.set_trailing_metadata(_bounded_metadata(metadata))


class Boundary(grpc.aio.ServerInterceptor):
    """Parses every request itself, bounds every answer's status (see the module docstring)."""

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None  # grpc answers UNIMPLEMENTED "Method not found!"
        return guarded(handler, details.method)


def guarded(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    """``handler`` re-wrapped: govnet parses the request bytes and bounds the status."""
    parse = handler.request_deserializer
    inner = behavior_of(handler)
    what = message_name(parse)

    async def parsed(raw: Any, context: grpc.aio.ServicerContext) -> Any:
        if parse is None or not isinstance(raw, bytes):
            return raw
        try:
            return parse(raw)
        except Exception as exc:  # noqa: BLE001  (whatever the parser raises, the body is not the message)
            reason = str(exc).rsplit(": ", 1)[-1] if ": " in str(exc) else type(exc).__name__
            peer = context.peer()
            log.warning("undecodable request to %s from %s: %s", method, peer, short(reason, 120),
                        extra={"method": method, "peer": peer})
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, short(f"request body is not a valid {what} ({reason})"))
            raise AssertionError("unreachable: abort raises") from None

    async def stream_of(raws: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for raw in raws:
            yield await parsed(raw, context)

    async def request_of(raw: Any, context: grpc.aio.ServicerContext) -> Any:
        if handler.request_streaming:
            return stream_of(raw, context)
        request = await parsed(raw, context)
        PARSED.set(request)
        return request

    async def failed(exc: Exception, context: grpc.aio.ServicerContext) -> None:
        if isinstance(exc, NotImplementedError):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented by this node")
        log.error("unexpected error in %s", method, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)

    if inspect.isasyncgenfunction(inner):

        async def streamed(raw: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            bounded = BoundedContext(context)
            try:
                async for reply in inner(await request_of(raw, context), bounded):
                    yield reply
            except (asyncio.CancelledError, grpc.aio.AbortError):
                raise
            except Exception as exc:  # noqa: BLE001  (a bug in a servicer: logged, INTERNAL)
                await failed(exc, context)

        return with_behavior(handler, streamed, None)

    async def answered(raw: Any, context: grpc.aio.ServicerContext) -> Any:
        bounded = BoundedContext(context)
        try:
            result = inner(await request_of(raw, context), bounded)
            if inspect.isawaitable(result):
                result = await result
            if handler.response_streaming and result is not None:
                # a reader/writer servicer returns None; a plain iterable is written out here
                for reply in result:
                    await context.write(reply)
                return None
            return result
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # noqa: BLE001  (a bug in a servicer: logged, INTERNAL)
            await failed(exc, context)

    return with_behavior(handler, answered, None)
