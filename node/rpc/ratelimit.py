"""Rate limits at the RPC boundary: a call over its peer's or its account's rate is refused
before any servicer runs (the buckets themselves: ``node.domain.ratelimit``).

Put after ``node.rpc.boundary.Boundary`` in the server's interceptors, so it wraps the
servicer's own handler: the boundary parses the request and bounds the answer, the metrics
interceptor outside both counts the refusal under RESOURCE_EXHAUSTED like any other status.
The check is one table lookup on the event loop (no thread, no store), so a flood costs the
node microseconds per refused call while other clients' calls go on.

Who is calling:

* the **peer** is the node or client its certificate names when the call came over mutual
  TLS (grpc's auth context, ``x509_common_name``), else the peer's address without its port
  (every connection from one machine shares a bucket; every client on a Unix socket too);
* the **account** is the person whose bearer token the call carries (``authorization:
  Bearer …`` metadata), keyed for now by a hash of the token (never the token itself, which
  must not sit in memory longer than the call or reach a log), later by the token's subject.

Each call is charged to its peer's bucket of its class and, when it carries a token, its
account's: a client cannot escape its peer's limit by inventing tokens, and one person
cannot use up the limit of everyone behind the same office's address.

A refusal answers RESOURCE_EXHAUSTED "too many calls from this peer; retry after 0.25 s",
with the hint twice: the ``retry-after-ms`` trailing metadata the sync transport already
reads from a busy parent (``sync.transport.grpc``: the up-link backs off by it), and a
``google.rpc.RetryInfo`` in the rich status details for any gRPC client that knows the
standard. ``GovnetClient`` (the CLI) reads either and retries once.

Refusals are counted (``govnet_rate_limited_total{kind,class}``) and logged at most once a
``LOG_EVERY_S``: one warning line with how many calls were refused since the last and who
the latest was (its peer address or certificate name, or its account's hash), so a flood
cannot flood the log too.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from urllib.parse import unquote

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from govnet.node.domain.ratelimit import ACCOUNT, API, META, SYNC, RateLimiter, RateSettings, Verdict, charges_for
from govnet.node.rpc.boundary import Continuation, behavior_of, with_behavior
from govnet.node.rpc.reflection import SERVICE_NAME as REFLECTION
from govnet.sync.transport.grpc import RETRY_AFTER_KEY
from govnet.v1 import sync_pb2

_SYNC_SERVICE = sync_pb2.DESCRIPTOR.services_by_name["SyncService"].full_name
# A child's session: generous, or a reconnecting child's backlog stalls. Status and the
# quarantine calls are an operator's, in the API class.
SYNC_METHODS = frozenset(f"/{_SYNC_SERVICE}/{name}" for name in ("Hello", "Push", "Pull", "Digest"))
META_SERVICES = ("grpc.health.v1.Health", REFLECTION, "grpc.reflection.v1.ServerReflection")
CN_KEY = "x509_common_name"
LOG_EVERY_S = 60.0

log = logging.getLogger("govnet.rpc")


def class_of(method: str) -> str:
    """The class of a call (``/package.Service/Method``): sync, meta (health, reflection) or api."""
    if method in SYNC_METHODS:
        return SYNC
    service = method.lstrip("/").split("/", 1)[0]
    return META if service in META_SERVICES else API


def address_of(peer: str) -> str:
    """A gRPC peer string without its port: ``ipv4:10.0.0.7:51234`` -> ``ipv4:10.0.0.7``,
    ``ipv6:%5B::1%5D:51234`` (grpc percent-encodes the brackets) -> ``ipv6:[::1]``; ``unix:…``
    and anything else unchanged."""
    head, sep, port = peer.rpartition(":")
    if sep and port.isdigit() and head.partition(":")[0] in ("ipv4", "ipv6"):
        return unquote(head)
    return peer


def peer_key(context: grpc.aio.ServicerContext) -> str:
    """Who is calling: the certificate's common name over mutual TLS, else the address without port.
    (Where node.rpc.peer's ``peer_of(context)`` exists, its identity is this key.)"""
    for name in context.auth_context().get(CN_KEY) or ():
        return "cn:" + (name.decode(errors="replace") if isinstance(name, bytes) else str(name))
    return address_of(context.peer() or "")


def account_key(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    """The account a call speaks for: a hash of its bearer token (None without one).
    (Where tokens name their person, the token's subject is this key.)"""
    for key, value in metadata or ():
        if key != "authorization":
            continue
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        scheme, _, token = text.strip().partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            return "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    return None


def retry_hint_ms(retry_after_s: float) -> int:
    """The wait a refusal asks for, in whole milliseconds, rounded up (never 0: "now" would refuse again)."""
    return max(1, math.ceil(retry_after_s * 1000))


def refusal_status(verdict: Verdict) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str | bytes], ...]]:
    """The code, message and trailing metadata of a refused call (both forms of the hint)."""
    return _refusal(retry_hint_ms(verdict.retry_after_s), "account" if verdict.refused_by == ACCOUNT else "peer")


