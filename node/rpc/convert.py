"""Conversions between domain values and the generated protobuf messages.

Generated classes stay at the RPC boundary: servicers and the client call these
functions and hand domain values inward.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from govnet.node.app.replication import REQUESTABLE
from govnet.node.domain.catalog import ServiceItem
from govnet.node.domain.lifecycle import allowed_actions, fees_outstanding
from govnet.node.store.cases import CaseRecord, StoredEvent
from govnet.v1 import cases_pb2, catalog_pb2


def item_to_proto(item: ServiceItem) -> catalog_pb2.ServiceItem:
    d = item.to_dict()
    return catalog_pb2.ServiceItem(
        **{k: v for k, v in d.items() if k not in ("materials", "fees")},
        materials=[catalog_pb2.Material(**m) for m in d["materials"]],
        fees=[catalog_pb2.Fee(**f) for f in d["fees"]],
    )


def item_to_dict(msg: catalog_pb2.ServiceItem) -> dict[str, Any]:
    """The plain form ``ServiceItem.from_dict`` validates (every field present)."""
    return {
        "code": msg.code,
        "name": msg.name,
        "department": msg.department,
        "authority_level": msg.authority_level,
        "item_type": msg.item_type,
        "legal_basis": msg.legal_basis,
        "procedure": list(msg.procedure),
        "conditions": msg.conditions,
        "materials": [{"name": m.name, "core": m.core} for m in msg.materials],
        "statutory_days": msg.statutory_days,
        "promised_days": msg.promised_days,
        "fees": [
            {"name": f.name, "amount_fen": f.amount_fen, "standard": f.standard, "basis": f.basis,
             "free_units": f.free_units}
            for f in msg.fees
        ],
        "joint_departments": list(msg.joint_departments),
        "tolerance": msg.tolerance,
        "proxy": msg.proxy,
        "timeout_default": msg.timeout_default,
        "progress_public": msg.progress_public,
        "green_channel_days": msg.green_channel_days,
    }


def event_to_proto(e: StoredEvent, *, public: bool = False) -> cases_pb2.CaseEvent:
    """``public``: what anyone holding the receipt may see (no staff names, no details)."""
    return cases_pb2.CaseEvent(
        seq=e.seq,
        action=e.action,
        from_status=e.from_status,
        to_status=e.to_status,
        actor="" if public else e.actor,
        reason=e.reason,
        happened_at=e.happened_at,
        recorded_at=e.recorded_at,
        node=e.origin,
        detail_json="" if public else json.dumps(e.detail, ensure_ascii=False, sort_keys=True),
    )


def _d(value: Any) -> str:
    return value.isoformat() if value else ""


def case_to_proto(record: CaseRecord, events: Iterable[StoredEvent] = (), here: str = "") -> cases_pb2.Case:
    """``here``: the node answering; where it does not own the case, it can only pass requests on."""
    st = record.state
    allowed = allowed_actions(st)
    events = list(events)
    # 首问负责: who first received the applicant, as the case's first event records them.
    received_by = next((e.actor for e in events if e.action == "submit"), "")
    if here and st.owner != here:
        # The window where the applicant applied also hands the result over (the owner records it).
        allowed = [a for a in allowed if a in REQUESTABLE or (a == "deliver" and st.origin == here)]
    return cases_pb2.Case(
        receipt=st.receipt,
        item_code=st.item_code,
        item_name=record.item_name,
        department=record.department,
        case_type=st.case_type.value,
        status=st.status.value,
        owner=st.owner,
        owner_epoch=st.owner_epoch,
        origin=st.origin,
        applicant=cases_pb2.Applicant(
            name=record.applicant.name, id_number=record.applicant.id_number, phone=record.applicant.phone
        ),
        materials=list(st.materials),
        missing_core=list(st.missing_core),
        pending_materials=list(st.pending_materials + st.requested_materials),
        submitted_at=st.submitted_at.isoformat(),
        due=_d(st.due),
        statutory_due=_d(st.statutory_due),
        supplement_due=_d(st.supplement_due),
        catalog_version=st.catalog_version,
        catalog_issuer=st.catalog_issuer,
        possible_duplicate=record.possible_duplicate,
        duplicate_of=record.duplicate_of,
        agent=st.agent,
        joint=[cases_pb2.JointOpinion(department=d, opinion=o, reason=r) for d, o, r in st.joint],
        paused_days=st.paused_days,
        extended=st.extended,
        decision=st.decision,
        decision_reason=st.decision_reason,
        notice=st.notice,
        window_delivered_by=record.window_delivery.actor if record.window_delivery is not None else "",
        window_delivered_at=record.window_delivery.at if record.window_delivery is not None else "",
        events=[event_to_proto(e) for e in events],
        allowed_actions=allowed,
        received_by=received_by,
        applicant_masked=record.applicant.masked().name,
        carried=st.carried,
        fees_due_fen=st.fees_due_fen,
        fees_paid_fen=st.fees_paid_fen,
        fees_waived=st.fees_waived,
        fees_outstanding_fen=fees_outstanding(st),
        green_channel=st.green_channel,
    )
