"""gRPC servicers (grpc.aio): thin adapters from messages to the case desk and the store.

Every blocking store call runs in a worker thread (``asyncio.to_thread``) so the event
loop keeps serving. Each method is wrapped by ``rpc`` (``node.rpc.errors``, the one
error -> status map): domain errors become the matching status code with the domain's
one-line message and the request field they are about; anything unexpected is logged
with its trace and answered INTERNAL without internals.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime

import grpc

from govnet.node.app.calendar_years import CalendarYears, Published
from govnet.node.app.desk import (
    Acted,
    CaseDesk,
    DeskError,
    ErrorKind,
    SubmitCommand,
    checked,
    checked_list,
    parse_happened,
    payment,
)
from govnet.node.app.inbox import Refusals
from govnet.node.app.replication import Unauthorized, publish_local
from govnet.node.app.tracking import HOP_DEADLINE_S, Known, NotKnownAbove, ParentUnreachable, Source, Tracker
from govnet.node.domain.calendar import CalendarError
from govnet.node.domain.catalog import Catalog, CatalogError, ServiceItem
from govnet.node.domain.clock import Clock
from govnet.node.domain.lifecycle import FINISHED, Action, ActParams, statuses_named
from govnet.node.domain.notice import render_html, render_text
from govnet.node.domain.people import WINDOW_ROLES, Op
from govnet.node.domain.progress import RUNNING_STAGES, Progress, Stage, Step, not_known, render
from govnet.node.domain.receipt import Receipt, ReceiptError
from govnet.node.rpc.auth import Auth
from govnet.node.rpc.convert import case_to_proto, event_to_proto, item_to_dict, item_to_proto
from govnet.node.rpc.errors import rpc, rpc_stream
from govnet.node.store.cases import CaseRecord, StoredEvent
from govnet.node.store.engine import Store
from govnet.v1 import cases_pb2, cases_pb2_grpc, catalog_pb2, catalog_pb2_grpc

MAX_LIST = 1000
GREEN_TOKEN = "green:"  # a page token's mark: the page ended among the green-channel cases
log = logging.getLogger("govnet.rpc.cases")


class ParentTrack:
    """The parent's ``Track``, asked over the node's own mutual-TLS channel (opened on first use,
    inside the serving event loop): a receipt this node does not know."""

    def __init__(self, address: str, credentials: grpc.ChannelCredentials | None, server_name: str | None) -> None:
        self.address = address
        self.credentials = credentials
        self.server_name = server_name
        self._stub: cases_pb2_grpc.CaseServiceStub | None = None
        self._channel: grpc.aio.Channel | None = None

    def _open(self) -> cases_pb2_grpc.CaseServiceStub:
        if self._stub is None:
            if self.credentials is None:
                self._channel = grpc.aio.insecure_channel(self.address)
            else:
                options = [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
                self._channel = grpc.aio.secure_channel(self.address, self.credentials, options=options)
            self._stub = cases_pb2_grpc.CaseServiceStub(self._channel)
        return self._stub

    async def track(self, receipt: str, hops: int, timeout: float) -> cases_pb2.TrackCaseResponse:
        """The parent's answer; ``NotKnownAbove`` when nobody above knows the receipt,
        ``ParentUnreachable`` when the parent cannot be asked."""
        try:
            answer: cases_pb2.TrackCaseResponse = await self._open().Track(
                cases_pb2.TrackCaseRequest(receipt=receipt, hops=hops), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                raise NotKnownAbove(receipt) from None
            raise ParentUnreachable(exc.code().name) from None
        return answer

    async def progress(self, receipt: str, hops: int, timeout: float) -> Progress:
        """The parent's answer as the applicant's view (``tracking.AskParent``, for the console)."""
        return progress_from_proto(await self.track(receipt, hops, timeout))

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()


def track_to_proto(known: Known, here: str) -> cases_pb2.TrackCaseResponse:
    p = known.progress
    return cases_pb2.TrackCaseResponse(
        receipt=p.receipt, item_name=known.item_name, department=known.department, status=known.status,
        due=known.due, owner=known.owner, progress=[event_to_proto(e, public=True) for e in known.events],
        known=True, stage=p.stage.value, headline=p.headline, missing_materials=list(p.missing),
        handled_at=p.handled_at, collect_at=p.collect_at,
        steps=[cases_pb2.TrackStep(at=s.at.isoformat(), text=s.text) for s in p.steps],
        text=render(p), answered_by=here, source=known.source.value,
    )


def unknown_to_proto(receipt: str, here: str, *, link_down: bool) -> cases_pb2.TrackCaseResponse:
    p = not_known(receipt, link_down)
    return cases_pb2.TrackCaseResponse(receipt=receipt, known=False, stage=p.stage.value, headline=p.headline,
                                       text=render(p), answered_by=here, source=Source.NONE.value,
                                       link_down=link_down)


def progress_from_proto(answer: cases_pb2.TrackCaseResponse) -> Progress:
    """The applicant's view a ``TrackCaseResponse`` carries (the inverse of ``track_to_proto``'s view)."""
    stage = Stage(answer.stage) if answer.stage else Stage.UNKNOWN
    return Progress(
        receipt=answer.receipt, stage=stage,
        headline=answer.headline, item_name=answer.item_name, department=answer.department,
        handled_at=answer.handled_at, collect_at=answer.collect_at, missing=tuple(answer.missing_materials),
        due=date.fromisoformat(answer.due) if answer.due and stage in RUNNING_STAGES else None,
        steps=tuple(Step(datetime.fromisoformat(s.at), s.text) for s in answer.steps),
        from_summary=answer.source == Source.SUMMARY.value, known=answer.known,
    )


class CaseServicer(cases_pb2_grpc.CaseServiceServicer):
    """Cases: every call but Track (public: anyone holding the receipt) needs a login; the
    event records the authenticated person, never the request's free-text ``actor``."""

    def __init__(self, desk: CaseDesk, auth: Auth, parent: ParentTrack | None = None) -> None:
        self.desk = desk
        self.auth = auth
        self.here = desk.store.meta.node_id
        self.tracker = Tracker(desk)
        self.parent = parent  # the parent's Track (None at the city, or a node started without its parent)

    @rpc
    async def Submit(self, request: cases_pb2.SubmitCaseRequest, context: grpc.aio.ServicerContext) -> cases_pb2.SubmitCaseResponse:
        person = await self.auth.person(context)
        # A village agent carries the case itself (代办); a clerk may enter it for a named agent.
        agent = person.actor if not person.roles & WINDOW_ROLES else request.agent
        cmd = SubmitCommand(
            idempotency_key=request.idempotency_key,
            item_code=request.item_code,
            applicant_name=request.applicant.name,
            applicant_id=request.applicant.id_number,
            applicant_phone=request.applicant.phone,
            materials=tuple(request.materials),
            agent=agent,
            note=request.note,
            actor=person.actor,
            happened_at=parse_happened(request.happened_at),
            person=person,
        )
        done = await self.desk.submit(cmd)
        case = case_to_proto(done.record, here=self.here)
        case.received_by = person.actor if not done.replayed else ""
        return cases_pb2.SubmitCaseResponse(case=case, replayed=done.replayed, rating_code=done.rating_code)

    @rpc
    async def Get(self, request: cases_pb2.GetCaseRequest, context: grpc.aio.ServicerContext) -> cases_pb2.Case:
        await self.auth.require(context, Op.READ_CASES)
        record, events = await asyncio.to_thread(self.desk.get, request.receipt)
        case = case_to_proto(record, events, self.here)
        case.provisional = self.desk.provisional(record.state)
        return await self._with_notice(case, record, events)

    async def _with_notice(self, case: cases_pb2.Case, record: CaseRecord, events: list[StoredEvent]) -> cases_pb2.Case:
        """The case with its latest one-time notice, rendered from the event that gave it (a case
        keeps the text of its return's notice only)."""
        facts = await asyncio.to_thread(self.desk.latest_notice, record, events)
        if facts is not None:
            case.notice = render_text(facts)
        return case

    def _found(self, known: Known) -> cases_pb2.TrackCaseResponse:
        """The applicant's view of a case this node knows, saying whether its due date is provisional."""
        answer = track_to_proto(known, self.here)
        answer.provisional = self.desk.provisional_due(known.status, known.due)
        return answer

    @rpc
    async def Track(self, request: cases_pb2.TrackCaseRequest, context: grpc.aio.ServicerContext) -> cases_pb2.TrackCaseResponse:
        """Public: the first node up the tree that knows the receipt answers (``node.app.tracking``)."""
        receipt = self.desk.parse_receipt(request.receipt)
        parent = self.parent

        async def ask(hops: int) -> cases_pb2.TrackCaseResponse:
            assert parent is not None
            remaining = context.time_remaining()
            timeout = HOP_DEADLINE_S if remaining is None else min(HOP_DEADLINE_S, max(remaining - 0.2, 0.1))
            return await parent.track(receipt, hops, timeout)

        return await self.tracker.answer(receipt, request.hops, found=self._found,
                                         ask_parent=ask if parent is not None else None,
                                         link_down=lambda: unknown_to_proto(receipt, self.here, link_down=True))

    @rpc
    async def List(self, request: cases_pb2.ListCasesRequest, context: grpc.aio.ServicerContext) -> cases_pb2.ListCasesResponse:
        await self.auth.require(context, Op.READ_CASES)
        limit = request.limit or 100
        if not 0 < limit <= MAX_LIST:
            raise DeskError(ErrorKind.INVALID, f"limit must be from 1 to {MAX_LIST}", "limit")
        due_before = None
        m = "ListCasesRequest"
        status, item_code = checked(m, "status", request.status), checked(m, "item_code", request.item_code)
        department = checked(m, "department", request.department)
        named = {"status": (status,), "statuses": checked_list(m, "statuses", list(request.statuses))}
        statuses: set[str] = set()
        for field, names in named.items():
            try:
                statuses |= {s.value for s in statuses_named(names)}
            except ValueError as exc:
                raise DeskError(ErrorKind.INVALID, f"{field}: {exc}", field) from None
        # Finished cases wait for nobody: "open only" and "due before" leave them out.
        not_statuses = {s.value for s in FINISHED} if request.open_only or request.due_before else set()
        checked(m, "due_before", request.due_before)
        checked(m, "page_token", request.page_token)
        if request.due_before:
            try:
                due_before = date.fromisoformat(request.due_before)
            except ValueError:
                raise DeskError(ErrorKind.INVALID, f"due_before {request.due_before!r} is not a date YYYY-MM-DD", "due_before") from None
        after = ""
        # The queue puts green-channel cases first: a token from that part says so.
        after_green = request.page_token.startswith(GREEN_TOKEN)
        if request.page_token:
            try:
                after = str(Receipt.parse(request.page_token.removeprefix(GREEN_TOKEN)))
            except ReceiptError:
                raise DeskError(ErrorKind.INVALID, "page_token is not one this node gave out", "page_token") from None
        rows = await asyncio.to_thread(
            self.desk.store.list_cases,
            statuses=statuses,
            item_code=item_code,
            department=department,
            due_before=due_before,
            after_receipt=after,
            after_green=after_green,
            limit=limit + 1,  # one more tells whether there is a next page
            not_statuses=not_statuses,
        )
        page, more = rows[:limit], len(rows) > limit
        last = page[-1].state if page else None
        token = "" if not more or last is None else (GREEN_TOKEN if last.green_channel else "") + last.receipt
        return cases_pb2.ListCasesResponse(cases=[case_to_proto(r, here=self.here) for r in page],
                                           next_page_token=token)

    @rpc
    async def Act(self, request: cases_pb2.ActRequest, context: grpc.aio.ServicerContext) -> cases_pb2.ActResponse:
        person = await self.auth.person(context)
        params = ActParams(
            actor=person.actor,
            reason=request.reason,
            materials=tuple(request.materials),
            departments=tuple(request.departments),
            department=request.department,
            agree=request.agree,
            approver=request.approver,
            changed_application=request.changed_application,
        )
        acted = await self.desk.act(request.receipt, request.action, params, parse_happened(request.happened_at),
                                    person=person)
        return await self._acted(acted)

    async def _acted(self, acted: Acted) -> cases_pb2.ActResponse:
        events = await asyncio.to_thread(self.desk.store.events, acted.record.state.receipt)
        case = await self._with_notice(case_to_proto(acted.record, events, self.here), acted.record, events)
        return cases_pb2.ActResponse(case=case, forwarded_to=acted.forwarded_to)

    @rpc
    async def Notice(self, request: cases_pb2.GetCaseRequest, context: grpc.aio.ServicerContext) -> cases_pb2.CaseNotice:
        await self.auth.require(context, Op.READ_CASES)
        facts = await asyncio.to_thread(self.desk.notice, request.receipt)
        return cases_pb2.CaseNotice(receipt=facts.receipt, kind=facts.kind.value, text=render_text(facts),
                                    html=render_html(facts), issued_at=facts.issued_at.isoformat(), node=facts.node)

    @rpc
    async def PayFee(self, request: cases_pb2.PayFeeRequest, context: grpc.aio.ServicerContext) -> cases_pb2.ActResponse:
        """统一收费: a payment at the collection point (the ``pay`` step)."""
        person = await self.auth.person(context)
        m = "PayFeeRequest"
        params = payment(person.actor, request.amount, request.method, request.number)
        acted = await self.desk.act(checked(m, "receipt", request.receipt, what="the case's receipt number"),
                                    Action.PAY.value, params, parse_happened(request.happened_at), person=person)
        return await self._acted(acted)

    @rpc
    async def WaiveFee(self, request: cases_pb2.WaiveFeeRequest, context: grpc.aio.ServicerContext) -> cases_pb2.ActResponse:
        """What is still due, waived with its reason (the ``waive_fee`` step)."""
        person = await self.auth.person(context)
        m = "WaiveFeeRequest"
        params = ActParams(actor=person.actor, reason=checked(m, "reason", request.reason,
                                                              what="the exemption and its basis"))
        acted = await self.desk.act(checked(m, "receipt", request.receipt, what="the case's receipt number"),
                                    Action.WAIVE_FEE.value, params, person=person)
        return await self._acted(acted)

    @rpc
    async def GreenChannel(self, request: cases_pb2.GreenChannelRequest,
                           context: grpc.aio.ServicerContext) -> cases_pb2.ActResponse:
        """绿色通道: the case is handled first (the ``green_channel`` step)."""
        person = await self.auth.person(context)
        m = "GreenChannelRequest"
        params = ActParams(actor=person.actor, reason=checked(m, "reason", request.reason,
                                                              what="the major project it serves"))
        acted = await self.desk.act(checked(m, "receipt", request.receipt, what="the case's receipt number"),
                                    Action.GREEN_CHANNEL.value, params, person=person)
        return await self._acted(acted)


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    """The catalog is public (the ten publics, 十公开); publishing a release needs ops."""

    def __init__(self, store: Store, clock: Clock, auth: Auth, refusals: Refusals | None = None,
                 calendar_years: CalendarYears | None = None) -> None:
        self.store = store
        self.clock = clock
        self.auth = auth
        self.refusals = refusals or Refusals()  # releases refused (govnet_sync_refused_total)
        self.calendar_years = calendar_years  # None: this server publishes no calendar years

    def _publish(self, catalog: Catalog, expected_version: int) -> int:
        with self.store.transaction() as s:
            return publish_local(s, self.store, catalog, self.clock.now(), expected_version)

    @rpc
    async def GetItem(self, request: catalog_pb2.GetItemRequest, context: grpc.aio.ServicerContext) -> catalog_pb2.GetItemResponse:
        catalog = await asyncio.to_thread(self.store.catalog)
        code = checked("GetItemRequest", "code", request.code, what="the item's code, like HB-0001")
        if not code:
            raise DeskError(ErrorKind.INVALID, "code is required: the item code to look up, e.g. SJ-0001", "code")
        item = catalog.items.get(code)
        if item is None:
            raise DeskError(ErrorKind.NOT_FOUND, f"no item {code} in this node's catalog", "code")
        issuer, version = catalog.sources[code]
        return catalog_pb2.GetItemResponse(item=item_to_proto(item), version=version, issuer=issuer)

    @rpc
    async def ListItems(self, request: catalog_pb2.ListItemsRequest, context: grpc.aio.ServicerContext) -> catalog_pb2.ListItemsResponse:
        department = checked("ListItemsRequest", "department", request.department)
        level = checked("ListItemsRequest", "authority_level", request.authority_level)
        catalog = await asyncio.to_thread(self.store.catalog)
        items = [
            i
            for i in sorted(catalog.items.values(), key=lambda i: i.code)
            if (not department or i.department == department)
            and (not level or i.authority_level.value == level)
        ]
        return catalog_pb2.ListItemsResponse(
            items=[item_to_proto(i) for i in items], version=catalog.version, issuer=catalog.issuer,
            releases=[catalog_pb2.CatalogRelease(issuer=i, version=v) for i, v in sorted(catalog.releases.items())],
        )

    @rpc
    async def PutCatalog(self, request: catalog_pb2.PutCatalogRequest, context: grpc.aio.ServicerContext) -> catalog_pb2.PutCatalogResponse:
        await self.auth.require(context, Op.PUBLISH_CATALOG)
        if not request.items:
            raise DeskError(ErrorKind.INVALID, "the catalog has no items; refusing to publish an empty catalog", "items")
        items: list[ServiceItem] = []
        for index, msg in enumerate(request.items, 1):
            try:
                items.append(ServiceItem.from_dict(item_to_dict(msg)))
            except CatalogError as exc:
                raise exc.located(index=index) from None
        # A node publishes under its own name only, and only items within its authority
        # (federation.authority): a village cannot publish "the city's" release.
        catalog = Catalog(items=tuple(items), issuer=checked("PutCatalogRequest", "issuer", request.issuer) or self.store.meta.node_id)
        try:
            version = await asyncio.to_thread(self._publish, catalog, request.expected_version)
        except Unauthorized as exc:
            self.refusals.record("client", exc.refusal, "catalog")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        return catalog_pb2.PutCatalogResponse(version=version, item_count=len(items))

    @rpc
    async def PublishCalendar(self, request: catalog_pb2.PublishCalendarRequest,
                              context: grpc.aio.ServicerContext) -> catalog_pb2.PublishCalendarResponse:
        await self.auth.require(context, Op.PUBLISH_CATALOG)
        text = checked("PublishCalendarRequest", "schedule", request.schedule, what="the year's schedule (TOML)")
        years = self.calendar_years
        if years is None:
            raise DeskError(ErrorKind.PRECONDITION, "this node publishes no calendar years")

        def publish() -> Published:
            with self.store.transaction() as s:
                return years.publish(s, text, "schedule", self.clock.now())

        try:
            done = await asyncio.to_thread(publish)
        except CalendarError as exc:
            raise DeskError(ErrorKind.INVALID, str(exc), "schedule") from None
        except Unauthorized as exc:
            self.refusals.record("client", exc.refusal, "calendar")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        return catalog_pb2.PublishCalendarResponse(year=done.year, published=done.new, recounted=done.recounted)


__all__ = ["MAX_LIST", "CaseServicer", "CatalogServicer", "rpc", "rpc_stream"]  # rpc*: node.rpc.sync imports them here
