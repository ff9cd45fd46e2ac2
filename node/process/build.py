"""The composition root: ``build_node`` makes one node from its configuration, clock and transport.

This is the one place that knows a node's whole graph; every part gets its
collaborators in its constructor, in this order:

1. the working-day calendar and the store (opened, migrated, and checked to belong to
   the node the configuration names);
2. one ``Wakeup``, "the outbox holds something new", given to every part whose commits
   queue messages (desk, complaints, the inbox's applying) — the link driver listens
   once the node runs, so a new case leaves at once instead of at the next interval;
3. the accounts (people and their tokens; the rating codes the desk prints at intake);
   the case desk; supervision (alarms, ratings) over the desk; the calendar years published
   down the tree (``node.app.calendar_years``: they join the calendar every part shares, and
   their arrival recounts the due dates through the desk); complaints;
4. the replicator, which applies what arrives: the desk for cases, and, from the parts
   built before it, complaints' envelope kind and the rating request (so nothing is
   registered on anything afterwards); the inbox over the replicator;
5. the link sides (the up-link toward the parent, none for the city; the children's
   side), the link driver when there is a transport to the parent, the statistics
   ledger and the metrics;
6. when serving: the node's TLS material (``node.process.tls``; refused to start without it
   unless ``tls.plaintext = true``), the revocation lists it holds (``node.app.revocations``,
   also given to the replicator, which applies new ones), the verifier of peers
   (``node.rpc.peer``); then the HTTP port's socket bound first when ``http.listen`` is set (a
   port in use stops the start before the gRPC server exists), then the gRPC server with every
   service (``node.rpc.services``) behind the boundary and the authentication interceptor,
   bound to ``node.listen`` with mutual TLS, then the HTTP app over it.

The real process (``node.process.server``) builds with the gRPC transport and serves;
the in-process simulation (tests/support/simulation.py) builds the same graph with the
in-memory transport, a manual clock, inline applying and no servers, and drives the
links itself. Building starts no task: ``server.start_node`` runs the node's background
work and connects its wake-ups.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from govnet.federation.tree import parent_id
from govnet.node.app.accounts import Accounts
from govnet.node.app.audit import AuditTrail, use_configured_algorithm
from govnet.node.app.calendar_years import CalendarYears
from govnet.node.app.complaints import KIND as COMPLAINT
from govnet.node.app.complaints import ComplaintDesk, apply_complaint
from govnet.node.app.desk import CaseDesk
from govnet.node.app.inbox import CAPACITY as INBOX_CAPACITY
from govnet.node.app.inbox import Inbox
from govnet.node.app.keyring import Keyring
from govnet.node.app.links import ChildrenSide, UpLink, catalog_publisher
from govnet.node.app.replication import Replicator
from govnet.node.app.revocations import Revocations
from govnet.node.app.statistics_ledger import StatsLedger
from govnet.node.app.supervision import APPEAL_DECIDED, EVALUATE, Supervisor, apply_rectification
from govnet.node.app.wakeup import Wakeup
from govnet.node.domain.calendar import CalendarError, WorkCalendar
from govnet.node.domain.clock import Clock, SystemClock
from govnet.node.domain.lifecycle import Action
from govnet.node.domain.messages import (
    ApplicantMessage,
    CalendarMessage,
    CertificatesMessage,
    RectificationMessage,
    RevocationMessage,
)
from govnet.node.process.config import Address, NodeConfig
from govnet.node.process.metrics import NodeMetrics, node_metrics
from govnet.node.process.tls import NodeTls, TlsError, load_node_tls, node_name
from govnet.node.rpc.boundary import Boundary
from govnet.node.rpc.cases import ParentTrack
from govnet.node.rpc.peer import AuthInterceptor, Verifier
from govnet.node.rpc.ratelimit import RateLimit
from govnet.node.rpc.services import Services, add_services
from govnet.node.store.engine import Store
from govnet.node.store.unit import StoreError, Unit
from govnet.sync.backoff import BackoffPolicy
from govnet.sync.driver import LinkDriver
from govnet.sync.transport.base import Transport

if TYPE_CHECKING:
    # Imported where a node serves HTTP: Starlette and uvicorn take a noticeable share of a
    # node's start (~0.5 s on a busy 2-core machine), which nodes without [http] need not pay.
    from govnet.node.console.pages import Console
    from govnet.node.process.http import HttpServer, NodeHttp

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # a full catalog (~700 items) is ~2 MiB; cases are small

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Without this, Linux lets a second node bind the same port and steal half the calls.
    ("grpc.so_reuseport", 0),
]


class StartError(Exception):
    """The node cannot start; ``str()`` says what to fix."""


@dataclass(frozen=True)
class Served:
    """A node's servers, bound, not started yet: gRPC, and HTTP when configured."""

    grpc: grpc.aio.Server
    services: Services
    port: int
    http: HttpServer | None
    endpoints: NodeHttp | None  # the monitoring endpoints the HTTP port serves
    console: HttpServer | None = None  # the console's pages ([console] listen), HTTPS with the node's certificate
    pages: Console | None = None


