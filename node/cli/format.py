"""Pure text formatting for the CLI: messages in, strings out, nothing printed here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from govnet.node.domain.calendar import CHINA_TZ
from govnet.node.domain.fees import yuan
from govnet.v1 import cases_pb2, catalog_pb2, sync_pb2


def to_json(msg: Message | dict[str, Any]) -> str:
    data = msg if isinstance(msg, dict) else message_dict(msg)
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)


def message_dict(msg: Message) -> dict[str, Any]:
    return MessageToDict(msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def _width(text: str) -> int:
    """Display width: CJK characters take two terminal columns."""
    return sum(2 if ord(ch) >= 0x1100 and _wide(ch) else 1 for ch in text)


def _wide(ch: str) -> bool:
    import unicodedata

    return unicodedata.east_asian_width(ch) in ("W", "F")


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(_pad(c, w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_fields(pairs: Sequence[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in pairs if v not in ("", None))


# A due date in a year whose official holiday schedule is not published yet (counted Monday–Friday).
PROVISIONAL = " (provisional: the year's holiday schedule is not published yet)"
# The same for the applicant's view, which is in Chinese.
PROVISIONAL_ZH = "\n办理时限暂按周一至周五计算：该年节假日安排尚未公布，公布后可能调整。"


def format_case(case: cases_pb2.Case) -> str:
    head = format_fields(
        [
            ("receipt", case.receipt),
            ("item", f"{case.item_code} {case.item_name}"),
            ("department", case.department),
            ("type", case.case_type),
            ("status", case.status),
            ("owner", case.owner),
            ("origin", case.origin),
            ("applicant", f"{case.applicant.name} {case.applicant.id_number} {case.applicant.phone}"),
            ("agent", f"{case.agent} (carried, 代办)" if case.carried and case.agent else case.agent),
            ("green channel", "yes (绿色通道: handled first)" if case.green_channel else ""),
            ("fees", format_fees(case)),
            ("materials", ", ".join(case.materials)),
            ("missing core", ", ".join(case.missing_core)),
            ("owed", ", ".join(case.pending_materials)),
            ("submitted", case.submitted_at),
            ("due", (case.due + PROVISIONAL if case.provisional else case.due) if case.due else "(set at acceptance)"),
            ("statutory due", case.statutory_due),
            ("supplement due", case.supplement_due),
            ("paused days", case.paused_days or ""),
            ("extended", "yes" if case.extended else ""),
            ("joint", ", ".join(f"{j.department}: {j.opinion}" for j in case.joint)),
            ("decision", f"{case.decision} {case.decision_reason}".strip()),
            ("delivered here", f"{case.window_delivered_at} by {case.window_delivered_by}"
             if case.window_delivered_at else ""),
            ("duplicate?", f"possible duplicate of {case.duplicate_of}" if case.possible_duplicate else ""),
            ("catalog", f"{case.catalog_issuer} version {case.catalog_version}".strip()),
            ("next actions", ", ".join(case.allowed_actions) or "none (closed)"),
        ]
    )
    if case.notice:
        # The one-time notice as the applicant was given it (several lines, Chinese).
        head += "\n\n" + case.notice
    payments = [format_payment(e) for e in case.events if e.action in ("pay", "waive_fee")]
    if payments:
        head += "\n" + "\n".join(f"{'payment' if p.startswith('paid') else 'waiver'}  {p}" for p in payments)
    if not case.events:
        return head
    events = format_table(
        ["#", "when", "action", "status", "actor", "reason"],
        [(e.seq, e.happened_at[:19], e.action + (" [back-filled]" if '"backfilled": true' in e.detail_json else ""),
          e.to_status, e.actor, e.reason) for e in case.events],
    )
    return head + "\n\n" + events


# How a clerk reads a case's status (the list's 状态 column); the code stays in --json.
STATUS_NAMES = {
    "received": "待受理", "returned": "已退件", "accepted": "已受理", "under_review": "审查中",
    "awaiting_supplement": "待补正", "joint_review": "联合审查", "escalated": "已上报", "approved": "已批准",
    "rejected": "不予许可", "completed": "已办结", "delivered": "已送达", "withdrawn": "已撤回",
}


def format_fees(case: cases_pb2.Case) -> str:
    """What the case owes, has paid and still owes, in yuan ("" for a case that owes nothing)."""
    if not case.fees_due_fen:
        return ""
    parts = [f"due {yuan(case.fees_due_fen)}", f"paid {yuan(case.fees_paid_fen)}"]
    if case.fees_waived:
        parts.append("rest waived")
    parts.append(f"outstanding {yuan(case.fees_outstanding_fen)} yuan")
    return ", ".join(parts)


def format_payment(e: cases_pb2.CaseEvent) -> str:
    """One payment or waiver, as its event records it."""
    detail = json.loads(e.detail_json or "{}")
    if e.action == "pay":
        return (f"paid {yuan(int(detail.get('amount_fen', 0)))} yuan by {detail.get('method', '?')} "
                f"no. {detail.get('number', '?')} at {e.happened_at[:19]} ({e.actor})")
    return f"waived {yuan(int(detail.get('waived_fen', 0)))} yuan at {e.happened_at[:19]} ({e.actor}): {e.reason}"


def format_case_list(cases: Sequence[cases_pb2.Case]) -> str:
    """One row per case: the item's name and the applicant's masked name (empty where this node
    does not hold the applicant), the status in Chinese, the promised due date."""
    return format_table(
        ["受理编号", "事项", "事项名称", "申请人", "类型", "状态", "承诺期限", "承办节点", "标记"],
        [
            (c.receipt, c.item_code, c.item_name, c.applicant_masked or "-", c.case_type,
             STATUS_NAMES.get(c.status, c.status), c.due or "-", c.owner,
             " ".join(f for f, on in (("绿色通道", c.green_channel), ("代办", c.carried),
                                      (f"欠费{yuan(c.fees_outstanding_fen)}元", c.fees_outstanding_fen > 0),
                                      ("疑似重复", c.possible_duplicate)) if on))
            for c in cases
        ],
    )


def format_track(t: cases_pb2.TrackCaseResponse) -> str:
    """The applicant's view as the answering node rendered it (``node.domain.progress``)."""
    if t.text:
        return t.text + (PROVISIONAL_ZH if t.provisional else "")
    head = format_fields(
        [("receipt", t.receipt), ("item", t.item_name), ("department", t.department),
         ("status", t.status), ("due", (t.due + PROVISIONAL if t.provisional else t.due) or "-"),
         ("handled at", t.owner)]
    )
    rows = [(e.happened_at[:19], e.action, e.to_status, e.reason) for e in t.progress]
    return head + "\n\n" + format_table(["when", "step", "status", "note"], rows)


