"""The node's HTTP port: monitoring endpoints now, the console (issue #14) later, one app.

``/metrics``  Prometheus text format from the node's own registry (``node.process.metrics``).
``/healthz``  200 while the process answers at all (liveness).
``/readyz``   200 when the store is open and its schema is at this release's head; 503
              with the reason otherwise (readiness: send no traffic yet).
``/status``   a small JSON document: node, level, gRPC address, readiness, per-link sync
              state, open alarms, the calendar (last year held, the coming year when it is
              missing from 1 November, open cases with a provisional due date).
              ``govnet status TOPOLOGY`` reads it from every node.

How it is served. A Starlette app (``build_app``) served by uvicorn on the node's own
asyncio loop, beside the grpc.aio server (``HttpServer``): no thread or process of its
own. Three consequences shape this module:

- *Nothing blocking runs on the loop.* Every store read (readiness, the facts behind
  ``/status``, the collectors behind ``/metrics``) runs in one of the endpoints' own
  worker threads (``NodeHttp._read``, ``READ_THREADS`` of them); a handler only awaits.
  Not the loop's default executor: the gRPC servicers do their store work there, and a
  burst of slow scrapes must not make sync batches wait for a thread.
- *The node owns the process.* uvicorn's own SIGINT/SIGTERM handling is switched off
  (``_EmbeddedServer``); ``server.serve`` handles the signals and stops the port in the
  node's stop order, last before the store closes, so ``/metrics`` answers until the end.
- *The port is bound before anything starts.* ``bind`` returns a listening-ready socket
  (or raises ``OSError``), so the composition root binds it first and a port in use stops
  the start before the gRPC server exists; uvicorn is handed the socket.

The edge, for every route (``build_app``):

- each route names its methods; any other method answers 405 with ``Allow`` (a GET route
  also takes HEAD), an unknown path 404, both as a one-line JSON ``{"error": ...}``;
- every request has a time limit (``http.handler_timeout_s``): past it the handler is
  cancelled, the client gets 503 with a one-line body and the log one warning line. A
  store read already running in a worker thread finishes there, unseen;
- an unexpected error answers 500 ``{"error": "internal error; see the node's log"}``;
  the traceback goes to the log only, never to the client.

Adding pages (the console): give ``build_app`` more routes. ``NodeHttp.routes()`` are the
monitoring endpoints; the composition root joins them with whatever else the node serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, TypeVar

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

from govnet.node.app.calendar_years import CalendarYears
from govnet.node.app.links import UpLink
from govnet.node.domain.calendar import local_date
from govnet.node.domain.clock import Clock
from govnet.node.process.config import Address, HttpSettings
from govnet.node.process.metrics import NodeMetrics, read_facts
from govnet.node.store.engine import Store, schema_head

__all__ = ["HttpServer", "NodeHttp", "Readiness", "bind", "build_app", "readiness"]

log = logging.getLogger("govnet.http")

T = TypeVar("T")

# Request bodies: the monitoring endpoints take none; 64 KiB leaves room for a console form.
MAX_BODY_BYTES = 64 * 1024
# The request line plus headers. h11 stops buffering a request head that is still incomplete
# past this size (400), so a slow client cannot make the node hold megabytes; a head that
# arrives whole in one read is not measured by h11, so ``_Guard`` refuses one over the same
# size with 431. 16 KiB is h11's own default, written down on purpose: browsers and scrapers
# send well under 8 KiB.
MAX_HEAD_BYTES = 16 * 1024
# An idle keep-alive connection is closed after this many seconds, so idle or abandoned
# clients do not hold connections (and slots under MAX_CONNECTIONS). Scrapers come back
# every 15 s or more and simply reconnect.
KEEP_ALIVE_S = 5
# Connections plus requests in progress beyond this answer 503 at once instead of piling
# up: a flood of clients then costs the node bounded memory and bounded worker threads,
# and the gRPC side keeps its share of the loop. Enough for scrapers, `govnet status`
# and a console's clerks. What frees a slot held by a client that never sends a whole
# request is the head deadline (``http.head_deadline_s``, ``_H11``): uvicorn has none of
# its own (its keep-alive timer starts only after an answer and stops at the first byte
# received), and without it 110 silent connections made every request answer 503 for as
# long as they stayed open (measured).
MAX_CONNECTIONS = 100
# Threads reading the store for the monitoring endpoints (``NodeHttp``): a scraper, a
# `govnet status` and a readiness probe at once; more requests queue (within the time limit).
READ_THREADS = 4


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


def readiness(store: Store, serving: bool) -> Readiness:
    """Blocking (it reads the store): call it off the event loop."""
    if not serving:
        return Readiness(False, "the node is starting or stopping")
    try:
        revision = store.schema_revision()
    except Exception as exc:  # noqa: BLE001 (a closed or broken store is exactly what this reports)
        return Readiness(False, f"the store cannot be read: {exc.__class__.__name__}: {exc}")
    head = schema_head()
    if revision != head:
        return Readiness(False, f"the store's schema is at {revision}, this release needs {head}")
    return Readiness(True, "store open, schema at " + head)


def _short(text: str, limit: int = 60) -> str:
    """A prefix of client input fit to quote in an answer (never the whole of a long path)."""
    return text if len(text) <= limit else text[:limit] + "…"


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    data = json.dumps(body, ensure_ascii=False).encode()
    return Response(data, status, headers, media_type="application/json; charset=utf-8")


class NodeHttp:
    """The monitoring endpoints over the node's store; ``serving`` is switched by the node
    as it starts and stops (``/readyz`` says "not ready" while it is off)."""

    def __init__(self, store: Store, uplink: UpLink | None, clock: Clock, flush_interval: timedelta,
                 metrics: NodeMetrics, grpc_address: str, calendar_years: CalendarYears | None = None) -> None:
        self.store, self.uplink, self.clock, self.flush_interval = store, uplink, clock, flush_interval
        self.calendar_years = calendar_years
        self.metrics = metrics
        self.grpc_address = grpc_address
        self.serving = False
        # The endpoints' own worker threads, not the loop's default executor: that one runs
        # the gRPC servicers' store work, and a burst of slow scrapes (each read goes on in its
        # thread after its request timed out) must not keep sync batches waiting for a thread.
        self._readers = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="govnet-http")

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, functools.partial(fn, *args))

    def close(self) -> None:
        """After the port has stopped: reads still running finish in their threads, unwaited."""
        self._readers.shutdown(wait=False, cancel_futures=True)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/metrics", self._metrics, methods=["GET"]),
            Route("/healthz", self._healthz, methods=["GET"]),
            Route("/readyz", self._readyz, methods=["GET"]),
            Route("/status", self._status, methods=["GET"]),
        ]

    async def _metrics(self, request: Request) -> Response:
        # The store collector reads the store while the registry is rendered.
        body = await self._read(generate_latest, self.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def _healthz(self, request: Request) -> Response:
        return _json({"alive": True})

    async def _readyz(self, request: Request) -> Response:
        r = await self._read(readiness, self.store, self.serving)
        return _json(asdict(r), 200 if r.ready else 503)

    async def _status(self, request: Request) -> Response:
        return _json(await self._read(self.status))

    def status(self) -> dict[str, Any]:
        """Blocking (it reads the store): call it off the event loop."""
        r = readiness(self.store, self.serving)
        facts = read_facts(self.store, self.uplink, self.clock.now(), self.flush_interval)
        return {
            "node": self.store.meta.node_id,
            "level": self.store.meta.level.value,
            "incarnation": self.store.meta.incarnation,
            "address": self.grpc_address,
            "health": "serving" if r.ready else "not ready",
            "ready": r.ready,
            "reason": r.reason,
            "links": [asdict(link) for link in facts.links],
            "open_alarms": facts.alarms_open,
            "overdue": facts.overdue,
            "cases": sum(c for _, _, c in facts.cases),
            "quarantined": facts.quarantined,
            **({"calendar": self.calendar_years.status(local_date(self.clock.now()))}
               if self.calendar_years is not None else {}),
        }


# --- the app: routes in, the edge's rules around them -------------------------------------------

class _AnswerNotSent(Exception):
    """The connection could not take the answer: the client left, or the server had already
    refused the request (e.g. a malformed chunked body, answered 400 by uvicorn meanwhile)."""


class _Guard:
    """Outermost (inside Starlette's own error middleware, which then never sees an error):
    the size of the request head, the time limit, and a one-line answer for an unexpected error."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app, self.timeout_s = app, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = len(scope["method"]) + len(scope.get("raw_path") or b"") + len(scope["query_string"]) + sum(
            len(name) + len(value) + 4 for name, value in scope["headers"])
        if head > MAX_HEAD_BYTES:
            await _json({"error": f"the request's line and headers exceed {MAX_HEAD_BYTES} bytes"}, 431)(
                scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            try:
                await send(message)
            except Exception as exc:
                raise _AnswerNotSent(f"{exc.__class__.__name__}: {exc}") from exc

        where = {"method": _short(scope["method"]), "path": _short(scope["path"])}
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.app(scope, receive, tracked)
        except TimeoutError:
            log.warning("http request over its time limit", extra={**where, "limit_s": self.timeout_s})
            if not started:  # else the client sees a cut-off answer: nothing else can be said now
                await _json({"error": f"no answer within {self.timeout_s:g} s; try again later"}, 503)(
                    scope, receive, send)
        except _AnswerNotSent as exc:  # the client's doing, not a fault of ours: no traceback
            log.warning("http answer not sent", extra={**where, "reason": _short(str(exc), 200)})
        except Exception:
            log.exception("http request failed", extra=where)
            if not started:
                await _json({"error": "internal error; see the node's log"}, 500)(scope, receive, send)


def _allow(header: str) -> str:
    """Starlette's ``Allow`` comes from a set; say it in one order (GET, HEAD, then the rest)."""
    methods = {m.strip() for m in header.split(",") if m.strip()}
    return ", ".join(sorted(methods, key=lambda m: (m != "GET", m != "HEAD", m)))


def build_app(routes: Sequence[BaseRoute], settings: HttpSettings) -> Starlette:
    """The node's ASGI app: ``routes`` behind the edge's rules (see the module docstring)."""
    paths = ", ".join(r.path for r in routes if isinstance(r, Route))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            message = f"no page {_short(request.url.path)}; try {paths}"
        elif exc.status_code == 405:
            headers["Allow"] = _allow(headers.get("Allow", "GET"))
            message = f"{_short(request.method)} is not allowed on {request.url.path}; use {headers['Allow']}"
        else:
            message = exc.detail.splitlines()[0] if exc.detail else "bad request"
        return _json({"error": message}, exc.status_code, headers)

    return Starlette(routes=list(routes), middleware=[Middleware(_Guard, timeout_s=settings.handler_timeout_s)],
                     exception_handlers={HTTPException: http_error}, max_body_size=MAX_BODY_BYTES)


# --- serving it on the node's loop --------------------------------------------------------------

def bind(listen: Address) -> socket.socket:
    """A TCP socket bound to ``listen`` (port 0: any free port), ready for uvicorn to listen on.
    Raises ``OSError`` when the address is in use or not this machine's."""
    infos = socket.getaddrinfo(listen.host, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # A restart may bind while the last run's connections sit in TIME_WAIT; another
        # listening socket on the port still refuses the bind (Linux), as it should.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class _H11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for the request head (``head_deadline_s``, set
    per server by ``HttpServer``): when the deadline passes and no request
    head has arrived since it was set (and none is being answered), the connection is closed.
    A request whose head has arrived is bounded by the app's time limit instead."""

    head_deadline_s = HttpSettings.head_deadline_s

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._set_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._set_head_deadline()

    def _set_head_deadline(self) -> None:
        if not self.transport.is_closing():
            self.loop.call_later(self.head_deadline_s, self._head_deadline_passed, self.cycle)

    def _head_deadline_passed(self, cycle_then: RequestResponseCycle | None) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if self.cycle is cycle_then and idle and not self.transport.is_closing():
            self.transport.close()


class _EmbeddedServer(uvicorn.Server):
    """uvicorn as one part of the node: the node's ``serve`` owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """``app`` served on a socket from ``bind``, on the running loop; ``port`` is the bound one."""

    def __init__(self, app: ASGIApp, sock: socket.socket, settings: HttpSettings,
                 tls_files: tuple[str, str] | None = None) -> None:
        """``tls_files``: (certificate chain, key) files to serve HTTPS with (the console)."""
        self.app = app
        self._socket = sock
        self.host, self.port = sock.getsockname()[:2]
        self._server = _EmbeddedServer(uvicorn.Config(
            app,
            http=type("H11WithHeadDeadline", (_H11,), {"head_deadline_s": settings.head_deadline_s}),
            ws="none", lifespan="off", interface="asgi3",
            # Our logs: no dictConfig of uvicorn's, no access lines, its own notices only from warnings up.
            log_config=None, access_log=False, log_level="warning",
            server_header=False, proxy_headers=False,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            timeout_keep_alive=KEEP_ALIVE_S,
            limit_concurrency=MAX_CONNECTIONS,
            ssl_certfile=tls_files[0] if tls_files else None, ssl_keyfile=tls_files[1] if tls_files else None,
        ))
        self.scheme = "https" if tls_files else "http"
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return str(Address(self.host, self.port))

    async def start(self, within_s: float = 5.0) -> None:
        """Listen and serve; returns once connections are accepted (raises ``OSError`` if not)."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name="govnet-http")
        deadline = asyncio.get_running_loop().time() + within_s
        while not self._server.started:
            if self._task.done():
                error = None if self._task.cancelled() else self._task.exception()
                raise OSError(f"the HTTP server on {self.address} stopped while starting: {error!r}")
            if asyncio.get_running_loop().time() > deadline:
                await self.stop(0)
                raise OSError(f"the HTTP server on {self.address} did not start within {within_s:g} s")
            await asyncio.sleep(0.005)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let requests in progress finish within ``grace`` seconds, close."""
        if self._task is None:
            self._socket.close()
            return
        self._server.config.timeout_graceful_shutdown = max(1, int(grace))
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace + 1.0)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        finally:
            self._socket.close()