@dataclass(frozen=True)
class Node:
    """One node's parts, built and wired (see the module docstring for the order)."""

    config: NodeConfig
    clock: Clock
    calendar: WorkCalendar
    store: Store
    outbox_filled: Wakeup  # rung after a commit that queued messages; the link driver listens
    desk: CaseDesk
    supervisor: Supervisor
    complaints: ComplaintDesk
    replicator: Replicator
    inbox: Inbox
    uplink: UpLink | None  # None for the city
    children: ChildrenSide
    driver: LinkDriver | None  # None without a transport to a parent
    ledger: StatsLedger
    metrics: NodeMetrics
    served: Served | None  # None when built without servers (a simulation, a bench's backlog)
    audit: AuditTrail  # this node's audit chain head, sent up on the statistics rhythm
    revocations: Revocations
    tls: NodeTls | None  # None: plaintext, or built without servers
    calendar_years: CalendarYears  # the years published down the tree (node.app.calendar_years)

    @property
    def flush_interval(self) -> timedelta:
        return timedelta(seconds=self.config.sync.flush_interval_s)


def open_store(config: NodeConfig) -> tuple[WorkCalendar, Store]:
    """The node's calendar and store, the store checked to be this node's."""
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
    return calendar, store


def node_tls(config: NodeConfig) -> NodeTls | None:
    """The node's TLS material, or None when the configuration asks for plaintext (raises ``StartError``)."""
    if config.tls.plaintext:
        return None
    try:
        return load_node_tls(config.data_dir, config.tls.ca, config.tls.cert, config.tls.key, config.node_id)
    except TlsError as exc:
        raise StartError(str(exc)) from None


def build_node(config: NodeConfig, clock: Clock, transport: Transport | None, *, serve: bool = True,
               apply_inline: bool = False, inbox_capacity: int = INBOX_CAPACITY, tls: NodeTls | None = None) -> Node:
    """Open the node's store and build everything over it (raises ``StartError``).

    ``transport``: the way to the parent (None: no link driver). ``apply_inline``: apply
    received envelopes before answering (a simulation's determinism) rather than from the
    process's apply task. ``serve``: build and bind the gRPC and HTTP servers (with ``tls``, or
    the TLS material the configuration names, read here when not given).
    ``inbox_capacity``: envelopes waiting to be applied before children are told to back off.
    """
    if serve and tls is None:
        tls = node_tls(config)
    calendar, store = open_store(config)
    use_configured_algorithm(store, config.audit_hash)
    revocations = Revocations(store, tls.root_certificate if tls is not None else None)
    # The applicant is sealed to its owner (node.app.keyring): whatever runs in one of this
    # store's units of work finds the keyring in the session's info.
    keyring = Keyring.load(config.node_id, config.data_dir, config.tls.ca, config.tls.cert, config.tls.key,
                           revoked=revocations.revoked, clock=lambda: datetime.now(UTC))
    keyring.meta = store.meta
    store.session_info["keyring"] = keyring
    settings = config.supervision
    outbox_filled = Wakeup()
    # Tokens expire in wall time: a simulated clock (tests, simulations jump days) must not end a shift.
    accounts = Accounts(store, SystemClock())
    desk = CaseDesk(store, calendar, clock, config.duplicate_window_days,
                    backfill_after=timedelta(seconds=settings.backfill_after_s), outbox_filled=outbox_filled,
                    rating_codes=accounts.issue_rating_code)
    supervisor = Supervisor(store, desk, calendar, clock, settings)
    # The years published down the tree join the shipped ones (the calendar is shared by all parts).
    calendar_years = CalendarYears(store, calendar, desk)
    complaints = ComplaintDesk(store, calendar, clock, settings, outbox_filled=outbox_filled)
    meta = store.meta
    replicator = Replicator(meta, desk, catalog_publisher(store),
                            kinds={COMPLAINT: lambda s, payload: apply_complaint(s, meta, payload),
                                   RectificationMessage.KIND: lambda s, payload: apply_rectification(s, meta, payload),
                                   ApplicantMessage.KIND: keyring.take},
                            requests={EVALUATE: supervisor.evaluate_request,
                                      Action.DELIVER.value: desk.deliver_request,
                                      APPEAL_DECIDED: supervisor.decide_appeal_request},
                            down={RevocationMessage.KIND: revocations.apply,
                                  CertificatesMessage.KIND: keyring.apply,
                                  CalendarMessage.KIND: calendar_years.apply})
    inbox = Inbox(store, replicator, clock, apply_inline=apply_inline, capacity=inbox_capacity,
                  outbox_filled=outbox_filled)
    uplink = UpLink(store, inbox, clock, config.sync) if parent_id(config.node_id) else None

    def on_registered(s: Unit, child: str, now: datetime) -> None:  # what a new child lacks
        revocations.send_held(s, child, now)
        keyring.send_held(s, child, now)
        calendar_years.send_held(s, child, now)

    children = ChildrenSide(store, inbox, clock, config.sync, on_registered=on_registered, feeds=(keyring,))
    driver = None
    if uplink is not None and transport is not None:
        driver = LinkDriver(uplink, uplink, transport, clock, flush_interval_s=config.sync.flush_interval_s,
                            digest_interval_s=config.sync.digest_interval_s, on_refused=uplink.refused,
                            policy=BackoffPolicy(cap_s=config.sync.retry_cap_s))
    ledger = StatsLedger(store, calendar, config.statistics)
    audit = AuditTrail(store, config.statistics)
    flush = timedelta(seconds=config.sync.flush_interval_s)
    # Certificates are valid in real time, whatever clock a test gives the node.
    verifier = Verifier(revocations.revoked, SystemClock(), plaintext=tls is None)
    metrics = node_metrics(store, uplink, clock, flush, refusals=inbox.refusals, verifier=verifier, tls=tls,
                           plaintext=serve and tls is None, revoked=revocations.count,
                           calendar_years=calendar_years)
    served = None
    if serve:
        http_socket = console_socket = None
        try:
            http_socket = _bind_http(config.http_listen) if config.http_listen is not None else None
            if config.console_listen is not None:
                console_socket = _bind_http(config.console_listen, "console.listen")
            # metrics outside the boundary: it counts what the boundary answers, undecodable requests too;
            # the rate limits next, so a flood is refused (a bounded status, no servicer run) before the
            # peer's certificate is checked; authentication inside the boundary, answered by its rules
            limits = RateLimit(config.rate, on_refused=metrics.refused)
            server = grpc.aio.server(options=SERVER_OPTIONS,
                                     interceptors=[metrics.rpc, Boundary(), limits, AuthInterceptor(verifier)])
            services = add_services(server, store=store, clock=clock, desk=desk, children=children, inbox=inbox,
                                    uplink=uplink, supervisor=supervisor, complaints=complaints,
                                    accounts=accounts, flush_interval=flush,
                                    parent_track=_parent_track(config, tls), calendar_years=calendar_years)
            port = _bind(server, config, tls)
        except StartError:
            for sock in (http_socket, console_socket):
                if sock is not None:
                    sock.close()
            store.close()
            raise
        http = endpoints = None
        if http_socket is not None:
            from govnet.node.process.http import HttpServer, NodeHttp, build_app

            endpoints = NodeHttp(store, uplink, clock, flush, metrics, str(Address(config.listen.host, port)),
                                 calendar_years)
            http = HttpServer(build_app(endpoints.routes(), config.http), http_socket, config.http)
        console = pages = None
        if console_socket is not None:
            console, pages = _console(config, console_socket, tls, store=store, desk=desk, accounts=accounts,
                                      supervisor=supervisor, uplink=uplink, calendar=calendar, clock=clock, flush=flush,
                                      complaints=complaints, parent=services.parent_track)
        served = Served(server, services, port, http, endpoints, console, pages)
    return Node(config, clock, calendar, store, outbox_filled, desk, supervisor, complaints, replicator, inbox,
                uplink, children, driver, ledger, metrics, served, audit, revocations, tls, calendar_years)


