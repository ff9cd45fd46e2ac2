"""gRPC adapter for supervision: messages in, ``node.app.supervision`` and complaints, messages out.

Blocking store work runs in worker threads; refusals map to statuses by ``rpc``
(``node.rpc.errors``, the one error -> status map).
"""

from __future__ import annotations

import asyncio
import json
from typing import TypeAlias

import grpc

from govnet.federation.tree import in_subtree, level_of
from govnet.node.app.accounts import Accounts
from govnet.node.app.complaints import ComplaintDesk, ComplaintView, FileCommand
from govnet.node.app.desk import DeskError, ErrorKind, check_allowed, checked
from govnet.node.app.supervision import AlarmView, Supervisor
from govnet.node.domain.limits import excerpt
from govnet.node.domain.people import Op, Role
from govnet.node.rpc.auth import Auth
from govnet.node.rpc.errors import rpc
from govnet.v1 import supervision_pb2, supervision_pb2_grpc

Ctx: TypeAlias = grpc.aio.ServicerContext


def alarm_to_proto(a: AlarmView) -> supervision_pb2.Alarm:
    return supervision_pb2.Alarm(receipt=a.receipt, kind=a.kind, card=a.card, item_code=a.item_code, owner=a.owner,
                                 status=a.status, due=a.due, since=a.since, open=a.open,
                                 detail_json=json.dumps(a.detail, ensure_ascii=False, sort_keys=True),
                                 backfilled=a.backfilled, provisional=a.provisional)


def complaint_to_proto(v: ComplaintView) -> supervision_pb2.Complaint:
    r = v.row
    return supervision_pb2.Complaint(
        complaint_id=r.complaint_id, receipt=r.receipt or "", about_node=r.about_node, item_code=r.item_code or "",
        department=r.department, filed_at_node=r.filed_at_node, supervisor=r.supervisor, text=r.text,
        filed_at=r.filed_at, filed_on=r.filed_on, due=r.due, status=r.status, resolved_on=r.resolved_on or "",
        resolution=r.resolution, resolved_by=r.resolved_by, overdue=v.overdue)


