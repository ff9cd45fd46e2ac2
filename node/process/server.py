"""The node process: the one composition root that builds and wires everything.

``start_node`` opens the store (migrating it), loads the working-day calendar, builds
the case desk and the gRPC server (case and catalog services, the standard health
service, server reflection) and binds the listen address. ``serve`` runs it until
SIGTERM or SIGINT and then stops gracefully: in-flight calls get a grace period.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from datetime import timedelta

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from govnet.node.app.inbox import run_inbox
from govnet.node.app.statistics_ledger import StatsLedger
from govnet.node.app.supervision import attach as attach_supervision
from govnet.node.app.supervision import run_scanner
from govnet.node.domain.calendar import CalendarError, WorkCalendar
from govnet.node.domain.clock import Clock, SystemClock
from govnet.node.process.assembly import NodeCore, assemble
from govnet.node.process.config import Address, NodeConfig
from govnet.node.process.http import HttpServer, NodeHttp
from govnet.node.process.metrics import NodeMetrics, node_metrics
from govnet.node.rpc.cases import CaseServicer, CatalogServicer
from govnet.node.rpc.stats import StatsServicer
from govnet.node.rpc.supervision import SupervisionServicer
from govnet.node.rpc.sync import SyncServicer
from govnet.node.store.engine import Store
from govnet.node.store.unit import StoreError
from govnet.sync.driver import LinkDriver
from govnet.sync.transport.grpc import GrpcTransport
from govnet.v1 import (
    cases_pb2,
    cases_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    stats_pb2,
    stats_pb2_grpc,
    supervision_pb2,
    supervision_pb2_grpc,
    sync_pb2,
    sync_pb2_grpc,
)

log = logging.getLogger("govnet.node")

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # a full catalog (~700 items) is ~2 MiB; cases are small
GRACE_SECONDS = 5.0

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Without this, Linux lets a second node bind the same port and steal half the calls.
    ("grpc.so_reuseport", 0),
]


class StartError(Exception):
    """The node cannot start; ``str()`` says what to fix."""


@dataclass
class RunningNode:
    config: NodeConfig
    core: NodeCore
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    driver: LinkDriver | None
    _stop_sync: asyncio.Event
    _sync_task: asyncio.Task[None] | None
    _transport: GrpcTransport | None
    _inbox_task: asyncio.Task[None]
    metrics: NodeMetrics | None = None
    http: HttpServer | None = None
    _scan_task: asyncio.Task[None] | None = None  # the supervision scanner
    _stats_task: asyncio.Task[None] | None = None  # counts this node's facts and sends them up

    @property
    def store(self) -> Store:
        return self.core.store

    @property
    def address(self) -> str:
        return str(Address(self.config.listen.host, self.port))

    @property
    def http_address(self) -> str | None:
        return self.http.address if self.http is not None else None

    async def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Stop taking calls, let in-flight calls, the current sync batch and the inbox chunk being
        applied finish, close the store. What the inbox still holds is applied after the next start."""
        if self.http is not None:
            self.http.app.serving = False  # /readyz says so at once; /metrics stays until the end
        await self.health.enter_graceful_shutdown()
        self._stop_sync.set()
        for task in (self._sync_task, self._inbox_task, self._scan_task, self._stats_task):
            if task is not None:
                try:
                    await asyncio.wait_for(task, grace)
                except TimeoutError:
                    task.cancel()
        await self.server.stop(grace)
        if self._transport is not None:
            await self._transport.close()
        if self.http is not None:
            await asyncio.to_thread(self.http.stop)
        self.store.close()


