"""The one-time notice (一次性告知), at the pure core: one supplement request per case (a changed
application excepted), and the notice's text and printable page (node.domain.notice)."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime

import pytest

from govnet.federation.tree import Level
from govnet.node.domain.calendar import CHINA_TZ, WorkCalendar
from govnet.node.domain.lifecycle import (
    ActionRefused,
    ActParams,
    CaseState,
    Context,
    InvalidParams,
    Status,
    Transition,
    act,
    intake,
)
from govnet.node.domain.notice import (
    Missing,
    NoticeFacts,
    NoticeKind,
    beijing_time,
    latest_notice,
    render_html,
    render_text,
)

from support.helpers import all_materials, item

CAL = WorkCalendar.load()
MORNING = datetime(2026, 3, 10, 9, 30, tzinfo=CHINA_TZ)  # a Tuesday
CLERK = "窗口-王芳"
PAST: tuple[tuple[str, datetime], ...] = ()


def ctx(code: str, at: datetime = MORNING, past: tuple[tuple[str, datetime], ...] = PAST) -> Context:
    return Context(item=item(code), node_id="371102", node_level=Level.COUNTY, now=at, calendar=CAL, past=past)


def received(code: str, materials: list[str]) -> CaseState:
    return intake(receipt="371102-01-000001-3", item=item(code), node_id="371102", node_level=Level.COUNTY,
                  now=MORNING, catalog_version=1, materials=materials, agent="", actor=CLERK).case


def do(case: CaseState, action: str, past: tuple[tuple[str, datetime], ...] = PAST, **params: object) -> Transition:
    return act(case, action, ActParams(actor=CLERK, **params), ctx(case.item_code, past=past))  # type: ignore[arg-type]


def notice_of(steps: list[Transition]) -> str:
    """The latest notice among ``steps``, read back from their events as a node reads its history."""
    history = [(e.action, e.detail, e.reason, MORNING, "371102") for t in steps for e in t.events]
    facts = latest_notice("371102-01-000001-3", item("HB-0005"), history)
    assert facts is not None
    return render_text(facts)


def under_review(code: str) -> CaseState:
    return do(do(received(code, all_materials(code)), "accept").case, "review").case


def test_a_returned_case_gets_its_notice_in_chinese_with_every_missing_material_and_the_legal_basis() -> None:
    # HB-0002: two core materials and one other; the applicant brought only the other one.
    case = do(received("HB-0002", ["建设项目立项文件"]), "return", reason="请携带原件").case
    text = case.notice
    assert case.status is Status.RETURNED
    assert text.startswith("一次性告知书（退回）")
    assert "受理编号：371102-01-000001-3" in text
    assert "办理事项：建设项目环境影响报告表审批（HB-0002）" in text
    assert "法律依据：《中华人民共和国环境影响评价法》第二十二条；《建设项目环境保护管理条例》" in text
    assert "  1. 建设项目环境影响报告表审批申请表（核心材料）\n  2. 环境影响报告表（核心材料）" in text
    assert "说明：请携带原件" in text
    assert "告知时间：2026年03月10日 09时30分（北京时间）" in text
    assert not re.search(r"[A-Za-z]{4,}", text.replace("HB-0002", "")), text  # no English words for the applicant


def test_every_missing_material_is_listed_at_once_core_first() -> None:
    case = do(received("HB-0002", []), "return").case
    lines = [line.strip() for line in case.notice.splitlines() if re.match(r"\s+\d+\. ", line)]
    assert lines == ["1. 建设项目环境影响报告表审批申请表（核心材料）", "2. 环境影响报告表（核心材料）",
                     "3. 建设项目立项文件（其他材料）"]


def test_one_supplement_request_per_case() -> None:
    case = under_review("HB-0005")
    first = do(case, "request_supplement", materials=["验收监测报告", "竣工环境保护验收申请"], reason="报告缺少签章页")
    assert first.case.status is Status.AWAITING_SUPPLEMENT
    assert first.event.detail == {"requested": ["验收监测报告", "竣工环境保护验收申请"]}
    text = notice_of([first])
    assert text.startswith("一次性告知书（补正材料）")
    assert "  1. 竣工环境保护验收申请（核心材料）\n  2. 验收监测报告（核心材料）" in text
    assert "法律依据：《建设项目环境保护管理条例》第十七条" in text and "说明：报告缺少签章页" in text
    supplied = do(first.case, "supplement", materials=["验收监测报告", "竣工环境保护验收申请"]).case
    assert supplied.status is Status.UNDER_REVIEW
    past = (("submit", MORNING), ("accept", MORNING), ("review", MORNING), ("request_supplement", MORNING),
            ("supplement", MORNING))
    with pytest.raises(ActionRefused, match=r"one-time notice \(一次性告知\) was already given on 2026-03-10"):
        do(supplied, "request_supplement", past, materials=["环境影响评价批复文件"])
    # A changed application may be told again, once it says what changed.
    with pytest.raises(InvalidParams, match="what the applicant changed"):
        do(supplied, "request_supplement", past, materials=["环境影响评价批复文件"], changed_application=True)
    again = do(supplied, "request_supplement", past, materials=["环境影响评价批复文件"], changed_application=True,
               reason="申请人变更了建设规模")
    assert again.case.status is Status.AWAITING_SUPPLEMENT
    assert again.event.detail["changed_application"] is True
    text = notice_of([first, again])  # the latest notice is the one given for the changed application
    assert "申请人变更了申请内容" in text and "说明：申请人变更了建设规模" in text and "1. 环境影响评价批复文件" in text


def test_a_refused_second_request_leaves_the_case_as_it_was() -> None:
    case = under_review("HB-0005")
    before = dataclasses.replace(case)
    with pytest.raises(ActionRefused):
        do(case, "request_supplement", (("request_supplement", MORNING),), materials=["验收监测报告"])
    assert case == before


FACTS = NoticeFacts(kind=NoticeKind.SUPPLEMENT, receipt="371102-01-000001-3", item_code="HB-0002",
                    item_name="建设项目<环评>报告表", department="生态环境局", legal_basis="《条例》第1条 & 第2条",
                    missing=(Missing("立项文件", False), Missing("申请表\"原件\"", True)),
                    reason="<script>alert(1)</script>", issued_at=datetime(2026, 3, 10, 1, 30, tzinfo=CHINA_TZ),
                    node="371102")


def test_the_printable_page_is_self_contained_and_escapes_every_fact() -> None:
    page = render_html(FACTS)
    assert page.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in page and '<meta charset="utf-8">' in page
    assert "<script" not in page and "src=" not in page and "href=" not in page and "http" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "建设项目&lt;环评&gt;报告表（HB-0002）" in page and "《条例》第1条 &amp; 第2条" in page
    # Core materials first, in the page as in the text.
    assert page.index("申请表&quot;原件&quot;") < page.index("立项文件")
    assert "2026年03月10日 01时30分" in page


def test_beijing_time_from_any_zone() -> None:
    assert beijing_time(datetime.fromisoformat("2026-12-31T17:05:00+00:00")) == "2027年01月01日 01时05分"


def test_the_text_lists_what_the_page_lists() -> None:
    text = render_text(FACTS)
    assert "  1. 申请表\"原件\"（核心材料）\n  2. 立项文件（其他材料）" in text
    assert "说明：<script>alert(1)</script>" in text  # plain text is not markup: kept as written