def _parent_track(config: NodeConfig, tls: NodeTls | None) -> ParentTrack | None:
    """How Track asks the parent about a receipt this node does not know (None at the city)."""
    parent = parent_id(config.node_id)
    if config.parent is None or parent is None:
        return None
    return ParentTrack(str(config.parent), tls.channel_credentials() if tls is not None else None,
                       node_name(parent) if tls is not None else None)


def _bind(server: grpc.aio.Server, config: NodeConfig, tls: NodeTls | None) -> int:
    try:
        if tls is None:
            port = server.add_insecure_port(str(config.listen))
        else:
            port = server.add_secure_port(str(config.listen), tls.server_credentials())
    except RuntimeError:
        port = 0
    if port == 0:
        raise StartError(f"node.listen: cannot listen on {config.listen}: the port is in use or the address is not this machine's")
    return port


def _bind_http(listen: Address, key: str = "http.listen") -> socket.socket:
    from govnet.node.process.http import bind

    try:
        return bind(listen)
    except OSError as exc:
        raise StartError(f"{key}: cannot listen on {listen}: {exc.strerror or exc}") from None


def _console(config: NodeConfig, sock: socket.socket, tls: NodeTls | None, *, store: Store, desk: CaseDesk,
             accounts: Accounts, supervisor: Supervisor, uplink: UpLink | None, calendar: WorkCalendar, clock: Clock,
             flush: timedelta, complaints: ComplaintDesk, parent: ParentTrack | None) -> tuple[HttpServer, Console]:
    """The console's pages on their own port: HTTPS with the node's certificate and key unless the
    console (or the whole node) is configured plaintext."""
    from govnet.node.console.pages import Console
    from govnet.node.process.http import HttpServer, build_app

    files = None
    if tls is not None and not config.console_plaintext:
        files = tuple(str(p if p.is_absolute() else config.data_dir / p)
                      for p in (Path(config.tls.cert), Path(config.tls.key)))
    pages = Console(store, desk, accounts, supervisor, uplink, calendar, clock, flush, secure=files is not None,
                    complaints=complaints, parent=parent)
    server = HttpServer(build_app(pages.routes(), config.http), sock, config.http,
                        tls_files=(files[0], files[1]) if files else None)
    return server, pages
