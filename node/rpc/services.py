"""What a node serves over gRPC: its six services, the standard health service, reflection.

``add_services`` puts every servicer on a ``grpc.aio`` server and returns the node's
``Services``: the names it registered and the health servicer, through which the node
says when it serves (after the port is bound and the server started) and when it is
going away (first thing at a graceful stop, so balancers stop sending calls). The
services are named from the generated descriptors, so a renamed service in a .proto
file is renamed here too; this module is why the process floor never imports generated
code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from govnet.node.app.accounts import Accounts
from govnet.node.app.calendar_years import CalendarYears
from govnet.node.app.complaints import ComplaintDesk
from govnet.node.app.desk import CaseDesk
from govnet.node.app.inbox import Inbox
from govnet.node.app.links import ChildrenSide, UpLink
from govnet.node.app.supervision import Supervisor
from govnet.node.domain.clock import Clock
from govnet.node.rpc.accounts import AccountServicer
from govnet.node.rpc.auth import Auth
from govnet.node.rpc.cases import CaseServicer, CatalogServicer, ParentTrack
from govnet.node.rpc.reflection import SERVICE_NAME as REFLECTION
from govnet.node.rpc.reflection import Reflection, read_descriptor_set
from govnet.node.rpc.stats import StatsServicer
from govnet.node.rpc.supervision import SupervisionServicer
from govnet.node.rpc.sync import SyncServicer
from govnet.node.store.engine import Store
from govnet.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
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

Status = int  # a health_pb2.HealthCheckResponse.ServingStatus value
# The typing stubs of grpcio-health-checking predate List's messages (HealthListRequest/Response).
_health_messages: Any = health_pb2


class NodeHealth(health.aio.HealthServicer):
    """The standard health servicer, with ``List``: every service's status as last set."""

    def __init__(self) -> None:
        super().__init__()
        self._statuses: dict[str, Status] = {"": health_pb2.HealthCheckResponse.SERVING}
        self._stopping = False

    async def set(self, service: str, status: Status) -> None:
        await super().set(service, status)
        if not self._stopping:  # as the base: after a graceful stop begins, nothing changes back
            self._statuses[service] = status

    async def enter_graceful_shutdown(self) -> None:
        self._stopping = True
        self._statuses = dict.fromkeys(self._statuses, health_pb2.HealthCheckResponse.NOT_SERVING)
        await super().enter_graceful_shutdown()

    async def List(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return _health_messages.HealthListResponse(statuses={
            name: health_pb2.HealthCheckResponse(status=status) for name, status in sorted(self._statuses.items())})


@dataclass(frozen=True)
class Services:
    """The services a node's server carries and the health it reports for them."""

    names: tuple[str, ...]  # govnet's own services (full names), each with its health status
    health: health.aio.HealthServicer
    parent_track: ParentTrack | None = None  # the channel Track asks the parent on (closed at stop)

    async def serving(self) -> None:
        """The server is started: report it and each service SERVING."""
        for name in ("", *self.names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stopping(self) -> None:
        """A graceful stop begins: report NOT_SERVING everywhere."""
        await self.health.enter_graceful_shutdown()


def add_services(server: grpc.aio.Server, *, store: Store, clock: Clock, desk: CaseDesk, children: ChildrenSide,
                 inbox: Inbox, uplink: UpLink | None, supervisor: Supervisor, complaints: ComplaintDesk,
                 accounts: Accounts, flush_interval: timedelta, parent_track: ParentTrack | None = None,
                 calendar_years: CalendarYears | None = None) -> Services:
    """Register the node's servicers, health and reflection on ``server`` (not started yet)."""
    auth = Auth(accounts)  # who is calling, for every servicer that acts for a person
    cases_pb2_grpc.add_CaseServiceServicer_to_server(CaseServicer(desk, auth, parent_track), server)
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(store, clock, auth, inbox.refusals,
                                                                                  calendar_years), server)
    accounts_pb2_grpc.add_AccountServiceServicer_to_server(AccountServicer(accounts, auth), server)
    sync_pb2_grpc.add_SyncServiceServicer_to_server(
        SyncServicer(store, children, inbox, uplink, clock, flush_interval), server)
    supervision_pb2_grpc.add_SupervisionServiceServicer_to_server(SupervisionServicer(supervisor, complaints, auth, accounts),
                                                                  server)
    stats_pb2_grpc.add_StatsServiceServicer_to_server(StatsServicer(store, clock, auth), server)
    health_servicer = NodeHealth()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (
        cases_pb2.DESCRIPTOR.services_by_name["CaseService"].full_name,
        catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name,
        sync_pb2.DESCRIPTOR.services_by_name["SyncService"].full_name,
        supervision_pb2.DESCRIPTOR.services_by_name["SupervisionService"].full_name,
        stats_pb2.DESCRIPTOR.services_by_name["StatsService"].full_name,
        accounts_pb2.DESCRIPTOR.services_by_name["AccountService"].full_name,
    )
    reflected = (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, REFLECTION)
    generated = (cases_pb2.DESCRIPTOR, catalog_pb2.DESCRIPTOR, sync_pb2.DESCRIPTOR, supervision_pb2.DESCRIPTOR,
                 stats_pb2.DESCRIPTOR, health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        Reflection(reflected, read_descriptor_set(), generated), server)
    return Services(names, health_servicer, parent_track)
