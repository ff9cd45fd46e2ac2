"""The lifecycle's scenarios at the pure core: the rules a window clerk meets, case by case.

Each test takes a case from intake through ``act`` the way a clerk would, with the sample
catalog and the real working-day calendar, starting on Tuesday 2026-03-10 in Beijing; time
moves by passing a later ``now``. The gRPC layer's tests (tests/test_case_types.py) check
the contract around these rules: status codes, conversion, nothing written on a refusal.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from govnet.federation.tree import Level
from govnet.node.domain.calendar import CHINA_TZ, WorkCalendar
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.domain.lifecycle import (
    ActionRefused,
    ActParams,
    CaseState,
    Context,
    IllegalAction,
    Status,
    Transition,
    act,
    allowed_actions,
    intake,
    may_deliver,
)

CATALOG = load_catalog_file(sample_catalog_path())
CAL = WorkCalendar.load()
MORNING = datetime(2026, 3, 10, 9, 0, tzinfo=CHINA_TZ)
TODAY = date(2026, 3, 10)
COUNTY = "371102"
CLERK, CHIEF = "窗口-王芳", "首席代表-赵强"


def materials(code: str, core_only: bool = False) -> list[str]:
    item = CATALOG.get(code)
    assert item is not None
    return [m.name for m in item.materials if m.core or not core_only]


def new_case(code: str, given: list[str] | None = None) -> CaseState:
    item = CATALOG.get(code)
    assert item is not None
    return intake(receipt="371102-01-000001-3", item=item, node_id=COUNTY, node_level=Level.COUNTY, now=MORNING,
                  catalog_version=1, materials=materials(code) if given is None else given, agent="",
                  actor=CLERK).case


class Window:
    """A county window acting on one case: each step keeps the new case and its event."""

    def __init__(self, case: CaseState) -> None:
        self.case = case
        self.now = MORNING
        self.events = ["submit"]
        self.details: list[dict] = []

    def ctx(self) -> Context:
        item = CATALOG.get(self.case.item_code)
        assert item is not None
        return Context(item=item, node_id=COUNTY, node_level=Level.COUNTY, now=self.now, calendar=CAL)

    def do(self, action: str, actor: str = CLERK, **params) -> CaseState:
        done: Transition = act(self.case, action, ActParams(actor=actor, **params), self.ctx())
        self.case, self.last = done.case, done
        self.events.append(done.event.action)
        self.details.append(dict(done.event.detail))
        return done.case

    def refused(self, action: str, actor: str = CLERK, **params) -> str:
        before = self.case
        with pytest.raises(ActionRefused) as info:
            act(self.case, action, ActParams(actor=actor, **params), self.ctx())
        assert self.case == before
        return str(info.value)


# --- promised (承诺件) -------------------------------------------------------------


def test_promised_case_stops_the_clock_while_waiting_for_a_supplement() -> None:
    w = Window(new_case("HB-0005"))  # county, promised 10 / statutory 20 working days
    accepted = w.do("accept")
    due, statutory = CAL.add_working_days(TODAY, 10), CAL.add_working_days(TODAY, 20)
    assert (accepted.due, accepted.statutory_due) == (due, statutory)
    assert w.do("review").status is Status.UNDER_REVIEW
    waiting = w.do("request_supplement", materials=("验收监测报告",))
    assert waiting.status is Status.AWAITING_SUPPLEMENT and waiting.requested_materials == ("验收监测报告",)
    # While the clock is stopped nobody may decide the case.
    with pytest.raises(IllegalAction, match="awaiting_supplement"):
        act(w.case, "approve", ActParams(actor=CHIEF), w.ctx())

    w.now = MORNING + timedelta(days=8)  # Tuesday 10th -> Wednesday 18th
    paused = CAL.working_days_between(TODAY, TODAY + timedelta(days=8))
    assert paused >= 5  # sanity: the test really moves the deadline
    back = w.do("supplement", materials=("验收监测报告",))
    assert back.status is Status.UNDER_REVIEW and back.paused_days == paused
    assert (back.due, back.statutory_due) == (CAL.add_working_days(due, paused), CAL.add_working_days(statutory, paused))
    assert back.requested_materials == () and back.pending_materials == ()
    assert w.details[-1]["paused_working_days"] == paused

    for action, status in (("approve", Status.APPROVED), ("complete", Status.COMPLETED), ("deliver", Status.DELIVERED)):
        assert w.do(action, actor=CHIEF).status is status
    assert w.events == ["submit", "accept", "review", "request_supplement", "supplement", "approve", "complete",
                        "deliver"]


# --- joint (联办件) ----------------------------------------------------------------


def joint_window() -> tuple[Window, list[str]]:
    w = Window(new_case("ZJ-0001"))  # construction permit: housing leads, three departments review in parallel
    assert w.case.case_type == "joint"
    for action in ("accept", "review", "start_joint"):
        w.do(action)
    item = CATALOG.get("ZJ-0001")
    assert item is not None
    return w, list(item.joint_departments)


def test_joint_case_needs_every_department_to_agree() -> None:
    w, departments = joint_window()
    assert w.case.status is Status.JOINT_REVIEW
    assert [(d, o) for d, o, _ in w.case.joint] == [(d, "pending") for d in departments]
    for dept in departments[:-1]:
        w.do("opinion", actor=f"{dept}-审查员", department=dept, agree=True)
    msg = w.refused("approve", actor=CHIEF)
    assert departments[-1] in msg
    assert not any(dept in msg for dept in departments[:-1])

    last = w.do("opinion", actor="人社-审查员", department=departments[-1], agree=True)
    assert all(o == "agree" for _, o, _ in last.joint)
    assert w.do("approve", actor=CHIEF).status is Status.APPROVED
    assert w.events == ["submit", "accept", "review", "start_joint", "opinion", "opinion", "opinion", "approve"]
    assert [d["department"] for d in w.details if "department" in d] == departments


def test_joint_case_with_a_disagreement_is_rejected_not_approved() -> None:
    w, departments = joint_window()
    against = departments[1]
    for dept in departments:
        w.do("opinion", actor=f"{dept}-审查员", department=dept, agree=dept != against,
             reason="" if dept != against else "扬尘防治方案不符合要求")
    assert against in w.refused("approve", actor=CHIEF)
    rejected = w.do("reject", actor=CHIEF, reason="生态环境局不同意：扬尘防治方案不符合要求")
    assert (rejected.status, rejected.decision) == (Status.REJECTED, "rejected")
    assert {d: (o, r) for d, o, r in rejected.joint}[against] == ("disagree", "扬尘防治方案不符合要求")


# --- escalated (报批件) ------------------------------------------------------------


def test_a_node_with_authority_decides_instead_of_escalating() -> None:
    w = Window(new_case("HB-0005"))
    w.do("accept")
    w.do("review")
    msg = w.refused("escalate")
    assert "authority" in msg and "HB-0005" in msg


# --- returned (退办件) -------------------------------------------------------------


def test_returned_case_gets_one_notice_listing_every_missing_material() -> None:
    code = "SJ-0003"  # food business licence: 3 core, 2 non-core materials
    core = materials(code, core_only=True)
    missing_core = core[1:]
    missing_other = [m for m in materials(code) if m not in core]
    w = Window(new_case(code, core[:1]))
    assert list(w.case.missing_core) == missing_core

    msg = w.refused("accept")
    assert all(name in msg for name in missing_core)

    returned = w.do("return")
    assert (returned.status, returned.case_type) == (Status.RETURNED, "returned")
    for name in missing_core + missing_other:
        assert name in returned.notice, name
    assert returned.receipt in returned.notice
    assert allowed_actions(returned) == []
    assert w.details[-1]["missing_core"] == missing_core

    for action in ("accept", "return", "withdraw", "approve"):
        with pytest.raises(IllegalAction) as info:
            act(returned, action, ActParams(actor=CLERK), w.ctx())
        assert "returned" in str(info.value) and "none" in str(info.value)


# --- tolerance acceptance, withdrawal -------------------------------------------------


def test_tolerance_acceptance_lets_a_non_core_material_follow() -> None:
    code = "SJ-0003"
    owed = [m for m in materials(code) if m not in materials(code, core_only=True)]
    w = Window(new_case(code, materials(code, core_only=True)))
    assert w.case.missing_core == ()

    accepted = w.do("accept")
    assert accepted.status is Status.ACCEPTED and list(accepted.pending_materials) == owed
    assert accepted.supplement_due == CAL.add_working_days(TODAY, 10)
    assert accepted.due == CAL.add_working_days(TODAY, 5)
    assert w.details[-1]["tolerance"] == owed

    w.now = MORNING + timedelta(days=2)
    partly = w.do("supplement", materials=tuple(owed[:1]))
    assert list(partly.pending_materials) == owed[1:]
    assert (partly.supplement_due, partly.status) == (accepted.supplement_due, Status.ACCEPTED)

    cleared = w.do("supplement", materials=tuple(owed[1:]))
    assert cleared.pending_materials == () and cleared.supplement_due is None
    assert set(cleared.materials) == set(materials(code))
    assert cleared.due == accepted.due  # supplying an owed material does not stop the clock


def test_tolerance_approval_proceeds_while_the_material_is_owed() -> None:
    code = "SJ-0001"  # company registration: immediate, tolerance
    owed = tuple(m for m in materials(code) if m not in materials(code, core_only=True))
    w = Window(new_case(code, materials(code, core_only=True)))
    w.do("accept")
    approved = w.do("approve", actor=CHIEF)
    assert approved.status is Status.APPROVED and approved.pending_materials == owed
    later = w.do("supplement", materials=owed)
    assert (later.status, later.pending_materials) == (Status.APPROVED, ())


@pytest.mark.parametrize("steps", [[], ["accept"], ["accept", "review"]], ids=["received", "accepted", "under_review"])
def test_applicant_may_withdraw_an_open_case(steps: list[str]) -> None:
    w = Window(new_case("HB-0005"))
    for step in steps:
        w.do(step)
    withdrawn = w.do("withdraw", reason="申请人撤回")
    assert withdrawn.status is Status.WITHDRAWN and allowed_actions(withdrawn) == []
    assert (w.last.event.action, w.last.event.reason) == ("withdraw", "申请人撤回")
    with pytest.raises(IllegalAction, match="withdrawn"):
        act(withdrawn, "accept", ActParams(actor=CLERK), w.ctx())


def test_only_a_completed_case_may_be_delivered_and_the_delivery_names_the_window() -> None:
    w = Window(new_case("SJ-0001"))
    w.do("accept")
    assert may_deliver(w.case) == "case 371102-01-000001-3 is accepted: only a completed case (its result issued) can be delivered"
    w.do("approve", actor=CHIEF)
    assert may_deliver(w.case) is not None  # approved: the licence is not issued yet
    w.do("complete")
    assert may_deliver(w.case) is None
    w.do("deliver", at="371102001201")
    assert (w.case.status, w.details[-1]) == (Status.DELIVERED, {"at": "371102001201"})
    assert may_deliver(w.case) is not None
