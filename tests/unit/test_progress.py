"""The applicant's view of a case (node.domain.progress), pure and table-driven: every status in
the applicant's words, missing materials listed, Beijing time, and never personal data, node
codes or internal steps."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from govnet.node.domain.lifecycle import Status
from govnet.node.domain.progress import (
    NO_LINK,
    CaseFacts,
    Happened,
    Stage,
    as_dict,
    not_known,
    place,
    progress,
    render,
)

VILLAGE, TOWN, COUNTY, CITY = "371102001201", "371102001", "371102", "371100"
SUBMITTED = datetime(2026, 3, 10, 1, 30, tzinfo=UTC)  # 09:30 in Beijing


def facts(status: str, **changes) -> CaseFacts:
    base = dict(receipt="371102001201-01-000001-5", item_name="音像制品零售单位许可证换证", department="文化和旅游局",
                status=status, origin=VILLAGE, owner=COUNTY, submitted_at=SUBMITTED, due=date(2026, 3, 17))
    return CaseFacts(**{**base, **changes})


@pytest.mark.parametrize(("status", "changes", "stage", "headline"), [
    ("received", {}, Stage.RECEIVED, "已收件，等待县级政务服务中心受理"),
    ("returned", {"missing_core": ("换证申请书", "营业执照")}, Stage.RETURNED,
     "材料不全，已退回，请补齐：换证申请书、营业执照，补齐后可重新申请"),
    ("accepted", {}, Stage.ACCEPTED, "已受理，在县级审查中"),
    ("under_review", {}, Stage.UNDER_REVIEW, "在县级审查中"),
    ("under_review", {"owner": CITY}, Stage.UNDER_REVIEW, "在市级审查中"),
    ("joint_review", {}, Stage.UNDER_REVIEW, "在县级审查中（多部门联合审查）"),
    ("under_review", {"suspended": True}, Stage.SUSPENDED, "在县级审查中（听证、检测等期间暂停计时）"),
    ("awaiting_supplement", {"requested_materials": ("营业执照",)}, Stage.WAITING_FOR_YOU, "等待您补充材料：营业执照"),
    ("approved", {"decision": "approved"}, Stage.DECIDED, "已作出准予决定，正在制作结果"),
    ("completed", {"decision": "approved"}, Stage.READY, "已办结（准予许可），可在村便民服务站领取"),
    ("completed", {"decision": "rejected"}, Stage.READY, "已办结（不予许可），可在村便民服务站领取"),
    ("completed", {"delivered_at": datetime(2026, 3, 12, 2, 0, tzinfo=UTC)}, Stage.DELIVERED, "已办结，结果已领取"),
    ("delivered", {}, Stage.DELIVERED, "已办结，结果已领取"),
    ("withdrawn", {}, Stage.WITHDRAWN, "已撤回申请"),
])
def test_every_status_in_the_applicants_words(status: str, changes: dict, stage: Stage, headline: str) -> None:
    p = progress(facts(status, **changes))
    assert (p.stage, p.headline) == (stage, headline)


def test_every_status_has_its_words() -> None:
    for status in Status:
        p = progress(facts(status.value))
        assert p.stage is not Stage.UNKNOWN and re.search(r"[\u4e00-\u9fff]", p.headline), status


def test_missing_materials_are_listed_and_the_due_date_shown_while_it_runs() -> None:
    waiting = progress(facts("awaiting_supplement", requested_materials=("营业执照", "原音像制品经营许可证")))
    assert waiting.missing == ("营业执照", "原音像制品经营许可证")
    assert "尚缺材料：营业执照、原音像制品经营许可证" in render(waiting)
    assert "承诺办结日期：2026年3月17日" in render(waiting)
    owed = progress(facts("accepted", pending_materials=("营业执照",)))  # owed under tolerance acceptance
    assert owed.missing == ("营业执照",)
    assert progress(facts("completed")).due is None


def test_the_history_shows_public_steps_in_beijing_time_and_places_not_codes() -> None:
    history = (
        Happened("submit", SUBMITTED, VILLAGE),
        Happened("hand_over", SUBMITTED, VILLAGE),
        Happened("take_over", SUBMITTED, COUNTY),
        Happened("accept", datetime(2026, 3, 10, 6, 0, tzinfo=UTC), COUNTY),
        Happened("warn", datetime(2026, 3, 11, 0, 0, tzinfo=UTC), COUNTY),
        Happened("approve", datetime(2026, 3, 11, 7, 0, tzinfo=UTC), COUNTY),
        Happened("complete", datetime(2026, 3, 11, 8, 0, tzinfo=UTC), COUNTY),
        Happened("deliver", datetime(2026, 3, 12, 2, 0, tzinfo=UTC), COUNTY),
        Happened("evaluate", datetime(2026, 3, 12, 2, 5, tzinfo=UTC), COUNTY),
        Happened("rectify_open", datetime(2026, 3, 12, 2, 5, tzinfo=UTC), COUNTY),
    )
    p = progress(facts("delivered", history=history))
    assert [(s.at.strftime("%m-%d %H:%M"), s.text) for s in p.steps] == [
        ("03-10 09:30", "村便民服务站 提交申请"),
        ("03-10 14:00", "县级政务服务中心 已受理"),
        ("03-11 15:00", "县级政务服务中心 作出决定：准予"),
        ("03-11 16:00", "县级政务服务中心 已办结，结果已制作"),
        ("03-12 10:00", "县级政务服务中心 结果已领取"),
    ]
    text = render(p).split("\n", 1)[1]  # below the receipt number (which begins with the origin's code)
    for internal in ("hand_over", "take_over", "warn", "evaluate", "rectify", VILLAGE, COUNTY, "371102"):
        assert internal not in text
    assert "办理过程（北京时间）" in text
    assert as_dict(p)["steps"][0] == {"at": "2026-03-10T09:30:00+08:00", "text": "村便民服务站 提交申请"}


def test_a_delivery_at_the_window_shows_before_the_owner_records_it() -> None:
    p = progress(facts("completed", history=(Happened("submit", SUBMITTED, VILLAGE),),
                       delivered_at=datetime(2026, 3, 12, 2, 0, tzinfo=UTC)))
    assert p.stage is Stage.DELIVERED
    assert p.steps[-1].text == "村便民服务站 结果已领取" and p.steps[-1].at.hour == 10


def test_places_are_named_by_the_caller_or_by_level() -> None:
    assert place(COUNTY) == "县级政务服务中心" and place(TOWN) == "乡镇便民服务中心" and place(CITY) == "市政务服务中心"
    assert place(COUNTY, {COUNTY: "兰山区政务服务中心"}) == "兰山区政务服务中心"
    p = progress(facts("completed"), {VILLAGE: "朱保村便民服务站"})
    assert p.headline.endswith("可在朱保村便民服务站领取") and "领取地点：朱保村便民服务站" in render(p)


def test_a_summary_gives_the_dates_it_carries_and_says_it_is_a_summary() -> None:
    p = progress(facts("completed", decision="approved", accepted_on=date(2026, 3, 10), decided_on=date(2026, 3, 11),
                       from_summary=True))
    assert [s.text for s in p.steps] == ["提交申请", "已受理", "作出决定：准予"]
    assert "以上为上级掌握的办理概况" in render(p)


def test_not_known_says_why() -> None:
    down = not_known("371102001201-01-000001-5", link_down=True)
    assert (down.known, down.stage, down.headline) == (False, Stage.UNKNOWN, NO_LINK)
    assert "本节点不掌握此件，上级链路中断" in render(down)
    assert "未找到此件" in render(not_known("371102001201-01-000001-5", link_down=False))
