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
from node.desk import CaseDesk
from node.servicers import CaseServicer, CatalogServicer
from node.store import Store, StoreError
from protos.govnet.v1 import cases_pb2, cases_pb2_grpc, catalog_pb2, catalog_pb2_grpc

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
    store: Store
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int

    @property
    def address(self) -> str:
        return str(Address(self.config.listen.host, self.port))

    async def stop(self, grace: float = GRACE_SECONDS) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
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
    desk = CaseDesk(store, calendar, clock, config.duplicate_window_days)
    server = grpc.aio.server(options=SERVER_OPTIONS)
    cases_pb2_grpc.add_CaseServiceServicer_to_server(CaseServicer(desk), server)
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(store, clock), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    services = (
        cases_pb2.DESCRIPTOR.services_by_name["CaseService"].full_name,
        catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name,
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
    for name in ("", *services[:2]):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningNode(config, store, server, health_servicer, port)


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
