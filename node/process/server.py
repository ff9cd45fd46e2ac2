"""The node process: a node built by ``build_node``, served until it is told to stop.

``start_node`` builds the node (``node.process.build``, the composition root) with the
gRPC transport to its parent, starts the gRPC server (its health reports SERVING) and
the HTTP port (uvicorn, on this same loop), then the node's background work: the
inbox's apply task, the supervision scanner, the link driver and the statistics
ledger. Those tasks are what the parts' wake-ups call, so they connect here, on the
event loop they run on.
``serve`` runs a node until SIGTERM or SIGINT and then stops gracefully: in-flight
calls get a grace period. A start that fails part-way stops what it had started and
closes the store, so it leaves nothing listening (``StartError``, one line).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from govnet.federation.tree import parent_id
from govnet.node.app.calendar_years import startup_warning
from govnet.node.app.inbox import run_inbox
from govnet.node.app.supervision import run_scanner
from govnet.node.domain.calendar import local_date
from govnet.node.domain.clock import Clock, SystemClock
from govnet.node.process.build import Node, Served, StartError, build_node, node_tls
from govnet.node.process.config import Address, NodeConfig
from govnet.node.process.metrics import NodeMetrics
from govnet.node.process.tls import REVOCATIONS_DIR, TLS_DIR, node_name
from govnet.node.store.engine import Store
from govnet.sync.driver import LinkDriver
from govnet.sync.transport.grpc import GrpcTransport

if TYPE_CHECKING:
    from govnet.node.process.http import HttpServer  # imported by build_node only when [http] is set

__all__ = ["GRACE_SECONDS", "RunningNode", "StartError", "serve", "start_node"]

log = logging.getLogger("govnet.node")

GRACE_SECONDS = 5.0
REVOCATIONS_EVERY_S = 2.0  # how often the revocations folder is looked at


@dataclass
class RunningNode:
    core: Node  # what build_node built
    served: Served
    _stop: asyncio.Event
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)  # apply, scanner, link driver, statistics
    _transport: GrpcTransport | None = None

    @property
    def config(self) -> NodeConfig:
        return self.core.config

    @property
    def store(self) -> Store:
        return self.core.store

    @property
    def driver(self) -> LinkDriver | None:
        return self.core.driver

    @property
    def metrics(self) -> NodeMetrics:
        return self.core.metrics

    @property
    def http(self) -> HttpServer | None:
        return self.served.http

    @property
    def port(self) -> int:
        return self.served.port

    @property
    def address(self) -> str:
        return str(Address(self.config.listen.host, self.port))

    @property
    def console_url(self) -> str | None:
        """The console's address as a browser takes it (https://HOST:PORT), when served."""
        c = self.served.console
        return f"{c.scheme}://{c.address}" if c is not None else None

    @property
    def http_address(self) -> str | None:
        return self.http.address if self.http is not None else None

    async def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Stop taking calls, let in-flight calls, the current sync batch and the inbox chunk being
        applied finish, close the store. What the inbox still holds is applied after the next start."""
        if self.served.endpoints is not None:
            self.served.endpoints.serving = False  # /readyz says so at once; /metrics stays until the end
        await self.served.services.stopping()
        self._stop.set()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, grace)
            except TimeoutError:
                task.cancel()
        await self.served.grpc.stop(grace)
        if self.served.services.parent_track is not None:
            await self.served.services.parent_track.close()
        if self._transport is not None:
            await self._transport.close()
        if self.http is not None:
            await self.http.stop(grace)
        if self.served.console is not None:
            await self.served.console.stop(grace)
        if self.served.endpoints is not None:
            self.served.endpoints.close()
        if self.served.pages is not None:
            self.served.pages.close()
        self.store.close()


async def start_node(config: NodeConfig, clock: Clock | None = None) -> RunningNode:
    tls = node_tls(config)
    if tls is None:
        log.warning("plaintext: TLS is off (tls.plaintext = true); any program that reaches this port is trusted")
    parent = parent_id(config.node_id)
    transport = None
    if config.parent is not None and parent:
        transport = GrpcTransport(str(config.parent), credentials=tls.channel_credentials() if tls else None,
                                  server_name=node_name(parent))
    try:
        node = build_node(config, clock or SystemClock(), transport, tls=tls)
    except StartError:
        if transport is not None:
            await transport.close()
        raise
    served = node.served
    assert served is not None
    warning = startup_warning(node.calendar, local_date(node.clock.now()))
    if warning is not None:
        log.warning(warning)
    try:
        await served.grpc.start()
        await served.services.serving()
        if served.http is not None:
            await served.http.start()
        if served.console is not None:
            await served.console.start()
    except (OSError, RuntimeError) as exc:
        await served.grpc.stop(None)
        if served.http is not None:
            await served.http.stop(0)
        if served.console is not None:
            await served.console.stop(0)
        if served.endpoints is not None:
            served.endpoints.close()
        if transport is not None:
            await transport.close()
        node.store.close()
        raise StartError(f"the node could not start serving: {exc}") from None
    if served.endpoints is not None:
        served.endpoints.serving = True
    stop = asyncio.Event()
    return RunningNode(node, served, stop, run_background(node, stop), transport)


def run_background(node: Node, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """Start the node's background work on this loop until ``stop``, and connect its wake-ups."""
    tasks = [
        asyncio.create_task(run_inbox(node.inbox, stop), name="govnet-inbox"),
        asyncio.create_task(run_scanner(node.supervisor, stop, node.config.supervision.scan_interval_s),
                            name="govnet-supervision"),
    ]
    driver = node.driver
    if driver is not None:
        loop = asyncio.get_running_loop()

        def wake_driver() -> None:  # commits finish on the store's writer and in worker threads
            loop.call_soon_threadsafe(driver.wake)

        node.outbox_filled.connect(wake_driver)
        tasks.append(asyncio.create_task(driver.run(stop), name="govnet-uplink"))
    # A flush that sent rows up rings the outbox's wake-up, so they leave now, not at the next interval.
    tasks.append(asyncio.create_task(node.ledger.run(node.clock, stop, node.outbox_filled.ring),
                                     name="govnet-statistics"))
    tasks.append(asyncio.create_task(node.audit.run(node.clock, stop, node.outbox_filled.ring), name="govnet-audit"))
    if node.tls is not None:
        tasks.append(asyncio.create_task(watch_revocations(node, stop), name="govnet-revocations"))
    return tasks


async def watch_revocations(node: Node, stop: asyncio.Event) -> None:
    """Take in the revocation lists dropped into ``tls/revocations/`` (new or changed files), and
    wake the link driver so they leave for the children at once."""
    folder = node.config.data_dir / TLS_DIR / REVOCATIONS_DIR
    while not stop.is_set():
        try:
            if await asyncio.to_thread(node.revocations.take_in, folder, node.clock.now()):
                node.outbox_filled.ring()
        except OSError as exc:
            log.warning("revocations folder unreadable", extra={"error": str(exc)})
        try:
            await asyncio.wait_for(stop.wait(), REVOCATIONS_EVERY_S)
        except TimeoutError:
            pass


async def serve(config: NodeConfig, clock: Clock | None = None) -> None:
    node = await start_node(config, clock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving", extra={"level_name": config.level.value, "address": node.address})
    http = f" (http {node.http_address})" if node.http_address else ""
    http += f" (console {node.console_url})" if node.console_url else ""
    print(f"govnet node {config.node_id} ({config.level}) serving on {node.address}{http}", flush=True)
    await stop.wait()
    log.info("stopping", extra={"grace_s": GRACE_SECONDS})
    await node.stop()