async def start_node(config: NodeConfig, clock: Clock | None = None) -> RunningNode:
    clock = clock or SystemClock()
    try:
        calendar = WorkCalendar.load(config.calendar_dir)
    except CalendarError as exc:
        raise StartError(str(exc)) from None
    try:
        store = Store.open(config.data_dir)
    except StoreError as exc:
        raise StartError(str(exc)) from None
    if store.meta.node_id != config.node_id or store.meta.level != config.level:
        store.close()
        raise StartError(
            f"{config.data_dir}: the store belongs to node {store.meta.node_id} ({store.meta.level}), "
            f"but the configuration says {config.node_id} ({config.level})"
        )
    core = assemble(store, calendar, clock, config.sync, config.duplicate_window_days, apply_inline=False)
    supervisor, complaints = attach_supervision(core, config.supervision)
    flush = timedelta(seconds=config.sync.flush_interval_s)
    metrics = node_metrics(store, core.uplink, clock, flush)
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=[metrics.rpc])
    cases_pb2_grpc.add_CaseServiceServicer_to_server(CaseServicer(core.desk), server)
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(store, clock), server)
    sync_pb2_grpc.add_SyncServiceServicer_to_server(
        SyncServicer(store, core.children, core.inbox, core.uplink, clock, flush), server)
    supervision_pb2_grpc.add_SupervisionServiceServicer_to_server(SupervisionServicer(supervisor, complaints), server)
    stats_pb2_grpc.add_StatsServiceServicer_to_server(StatsServicer(store, clock), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    services = (
        cases_pb2.DESCRIPTOR.services_by_name["CaseService"].full_name,
        catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name,
        sync_pb2.DESCRIPTOR.services_by_name["SyncService"].full_name,
        supervision_pb2.DESCRIPTOR.services_by_name["SupervisionService"].full_name,
        stats_pb2.DESCRIPTOR.services_by_name["StatsService"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(services, server)
    try:
        port = server.add_insecure_port(str(config.listen))
    except RuntimeError:
        port = 0
    if port == 0:
        store.close()
        raise StartError(f"node.listen: cannot listen on {config.listen}: the port is in use or the address is not this machine's")
    await server.start()
    for name in ("", *services[:5]):  # the server and each govnet service
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    http = None
    if config.http_listen is not None:
        app = NodeHttp(store, core.uplink, clock, flush, metrics, str(Address(config.listen.host, port)))
        try:
            http = HttpServer(app, config.http_listen.host, config.http_listen.port)
        except OSError as exc:
            await server.stop(None)
            store.close()
            raise StartError(f"http.listen: cannot listen on {config.http_listen}: {exc.strerror or exc}") from None
        http.start()
        app.serving = True
    stop_sync = asyncio.Event()
    inbox_task = asyncio.create_task(run_inbox(core.inbox, stop_sync), name="govnet-inbox")
    scan_task = asyncio.create_task(run_scanner(supervisor, stop_sync, config.supervision.scan_interval_s),
                                    name="govnet-supervision")
    driver = task = transport = None
    if core.uplink is not None and config.parent is not None:
        uplink = core.uplink
        transport = GrpcTransport(str(config.parent))
        driver = LinkDriver(uplink, uplink, transport, clock, flush_interval_s=config.sync.flush_interval_s,
                            digest_interval_s=config.sync.digest_interval_s,
                            on_refused=lambda why: setattr(uplink, "refusal", why))
        task = asyncio.create_task(driver.run(stop_sync), name="govnet-uplink")
        loop = asyncio.get_running_loop()
        wake = driver.wake
        core.desk.after_commit = core.inbox.on_applied = lambda: loop.call_soon_threadsafe(wake)
    ledger = StatsLedger(store, calendar, config.statistics)
    # A flush that sent rows up wakes the link driver, so they leave now, not at the next interval.
    sent = (lambda: driver.wake()) if driver is not None else (lambda: None)
    stats_task = asyncio.create_task(ledger.run(clock, stop_sync, sent), name="govnet-statistics")
    return RunningNode(config, core, server, health_servicer, port, driver, stop_sync, task, transport, inbox_task,
                       metrics=metrics, http=http, _scan_task=scan_task, _stats_task=stats_task)


async def serve(config: NodeConfig, clock: Clock | None = None) -> None:
    node = await start_node(config, clock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving", extra={"level_name": config.level.value, "address": node.address})
    http = f" (http {node.http_address})" if node.http_address else ""
    print(f"govnet node {config.node_id} ({config.level}) serving on {node.address}{http}", flush=True)
    await stop.wait()
    log.info("stopping", extra={"grace_s": GRACE_SECONDS})
    await node.stop()