class SupervisionServicer(supervision_pb2_grpc.SupervisionServiceServicer):
    """Every call needs a login (``node.rpc.auth``) but a rating made with the receipt's one-time
    code (the applicant's own channel); the authenticated person is recorded, never ``actor``."""

    def __init__(self, supervisor: Supervisor, complaints: ComplaintDesk, auth: Auth, accounts: Accounts) -> None:
        self.supervisor = supervisor
        self.complaints = complaints
        self.auth = auth
        self.accounts = accounts

    @rpc
    async def ListAlarms(self, request: supervision_pb2.ListAlarmsRequest, context: Ctx) -> supervision_pb2.ListAlarmsResponse:
        await self.auth.require(context, Op.READ_SUPERVISION)
        about = checked("ListAlarmsRequest", "about_node", request.about_node)
        if about:
            try:
                level_of(about)
            except ValueError as exc:
                raise DeskError(ErrorKind.INVALID, f"about_node {excerpt(about)}: {exc}", "about_node") from None
        alarms = await asyncio.to_thread(self.supervisor.alarms)
        if request.open_only:
            alarms = [a for a in alarms if a.open]
        if about:  # the drill-down: the alarms of that node's subtree (an alarm's owner is the node it concerns)
            alarms = [a for a in alarms if a.owner and in_subtree(a.owner, about)]
        return supervision_pb2.ListAlarmsResponse(alarms=[alarm_to_proto(a) for a in alarms],
                                                  node_id=self.supervisor.here)

    @rpc
    async def Scan(self, request: supervision_pb2.ScanRequest, context: Ctx) -> supervision_pb2.ScanResponse:
        await self.auth.require(context, Op.SCAN)
        return supervision_pb2.ScanResponse(recorded=await asyncio.to_thread(self.supervisor.scan))

    async def _suspension(self, receipt: str) -> supervision_pb2.SuspensionResponse:
        record, _ = await asyncio.to_thread(self.supervisor.desk.get, receipt)
        st = record.state
        return supervision_pb2.SuspensionResponse(
            receipt=st.receipt, status=st.status.value, due=st.due.isoformat() if st.due else "",
            paused_days=st.paused_days, suspended=st.pause_started is not None)

    @rpc
    async def Suspend(self, request: supervision_pb2.SuspendRequest, context: Ctx) -> supervision_pb2.SuspensionResponse:
        person = await self.auth.person(context)
        await self.supervisor.suspend(request.receipt, request.kind, request.days, request.reason, person.actor,
                                      person=person)
        return await self._suspension(request.receipt)

    @rpc
    async def Resume(self, request: supervision_pb2.ResumeRequest, context: Ctx) -> supervision_pb2.SuspensionResponse:
        person = await self.auth.person(context)
        await self.supervisor.resume(request.receipt, request.reason, person.actor, person=person)
        return await self._suspension(request.receipt)

    @rpc
    async def Evaluate(self, request: supervision_pb2.EvaluateRequest, context: Ctx) -> supervision_pb2.EvaluateResponse:
        # The applicant's own channel only: the receipt's one-time code, or a self-service terminal.
        person = await self.auth.optional(context)
        use_code = None
        if checked("EvaluateRequest", "rating_code", request.rating_code):
            if person is not None and Role.TERMINAL not in person.roles:
                raise DeskError(ErrorKind.DENIED, f"rate needs role {Role.TERMINAL.label} or the applicant's own "
                                f"code without a staff login: {person.login} cannot enter a rating")
            receipt = request.receipt.strip()
            use_code = await asyncio.to_thread(self.accounts.check_rating_code, receipt, request.rating_code)
            actor = person.actor if person is not None else "applicant (rating code)"
        elif person is None:
            raise DeskError(ErrorKind.UNAUTHENTICATED, "a rating needs the one-time code printed on the receipt, "
                            "or a self-service terminal's login")
        else:
            check_allowed(person, Op.RATE)
            actor = person.actor
        done = await asyncio.to_thread(self.supervisor.evaluate, request.receipt, request.rating, request.comment,
                                       actor, use_code)
        return supervision_pb2.EvaluateResponse(receipt=done.receipt, rating=done.rating,
                                                forwarded_to=done.forwarded_to,
                                                rectification_due=done.rectification_due)

    @rpc
    async def Rectify(self, request: supervision_pb2.RectifyRequest, context: Ctx) -> supervision_pb2.RectifyResponse:
        person = await self.auth.person(context)
        done = await asyncio.to_thread(self.supervisor.rectify, request.receipt, request.note, person.actor, person)
        return supervision_pb2.RectifyResponse(receipt=request.receipt.strip(), due=done["due"], on_time=done["on_time"])

    @rpc
    async def Appeal(self, request: supervision_pb2.AppealRequest, context: Ctx) -> supervision_pb2.AppealResponse:
        person = await self.auth.person(context)
        await asyncio.to_thread(self.supervisor.appeal, request.receipt, request.reason, person.actor, person)
        return supervision_pb2.AppealResponse(receipt=request.receipt.strip())

    @rpc
    async def DecideAppeal(self, request: supervision_pb2.DecideAppealRequest, context: Ctx) -> supervision_pb2.AppealResponse:
        person = await self.auth.person(context)
        owner = await asyncio.to_thread(self.supervisor.decide_appeal, request.receipt, request.upheld, request.reason,
                                        person.actor, person)
        return supervision_pb2.AppealResponse(receipt=request.receipt.strip(), forwarded_to=owner)

    @rpc
    async def FileComplaint(self, request: supervision_pb2.FileComplaintRequest, context: Ctx) -> supervision_pb2.Complaint:
        await self.auth.require(context, Op.FILE_COMPLAINT)
        cmd = FileCommand(text=request.text, receipt=request.receipt, about_node=request.about_node,
                          department=request.department)
        row = await asyncio.to_thread(self.complaints.file, cmd)
        return complaint_to_proto(ComplaintView(row, False))

    @rpc
    async def ResolveComplaint(self, request: supervision_pb2.ResolveComplaintRequest, context: Ctx) -> supervision_pb2.Complaint:
        person = await self.auth.require(context, Op.RESOLVE_COMPLAINT)
        row = await asyncio.to_thread(self.complaints.resolve, request.complaint_id, request.resolution, person.actor)
        return complaint_to_proto(ComplaintView(row, False))

    @rpc
    async def ListComplaints(self, request: supervision_pb2.ListComplaintsRequest, context: Ctx) -> supervision_pb2.ListComplaintsResponse:
        await self.auth.require(context, Op.READ_SUPERVISION)
        status = checked("ListComplaintsRequest", "status", request.status)
        about = checked("ListComplaintsRequest", "about_node", request.about_node)
        if about and not about.isdigit():
            raise DeskError(ErrorKind.INVALID, f"about_node {excerpt(about)} is not a node id", "about_node")
        views = await asyncio.to_thread(self.complaints.list, status, about)
        return supervision_pb2.ListComplaintsResponse(complaints=[complaint_to_proto(v) for v in views])
