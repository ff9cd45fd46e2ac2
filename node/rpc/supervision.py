"""gRPC adapter for supervision: messages in, ``node.app.supervision`` and complaints, messages out.

Blocking store work runs in worker threads; refusals map to statuses by ``rpc``
(``node.rpc.errors``, the one error -> status map).
"""

from __future__ import annotations

import asyncio
import json
from typing import TypeAlias

import grpc

from govnet.node.app.complaints import ComplaintDesk, ComplaintView, FileCommand
from govnet.node.app.desk import DeskError, ErrorKind
from govnet.node.app.supervision import AlarmView, Supervisor
from govnet.node.rpc.errors import rpc
from govnet.v1 import supervision_pb2, supervision_pb2_grpc

Ctx: TypeAlias = grpc.aio.ServicerContext


def alarm_to_proto(a: AlarmView) -> supervision_pb2.Alarm:
    return supervision_pb2.Alarm(receipt=a.receipt, kind=a.kind, card=a.card, item_code=a.item_code, owner=a.owner,
                                 status=a.status, due=a.due, since=a.since, open=a.open,
                                 detail_json=json.dumps(a.detail, ensure_ascii=False, sort_keys=True),
                                 backfilled=a.backfilled)


def complaint_to_proto(v: ComplaintView) -> supervision_pb2.Complaint:
    r = v.row
    return supervision_pb2.Complaint(
        complaint_id=r.complaint_id, receipt=r.receipt or "", about_node=r.about_node, item_code=r.item_code or "",
        department=r.department, filed_at_node=r.filed_at_node, supervisor=r.supervisor, text=r.text,
        filed_at=r.filed_at, filed_on=r.filed_on, due=r.due, status=r.status, resolved_on=r.resolved_on or "",
        resolution=r.resolution, resolved_by=r.resolved_by, overdue=v.overdue)


class SupervisionServicer(supervision_pb2_grpc.SupervisionServiceServicer):
    def __init__(self, supervisor: Supervisor, complaints: ComplaintDesk) -> None:
        self.supervisor = supervisor
        self.complaints = complaints

    @rpc
    async def ListAlarms(self, request: supervision_pb2.ListAlarmsRequest, context: Ctx) -> supervision_pb2.ListAlarmsResponse:
        alarms = await asyncio.to_thread(self.supervisor.alarms)
        if request.open_only:
            alarms = [a for a in alarms if a.open]
        return supervision_pb2.ListAlarmsResponse(alarms=[alarm_to_proto(a) for a in alarms],
                                                  node_id=self.supervisor.here)

    @rpc
    async def Scan(self, request: supervision_pb2.ScanRequest, context: Ctx) -> supervision_pb2.ScanResponse:
        return supervision_pb2.ScanResponse(recorded=await asyncio.to_thread(self.supervisor.scan))

    async def _suspension(self, receipt: str) -> supervision_pb2.SuspensionResponse:
        record, _ = await asyncio.to_thread(self.supervisor.desk.get, receipt)
        st = record.state
        return supervision_pb2.SuspensionResponse(
            receipt=st.receipt, status=st.status.value, due=st.due.isoformat() if st.due else "",
            paused_days=st.paused_days, suspended=st.pause_started is not None)

    @rpc
    async def Suspend(self, request: supervision_pb2.SuspendRequest, context: Ctx) -> supervision_pb2.SuspensionResponse:
        await self.supervisor.suspend(request.receipt, request.kind, request.days, request.reason, request.actor)
        return await self._suspension(request.receipt)

    @rpc
    async def Resume(self, request: supervision_pb2.ResumeRequest, context: Ctx) -> supervision_pb2.SuspensionResponse:
        await self.supervisor.resume(request.receipt, request.reason, request.actor)
        return await self._suspension(request.receipt)

    @rpc
    async def Evaluate(self, request: supervision_pb2.EvaluateRequest, context: Ctx) -> supervision_pb2.EvaluateResponse:
        done = await asyncio.to_thread(self.supervisor.evaluate, request.receipt, request.rating, request.comment,
                                       request.actor)
        return supervision_pb2.EvaluateResponse(receipt=done.receipt, rating=done.rating,
                                                forwarded_to=done.forwarded_to,
                                                rectification_due=done.rectification_due)

    @rpc
    async def Rectify(self, request: supervision_pb2.RectifyRequest, context: Ctx) -> supervision_pb2.RectifyResponse:
        done = await asyncio.to_thread(self.supervisor.rectify, request.receipt, request.note, request.actor)
        return supervision_pb2.RectifyResponse(receipt=request.receipt.strip(), due=done["due"], on_time=done["on_time"])

    @rpc
    async def Appeal(self, request: supervision_pb2.AppealRequest, context: Ctx) -> supervision_pb2.AppealResponse:
        await asyncio.to_thread(self.supervisor.appeal, request.receipt, request.reason, request.actor)
        return supervision_pb2.AppealResponse(receipt=request.receipt.strip())

    @rpc
    async def DecideAppeal(self, request: supervision_pb2.DecideAppealRequest, context: Ctx) -> supervision_pb2.AppealResponse:
        await asyncio.to_thread(self.supervisor.decide_appeal, request.receipt, request.upheld, request.reason,
                                request.actor)
        return supervision_pb2.AppealResponse(receipt=request.receipt.strip())

    @rpc
    async def FileComplaint(self, request: supervision_pb2.FileComplaintRequest, context: Ctx) -> supervision_pb2.Complaint:
        cmd = FileCommand(text=request.text, receipt=request.receipt, about_node=request.about_node,
                          department=request.department)
        row = await asyncio.to_thread(self.complaints.file, cmd)
        return complaint_to_proto(ComplaintView(row, False))

    @rpc
    async def ResolveComplaint(self, request: supervision_pb2.ResolveComplaintRequest, context: Ctx) -> supervision_pb2.Complaint:
        row = await asyncio.to_thread(self.complaints.resolve, request.complaint_id, request.resolution, request.actor)
        return complaint_to_proto(ComplaintView(row, False))

    @rpc
    async def ListComplaints(self, request: supervision_pb2.ListComplaintsRequest, context: Ctx) -> supervision_pb2.ListComplaintsResponse:
        if request.about_node and not request.about_node.isdigit():
            raise DeskError(ErrorKind.INVALID, f"about_node {request.about_node!r} is not a node id", "about_node")
        views = await asyncio.to_thread(self.complaints.list, request.status, request.about_node)
        return supervision_pb2.ListComplaintsResponse(complaints=[complaint_to_proto(v) for v in views])
