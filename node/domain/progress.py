"""What the applicant sees of a case: its progress in their own words, pure.

A receipt looked up anywhere (a window, a self-service terminal, the console) answers with one
``Progress`` value built by ``progress(facts)`` from the ``CaseFacts`` the answering node holds:
the whole case and its public history (at the origin and at the owner), or only the summary an
ancestor keeps (the state without personal data and without events; its steps are then the dates
the state carries). ``render(progress)`` is the Chinese text for people; ``as_dict(progress)`` the
JSON form for machines (ISO 8601 times).

What it never shows: personal data (the applicant's name, ID number, phone — the facts do not
even carry them — nor the staff who acted or free-text reasons, which may name people); node
codes (a place is named by the node's name when the caller knows it, else by its level:
"县级政务服务中心"); internal steps (hand-over and take-over between nodes, alarms, timeout
defaults, joint opinions, ratings and what follows them). Times are Beijing time.

``not_known(receipt, link_down)`` is the answer of a node that holds nothing of the receipt: the
case is unknown here and, with its link up down, it could not ask the levels above.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from govnet.federation.tree import Level, NodeIdError, level_of
from govnet.node.domain.calendar import CHINA_TZ


class Stage(StrEnum):
    """Where the case is, as the applicant understands it."""

    RECEIVED = "received"  # 已收件，等待受理
    RETURNED = "returned"  # 材料不全，已退回
    ACCEPTED = "accepted"  # 已受理
    UNDER_REVIEW = "under_review"  # 在…审查中
    WAITING_FOR_YOU = "waiting_for_you"  # 等待您补充材料：…
    SUSPENDED = "suspended"  # 听证、检测等期间，暂停计时
    DECIDED = "decided"  # 已作出决定，正在制作结果
    READY = "ready"  # 已办结，可在…领取
    DELIVERED = "delivered"  # 已领取
    WITHDRAWN = "withdrawn"  # 已撤回
    UNKNOWN = "unknown"  # 本节点不掌握此件


# How people call a service center of each level (a node whose name is not known).
PLACE = {
    Level.CITY: "市政务服务中心",
    Level.COUNTY: "县级政务服务中心",
    Level.TOWNSHIP: "乡镇便民服务中心",
    Level.VILLAGE: "村便民服务站",
}
_LEVEL_WORD = {Level.CITY: "市级", Level.COUNTY: "县级", Level.TOWNSHIP: "乡镇", Level.VILLAGE: "村级"}

# The public steps and how the applicant reads them; every other step is internal and left out.
_STEPS: Mapping[str, str] = {
    "submit": "提交申请",
    "accept": "已受理",
    "deem_accept": "依法视为受理（五个工作日内未作受理决定）",  # 行政许可法 art. 32
    "return": "材料不全，已退回（一次性告知）",
    "review": "开始审查",
    "request_supplement": "通知您补充材料",
    "supplement": "已收到补充材料",
    "start_joint": "开始多部门联合审查",
    "escalate": "报送上级审批",
    "extend": "依法延长办理期限",
    "suspend": "暂停计时（听证、检测、勘验或专家评审）",
    "resume": "恢复计时",
    "approve": "作出决定：准予",
    "reject": "作出决定：不予",
    "complete": "已办结，结果已制作",
    "deliver": "结果已领取",
    "withdraw": "已撤回申请",
}
NO_LINK = "本节点不掌握此件，上级链路中断，请稍后再查或到受理窗口查询"
NOT_FOUND = "未找到此件：请核对受理编号"


@dataclass(frozen=True)
class Happened:
    """A step of the case's history as the facts give it: its action, when (aware), and where."""

    action: str
    at: datetime
    node: str = ""


@dataclass(frozen=True)
class CaseFacts:
    """What a node knows of a case, without personal data (a case row or a summary's state)."""

    receipt: str
    item_name: str
    department: str
    status: str  # lifecycle.Status value
    origin: str
    owner: str
    submitted_at: datetime
    due: date | None = None
    missing_core: tuple[str, ...] = ()  # returned: what the one-time notice lists
    requested_materials: tuple[str, ...] = ()  # a supplement request's
    pending_materials: tuple[str, ...] = ()  # owed under tolerance acceptance
    suspended: bool = False
    decision: str = ""  # approved | rejected
    accepted_on: date | None = None
    decided_on: date | None = None
    delivered_at: datetime | None = None  # handed over at the window (as the origin recorded it)
    history: tuple[Happened, ...] = ()  # empty when only a summary is held
    from_summary: bool = False


@dataclass(frozen=True)
class Step:
    at: datetime  # Beijing time
    text: str


@dataclass(frozen=True)
class Progress:
    receipt: str
    stage: Stage
    headline: str  # one line in the applicant's words
    item_name: str = ""
    department: str = ""
    handled_at: str = ""  # where the case is decided now (a place's name)
    collect_at: str = ""  # where the result is collected (where the applicant applied)
    missing: tuple[str, ...] = ()  # what the applicant still has to bring
    due: date | None = None
    steps: tuple[Step, ...] = ()
    from_summary: bool = False
    known: bool = True


def place(node: str, names: Mapping[str, str] | None = None) -> str:
    """A node as people call it: its name when known, else its level's kind of center."""
    if names and node in names:
        return names[node]
    try:
        return PLACE[level_of(node)]
    except NodeIdError:
        return "服务中心"


def _level_word(node: str) -> str:
    try:
        return _LEVEL_WORD[level_of(node)]
    except NodeIdError:
        return ""


def beijing(ts: datetime) -> datetime:
    return ts.astimezone(CHINA_TZ)


