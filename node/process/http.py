"""The node's HTTP endpoints, for monitoring systems and ``govnet status``.

``/metrics``  Prometheus text format from the node's own registry (``node.process.metrics``).
``/healthz``  200 while the process answers at all (liveness).
``/readyz``   200 when the store is open and its schema is at this release's head; 503
              with the reason otherwise (readiness: send no traffic yet).
``/status``   a small JSON document: node, level, gRPC address, readiness, per-link sync
              state, open alarms. ``govnet status TOPOLOGY`` reads it from every node.

It is a plain WSGI app served by a threading ``wsgiref`` server on its own thread:
every request reads the store with blocking calls, and none of them may run on the
grpc.aio event loop.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from govnet.node.app.links import UpLink
from govnet.node.domain.clock import Clock
from govnet.node.process.metrics import NodeMetrics, read_facts
from govnet.node.store.engine import Store, schema_head

log = logging.getLogger("govnet.http")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never holds up the node's exit
    allow_reuse_address = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http " + format % args)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


def readiness(store: Store, serving: bool) -> Readiness:
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


class NodeHttp:
    """The WSGI application; ``serving`` is switched by the node as it starts and stops."""

    def __init__(self, store: Store, uplink: UpLink | None, clock: Clock, flush_interval: timedelta,
                 metrics: NodeMetrics, grpc_address: str) -> None:
        self.store, self.uplink, self.clock, self.flush_interval = store, uplink, clock, flush_interval
        self.metrics = metrics
        self.grpc_address = grpc_address
        self.serving = False

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        try:
            if path == "/metrics":
                return self._reply(start_response, "200 OK", generate_latest(self.metrics.registry),
                                   CONTENT_TYPE_LATEST)
            if path == "/healthz":
                return self._json(start_response, "200 OK", {"alive": True})
            if path == "/readyz":
                r = readiness(self.store, self.serving)
                return self._json(start_response, "200 OK" if r.ready else "503 Service Unavailable", asdict(r))
            if path == "/status":
                return self._json(start_response, "200 OK", self.status())
            return self._json(start_response, "404 Not Found",
                              {"error": f"no page {path}; try /metrics, /healthz, /readyz or /status"})
        except Exception as exc:
            log.exception("http request failed", extra={"path": path})
            return self._json(start_response, "500 Internal Server Error", {"error": f"{exc.__class__.__name__}: {exc}"})

    def status(self) -> dict[str, Any]:
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
        }

    @staticmethod
    def _reply(start_response: StartResponse, status: str, body: bytes, content_type: str) -> list[bytes]:
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    def _json(self, start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
        data = json.dumps(body, ensure_ascii=False).encode()
        return self._reply(start_response, status, data, "application/json; charset=utf-8")


class HttpServer:
    """``NodeHttp`` served on a thread; ``port`` is the bound one (config may say 0)."""

    def __init__(self, app: NodeHttp, host: str, port: int) -> None:
        self.app = app
        self._server = make_server(host, port, app, server_class=_Server, handler_class=_Quiet)
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="govnet-http", daemon=True)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Blocks until the serving thread has left its loop (call it from a worker thread)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
