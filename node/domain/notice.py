"""The one-time notice (一次性告知书): what the applicant is handed when materials are missing.

The Administrative Licensing Law (art. 32) requires a window that finds an application
incomplete to tell the applicant, at once and in one go, everything that must be supplied:
so the notice lists every missing material together (core materials first), with the legal
basis of the item, and the window gives it once. Two moments give one:

``return``       the case is returned at intake (不予受理 / 退回): core materials are missing, or
                 the application does not meet the legal conditions;
``supplement``   an accepted case needs materials (补正); the clock stops until they arrive.
                 A second request on the same case is refused unless the applicant changed
                 what they apply for (``lifecycle``: ``changed_application``).

This module is pure: facts in (``NoticeFacts``), text out. ``render_text`` gives the plain
text the case keeps and the CLI prints; ``render_html`` a self-contained printable page (no
scripts, no external resources, every fact escaped) that the web console reuses. People read
it in Chinese and Beijing time.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from govnet.node.domain.calendar import CHINA_TZ
from govnet.node.domain.catalog import ServiceItem


class NoticeKind(StrEnum):
    RETURN = "return"
    SUPPLEMENT = "supplement"


TITLES = {NoticeKind.RETURN: "一次性告知书（退回）", NoticeKind.SUPPLEMENT: "一次性告知书（补正材料）"}
_LEADS = {
    NoticeKind.RETURN: "经审查，您的申请材料不齐全或不符合法定形式，本窗口不予受理并退回。"
                       "请按以下清单一次性补齐全部材料后重新提交：",
    NoticeKind.SUPPLEMENT: "经审查，您的申请需要补正材料。请按以下清单一次性补齐全部材料；"
                           "补正期间办理时限暂停计算，材料补齐之日起继续计算：",
}
_NOTHING_MISSING = "（无缺少的材料）"
_CHANGED = "申请人变更了申请内容，本次为变更后的一次性告知。"
_FOOTER = "以上为需要补正的全部内容。如有疑问，请凭受理编号向窗口咨询。"


@dataclass(frozen=True)
class Missing:
    name: str
    core: bool  # a core material (核心材料): the case cannot be accepted without it


@dataclass(frozen=True)
class NoticeFacts:
    """Everything one notice says; nothing else goes on it."""

    kind: NoticeKind
    receipt: str
    item_code: str
    item_name: str
    department: str
    legal_basis: str
    missing: tuple[Missing, ...]
    reason: str  # the window's words (why returned, what exactly to supply); may be empty
    issued_at: datetime  # aware
    node: str  # the window that issued it
    changed_application: bool = False  # a second supplement request after the applicant changed the application


def beijing_time(at: datetime) -> str:
    """``2026年12月03日 16时30分`` in Beijing time."""
    local = at.astimezone(CHINA_TZ)
    return f"{local.year}年{local.month:02d}月{local.day:02d}日 {local.hour:02d}时{local.minute:02d}分"


def _lines(facts: NoticeFacts) -> list[tuple[str, str]]:
    """The header fields, as (label, value)."""
    return [
        ("受理编号", facts.receipt),
        ("办理事项", f"{facts.item_name}（{facts.item_code}）"),
        ("办理部门", facts.department),
        ("法律依据", facts.legal_basis),
    ]


def _entry(m: Missing) -> str:
    return f"{m.name}（{'核心材料' if m.core else '其他材料'}）"


def _ordered(facts: NoticeFacts) -> list[Missing]:
    """Core materials first, each group in the catalog's order (as given)."""
    return [m for m in facts.missing if m.core] + [m for m in facts.missing if not m.core]


def render_text(facts: NoticeFacts) -> str:
    """The notice as plain text (the case keeps it; ``case show`` and ``case notice`` print it)."""
    out = [TITLES[facts.kind], ""]
    out += [f"{label}：{value}" for label, value in _lines(facts)]
    out += ["", _LEADS[facts.kind]]
    if facts.changed_application:
        out.append(_CHANGED)
    missing = _ordered(facts)
    out += [f"  {i}. {_entry(m)}" for i, m in enumerate(missing, 1)] or [f"  {_NOTHING_MISSING}"]
    if facts.reason:
        out += ["", f"说明：{facts.reason}"]
    out += ["", _FOOTER, f"告知时间：{beijing_time(facts.issued_at)}（北京时间）", f"告知窗口：{facts.node}"]
    return "\n".join(out)