def format_items(items: Sequence[catalog_pb2.ServiceItem]) -> str:
    return format_table(
        ["code", "name", "department", "level", "type", "promised", "statutory"],
        [(i.code, i.name, i.department, i.authority_level, i.item_type, i.promised_days, i.statutory_days)
         for i in items],
    )


def format_item(i: catalog_pb2.ServiceItem, version: int, issuer: str = "") -> str:
    fees = "; ".join(f"{f.name} {f.amount_fen / 100:.2f} yuan ({f.standard}; {f.basis})" for f in i.fees)
    return format_fields(
        [
            ("code", i.code),
            ("name", i.name),
            ("department", i.department),
            ("decided at", i.authority_level),
            ("type", i.item_type),
            ("legal basis", i.legal_basis),
            ("conditions", i.conditions),
            ("procedure", " → ".join(i.procedure)),
            ("materials", ", ".join(f"{m.name}{'' if m.core else ' (non-core)'}" for m in i.materials)),
            ("promised", f"{i.promised_days} working days"),
            ("statutory", f"{i.statutory_days} working days"),
            ("fees", fees or "free of charge"),
            ("joint with", ", ".join(i.joint_departments)),
            ("tolerance", "yes" if i.tolerance else "no"),
            ("agent may carry", "yes" if i.proxy else "no"),
            ("catalog", f"{issuer} version {version}".strip()),
        ]
    )


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _age(seconds: float) -> str:
    if seconds <= 0:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def format_sync_status(status: sync_pb2.SyncStatusResponse) -> str:
    rows = [
        (link.neighbour, link.direction, link.state, (link.since or "-")[:19], link.outbox_depth,
         _age(link.oldest_age_s), link.inbox_depth, (link.last_success or "-")[:19], link.quarantined,
         link.quarantined_sent, _short(link.last_error))
        for link in status.links
    ]
    table = format_table(["link", "dir", "state", "since", "outbox", "oldest", "inbox", "last success",
                          "quar. recv", "quar. sent", "last error"],
                         rows) if rows else "no links yet (no parent configured and no child has registered)"
    received = status.quarantined - status.quarantined_sent
    return (f"node {status.node_id}: {status.quarantined} quarantined "
            f"({received} received, {status.quarantined_sent} withheld here)\n\n{table}")


def _beijing(stamp: str) -> str:
    """An ISO 8601 instant as people read it: Beijing time, to the second."""
    try:
        at = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp[:19]
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def format_quarantine(listing: sync_pb2.QuarantineListResponse) -> str:
    """Both sides: ``receiver`` entries came from LINK and could not be applied here (or are the
    markers of what LINK withheld); ``sender`` entries could not be sent to LINK from here."""
    if not listing.items:
        return "quarantine is empty"
    table = format_table(
        ["id", "link", "side", "seq", "kind", "case", "bytes", "when (Beijing)", "reason"],
        [(q.id, q.link, q.side or "receiver", q.envelope.seq, q.envelope.kind, q.envelope.case_key,
          f"{q.size:,}", _beijing(q.quarantined_at), q.error) for q in listing.items],
    )
    return table
