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

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from node.calendar import CalendarError, WorkCalendar
from node.clock import Clock, SystemClock
from node.config import Address, NodeConfig
from datetime import timedelta

from node.assembly import NodeCore, assemble
from node.servicers import CaseServicer, CatalogServicer
from node.store import Store, StoreError
from node.sync_servicer import SyncServicer
from protos.govnet.v1 import cases_pb2, cases_pb2_grpc, catalog_pb2, catalog_pb2_grpc, sync_pb2, sync_pb2_grpc
from sync.driver import LinkDriver
from sync.grpc_transport import GrpcTransport

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

    @property
    def store(self) -> Store:
        return self.core.store

    @property
    def address(self) -> str:
        return str(Address(self.config.listen.host, self.port))

    async def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Stop taking calls, let in-flight calls and the current sync batch finish, close the store."""
        await self.health.enter_graceful_shutdown()
        self._stop_sync.set()
        if self._sync_task is not None:
            try:
                await asyncio.wait_for(self._sync_task, grace)
            except asyncio.TimeoutError:
                self._sync_task.cancel()
        await self.server.stop(grace)
        if self._transport is not None:
            await self._transport.close()
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
    core = assemble(store, calendar, clock, config.sync, config.duplicate_window_days)
    flush = timedelta(seconds=config.sync.flush_interval_s)
    server = grpc.aio.server(options=SERVER_OPTIONS)
    cases_pb2_grpc.add_CaseServiceServicer_to_server(CaseServicer(core.desk), server)
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(store, clock), server)
    sync_pb2_grpc.add_SyncServiceServicer_to_server(
        SyncServicer(store, core.children, core.inbox, core.uplink, clock, flush), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    services = (
        cases_pb2.DESCRIPTOR.services_by_name["CaseService"].full_name,
        catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name,
        sync_pb2.DESCRIPTOR.services_by_name["SyncService"].full_name,
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
    for name in ("", *services[:3]):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    stop_sync = asyncio.Event()
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
        core.desk.after_commit = lambda: loop.call_soon_threadsafe(wake)
    return RunningNode(config, core, server, health_servicer, port, driver, stop_sync, task, transport)


async def serve(config: NodeConfig, clock: Clock | None = None) -> None:
    node = await start_node(config, clock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving", extra={"level_name": config.level.value, "address": node.address})
    print(f"govnet node {config.node_id} ({config.level}) serving on {node.address}", flush=True)
    await stop.wait()
    log.info("stopping", extra={"grace_s": GRACE_SECONDS})
    await node.stop()