_STYLE = """
body { font-family: "SimSun", "Songti SC", "Noto Serif CJK SC", serif; margin: 2em auto; max-width: 42em;
       line-height: 1.7; color: #000; }
h1 { text-align: center; font-size: 1.6em; letter-spacing: 0.1em; }
table.facts { border-collapse: collapse; width: 100%; }
table.facts th { text-align: left; white-space: nowrap; padding-right: 1em; vertical-align: top; }
ol li .kind { color: #444; }
.reason, .changed { margin-top: 1em; }
footer { margin-top: 2em; }
.sign { margin-top: 3em; text-align: right; }
@media print { body { margin: 0; max-width: none; } }
"""


def render_html(facts: NoticeFacts) -> str:
    """The notice as one self-contained printable HTML page: inline style, no scripts, every fact escaped."""
    e = html.escape
    rows = "\n".join(f"<tr><th>{e(label)}</th><td>{e(value)}</td></tr>" for label, value in _lines(facts))
    missing = _ordered(facts)
    items = "\n".join(
        f"<li>{e(m.name)} <span class=\"kind\">（{'核心材料' if m.core else '其他材料'}）</span></li>" for m in missing
    ) or f"<li>{e(_NOTHING_MISSING)}</li>"
    changed = f'<p class="changed">{e(_CHANGED)}</p>\n' if facts.changed_application else ""
    reason = f'<p class="reason">说明：{e(facts.reason)}</p>\n' if facts.reason else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{e(TITLES[facts.kind])} {e(facts.receipt)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{e(TITLES[facts.kind])}</h1>\n<table class=\"facts\">\n{rows}\n</table>\n"
        f"<p>{e(_LEADS[facts.kind])}</p>\n{changed}<ol>\n{items}\n</ol>\n{reason}"
        f"<footer><p>{e(_FOOTER)}</p>\n"
        f"<p>告知时间：{e(beijing_time(facts.issued_at))}（北京时间）</p>\n<p>告知窗口：{e(facts.node)}</p>\n"
        "<p class=\"sign\">（窗口盖章）</p></footer>\n</body>\n</html>\n"
    )


def facts_for(kind: NoticeKind, *, receipt: str, item: ServiceItem, missing: tuple[str, ...], reason: str,
              issued_at: datetime, node: str, changed_application: bool = False) -> NoticeFacts:
    """The notice's facts from the case's item (its release the case was accepted under) and the
    names of the missing materials (each marked core or not as the item lists it)."""
    core = {m.name for m in item.materials if m.core}
    listed = {m.name: i for i, m in enumerate(item.materials)}
    ordered = sorted(dict.fromkeys(missing), key=lambda name: listed.get(name, len(listed)))
    return NoticeFacts(kind=kind, receipt=receipt, item_code=item.code, item_name=item.name,
                       department=item.department, legal_basis=item.legal_basis,
                       missing=tuple(Missing(name, name in core) for name in ordered), reason=reason.strip(),
                       issued_at=issued_at, node=node, changed_application=changed_application)


# A step of the case's history as the notice reads it: (action, detail, reason, happened_at, node).
HistoryStep = tuple[str, Mapping[str, Any], str, datetime, str]


def latest_notice(receipt: str, item: ServiceItem, history: Sequence[HistoryStep]) -> NoticeFacts | None:
    """The facts of the case's latest one-time notice, read back from the event that gave it (so
    the printed page says what the window said then), or None if none was given."""
    for action, detail, reason, at, node in reversed(history):
        if action == NoticeKind.RETURN:
            missing = (*detail.get("missing_core", ()), *detail.get("missing_other", ()))
            return facts_for(NoticeKind.RETURN, receipt=receipt, item=item, missing=tuple(missing), reason=reason,
                             issued_at=at, node=node)
        if action == "request_supplement":
            return facts_for(NoticeKind.SUPPLEMENT, receipt=receipt, item=item,
                             missing=tuple(detail.get("requested", ())), reason=reason, issued_at=at, node=node,
                             changed_application=bool(detail.get("changed_application", False)))
    return None