@functools.lru_cache(maxsize=4096)
def _refusal(ms: int, who: str) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str | bytes], ...]]:
    # Built once per hint: a flood's refusals mostly ask for the same few milliseconds.
    message = f"too many calls from this {who}; retry after {ms / 1000:.2f} s"
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    delay = duration_pb2.Duration(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    status = rpc_status.to_status(status_pb2.Status(code=code.value[0], message=message, details=[detail]))
    return code, message, ((RETRY_AFTER_KEY, str(ms)), *status.trailing_metadata)


class RateLimit(grpc.aio.ServerInterceptor):
    """Refuses a call over its peer's or account's rate before the servicer runs (see the module docstring).

    ``on_refused(kind, call_class)`` is told of every refusal (the node's metric);
    ``monotonic`` is the clock the buckets drain by."""

    def __init__(self, settings: RateSettings, on_refused: Callable[[str, str], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limits = settings.limits()
        self.limiter = RateLimiter(settings.max_keys)
        self.on_refused = on_refused
        self.monotonic = monotonic
        self._logged_at = -math.inf
        self._unlogged = 0  # refusals since the last log line

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        call_class = class_of(details.method)
        if not any(cls == call_class and not rate.unlimited for (cls, _), rate in self.limits.items()):
            return handler
        account = account_key(details.invocation_metadata)
        inner = behavior_of(handler)

        async def admit(context: grpc.aio.ServicerContext) -> None:
            peer = peer_key(context)
            now = self.monotonic()
            verdict = self.limiter.admit(charges_for(self.limits, call_class, peer, account), now)
            if verdict.admitted:
                return
            if self.on_refused is not None:
                self.on_refused(verdict.refused_by, call_class)
            self._noted(now, call_class, verdict.refused_by, account if verdict.refused_by == ACCOUNT else peer)
            code, message, trailing = refusal_status(verdict)
            await context.abort(code, message, trailing)

        if inspect.isasyncgenfunction(inner):

            async def streamed(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                await admit(context)
                async for reply in inner(request, context):
                    yield reply

            return with_behavior(handler, streamed, handler.request_deserializer)

        async def answered(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await admit(context)
            result = inner(request, context)
            return await result if inspect.isawaitable(result) else result

        return with_behavior(handler, answered, handler.request_deserializer)

    def _noted(self, now: float, call_class: str, kind: str, who: str | None) -> None:
        """Log the refusals, one line a ``LOG_EVERY_S`` at most."""
        self._unlogged += 1
        if now - self._logged_at < LOG_EVERY_S:
            return
        log.warning("rate limit: %d call(s) refused since the last report; the latest: %s %s (%s calls)",
                    self._unlogged, kind, who, call_class,
                    extra={"kind": kind, "who": who, "class": call_class})
        self._logged_at, self._unlogged = now, 0