def progress(facts: CaseFacts, names: Mapping[str, str] | None = None) -> Progress:
    """The applicant's view of ``facts`` (``names``: node id -> name, where the caller knows one)."""
    handled, collect = place(facts.owner, names), place(facts.origin, names)
    missing = facts.requested_materials or facts.pending_materials
    stage, headline = _stage(facts, handled, collect)
    if stage is Stage.RETURNED:
        missing = facts.missing_core
    return Progress(
        receipt=facts.receipt, stage=stage, headline=headline, item_name=facts.item_name,
        department=facts.department, handled_at=handled, collect_at=collect, missing=tuple(missing),
        due=facts.due if stage in RUNNING_STAGES else None, steps=_steps(facts, names), from_summary=facts.from_summary,
    )


RUNNING_STAGES = frozenset({Stage.ACCEPTED, Stage.UNDER_REVIEW, Stage.WAITING_FOR_YOU, Stage.SUSPENDED})


def _stage(f: CaseFacts, handled: str, collect: str) -> tuple[Stage, str]:
    level = _level_word(f.owner)
    if f.delivered_at is not None or f.status == "delivered":
        return Stage.DELIVERED, "已办结，结果已领取"
    match f.status:
        case "received":
            return Stage.RECEIVED, f"已收件，等待{handled}受理"
        case "returned":
            listed = "、".join(f.missing_core)
            return Stage.RETURNED, "材料不全，已退回" + (f"，请补齐：{listed}" if listed else "") + "，补齐后可重新申请"
        case "accepted":
            return Stage.ACCEPTED, f"已受理，在{level}审查中"
        case "awaiting_supplement":
            return Stage.WAITING_FOR_YOU, "等待您补充材料：" + "、".join(f.requested_materials)
        case "under_review" | "joint_review" | "escalated":
            if f.suspended:
                return Stage.SUSPENDED, f"在{level}审查中（听证、检测等期间暂停计时）"
            joint = "（多部门联合审查）" if f.status == "joint_review" else ""
            return Stage.UNDER_REVIEW, f"在{level}审查中{joint}"
        case "approved" | "rejected":
            return Stage.DECIDED, ("已作出准予决定" if f.decision == "approved" else "已作出不予许可决定") + "，正在制作结果"
        case "completed":
            verdict = "准予许可" if f.decision == "approved" else "不予许可" if f.decision == "rejected" else ""
            return Stage.READY, f"已办结{'（' + verdict + '）' if verdict else ''}，可在{collect}领取"
        case "withdrawn":
            return Stage.WITHDRAWN, "已撤回申请"
    return Stage.UNDER_REVIEW, f"在{level}办理中"


def _steps(f: CaseFacts, names: Mapping[str, str] | None) -> tuple[Step, ...]:
    if f.history:
        steps = [Step(beijing(h.at), _step_text(h, names)) for h in f.history if h.action in _STEPS]
    else:  # only a summary: the dates its state carries
        steps = [Step(beijing(f.submitted_at), _STEPS["submit"])]
        if f.accepted_on is not None:
            steps.append(Step(datetime.combine(f.accepted_on, datetime.min.time(), CHINA_TZ), _STEPS["accept"]))
        if f.decided_on is not None:
            steps.append(Step(datetime.combine(f.decided_on, datetime.min.time(), CHINA_TZ),
                              _STEPS["reject" if f.decision == "rejected" else "approve"]))
    if f.delivered_at is not None and not any(s.text.endswith(_STEPS["deliver"]) for s in steps):
        steps.append(Step(beijing(f.delivered_at), f"{place(f.origin, names)} {_STEPS['deliver']}"))
    return tuple(steps)


def _step_text(h: Happened, names: Mapping[str, str] | None) -> str:
    text = _STEPS[h.action]
    if h.node and h.action in ("submit", "accept", "review", "approve", "reject", "complete", "deliver"):
        return f"{place(h.node, names)} {text}"
    return text


def not_known(receipt: str, link_down: bool) -> Progress:
    """The answer of a node that holds nothing of ``receipt`` (and, ``link_down``, could not ask above)."""
    return Progress(receipt=receipt, stage=Stage.UNKNOWN, headline=NO_LINK if link_down else NOT_FOUND, known=False)


def render(p: Progress) -> str:
    """The Chinese text an applicant reads (a terminal's screen, a slip, the console)."""
    lines = [f"受理编号：{p.receipt}"]
    if p.known:
        lines.append(f"事项：{p.item_name}（{p.department}）")
    lines.append(f"进度：{p.headline}")
    if p.missing:
        lines.append("尚缺材料：" + "、".join(p.missing))
    if p.due is not None:
        lines.append(f"承诺办结日期：{p.due.year}年{p.due.month}月{p.due.day}日")
    if p.known and p.stage in (Stage.READY, Stage.DECIDED):
        lines.append(f"领取地点：{p.collect_at}")
    if p.steps:
        lines.append("办理过程（北京时间）：")
        lines += [f"  {s.at:%Y-%m-%d %H:%M}  {s.text}" for s in p.steps]
    if p.from_summary:
        lines.append("（以上为上级掌握的办理概况，详细过程请到受理窗口查询）")
    return "\n".join(lines)


def as_dict(p: Progress) -> dict[str, Any]:
    """The JSON form for machines: ISO 8601 times (Beijing offset), codes for the stage."""
    return {
        "receipt": p.receipt, "known": p.known, "stage": p.stage.value, "headline": p.headline,
        "item_name": p.item_name, "department": p.department, "handled_at": p.handled_at,
        "collect_at": p.collect_at, "missing": list(p.missing), "due": p.due.isoformat() if p.due else "",
        "steps": [{"at": s.at.isoformat(), "text": s.text} for s in p.steps], "from_summary": p.from_summary,
    }
