"""The six case types end to end, through a real node's gRPC API.

Every test starts real in-process nodes (loopback, port 0, a real SQLite file) with the
sample catalog and drives cases the way a window clerk would, through the typed client.
Time moves only through the shared ManualClock, which starts on Tuesday 2026-03-10 09:00
in Beijing; expected deadlines are computed with the real working-day calendar.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta

import grpc
import pytest

from govnet.node.domain.calendar import WorkCalendar
from govnet.node.domain.catalog import Catalog
from govnet.node.domain.receipt import Receipt
from govnet.node.rpc.client import ClientError

from support.helpers import (
    CHIEF,
    CLERK,
    ID_NUMBER,
    NAME,
    OTHER_ID,
    PHONE,
    SAMPLE,
    all_materials,
    core_materials,
    item,
    store_snapshot,
    submit,
)

CAL = WorkCalendar.load()
TODAY = date(2026, 3, 10)  # the conftest clock's first day

COUNTY, TOWNSHIP, VILLAGE = "371102", "371102001", "371102001201"
AGENT = "村代办员 李四"


def refused(code: grpc.StatusCode, call, *args, **kwargs) -> str:
    """Run ``call``; it must fail with ``code``. Returns the node's message."""
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    assert info.value.code == code, f"expected {code.name}, got {info.value.code.name}: {info.value}"
    return str(info.value)


def history(case) -> list[tuple[str, str, str]]:
    return [(e.action, e.to_status, e.actor) for e in case.events]


@pytest.fixture
def county(make_node):
    return make_node(COUNTY, "county")


# --- 1. immediate (即办件) ------------------------------------------------------------


def test_immediate_case_is_decided_at_the_window_the_same_day(county) -> None:
    node, client = county
    done = submit(client, "HB-0003")
    c = done.case
    assert (c.case_type, c.status, c.due) == ("immediate", "received", "")
    assert not done.replayed

    accepted = client.act(c.receipt, "accept", actor=CLERK)
    assert accepted.status == "accepted"
    assert accepted.due == TODAY.isoformat()  # promised 0 days: due on the day of acceptance
    assert "approve" in accepted.allowed_actions

    approved = client.act(c.receipt, "approve", actor=CHIEF)  # no review step for an immediate item
    assert (approved.status, approved.decision) == ("approved", "approved")
    completed = client.act(c.receipt, "complete", actor=CHIEF)
    assert completed.status == "completed"
    delivered = client.act(c.receipt, "deliver", actor=CLERK)
    assert delivered.status == "delivered"
    assert list(delivered.allowed_actions) == []

    got = client.get(c.receipt)
    assert history(got) == [
        ("submit", "received", CLERK),
        ("accept", "accepted", CLERK),
        ("approve", "approved", CHIEF),
        ("complete", "completed", CHIEF),
        ("deliver", "delivered", CLERK),
    ]
    assert [e.seq for e in got.events] == [1, 2, 3, 4, 5]
    assert [e.from_status for e in got.events] == ["", "received", "accepted", "approved", "completed"]
    assert all(e.node == COUNTY for e in got.events)


# --- 2. promised (承诺件) -------------------------------------------------------------


def test_promised_case_stops_the_clock_while_waiting_for_a_supplement(county, clock) -> None:
    node, client = county
    code = "HB-0005"  # county, promised 10 / statutory 20 working days
    c = submit(client, code).case
    assert c.case_type == "promised"

    accepted = client.act(c.receipt, "accept", actor=CLERK)
    due = CAL.add_working_days(TODAY, 10)
    statutory = CAL.add_working_days(TODAY, 20)
    assert (accepted.due, accepted.statutory_due) == (due.isoformat(), statutory.isoformat())

    assert client.act(c.receipt, "review", actor=CLERK).status == "under_review"
    waiting = client.act(c.receipt, "request_supplement", actor=CLERK, materials=["验收监测报告"])
    assert waiting.status == "awaiting_supplement"
    assert list(waiting.pending_materials) == ["验收监测报告"]
    # While the clock is stopped nobody may decide the case.
    msg = refused(grpc.StatusCode.FAILED_PRECONDITION, client.act, c.receipt, "approve", actor=CHIEF)
    assert "awaiting_supplement" in msg

    clock.advance(timedelta(days=8))  # Tuesday 10th → Wednesday 18th
    paused = CAL.working_days_between(TODAY, TODAY + timedelta(days=8))
    assert paused >= 5  # sanity: the test really moves the deadline

    back = client.act(c.receipt, "supplement", actor=CLERK, materials=["验收监测报告"])
    assert back.status == "under_review"
    assert back.paused_days == paused
    assert back.due == CAL.add_working_days(due, paused).isoformat()
    assert back.statutory_due == CAL.add_working_days(statutory, paused).isoformat()
    assert list(back.pending_materials) == []

    assert client.act(c.receipt, "approve", actor=CHIEF).status == "approved"
    assert client.act(c.receipt, "complete", actor=CHIEF).status == "completed"
    done = client.act(c.receipt, "deliver", actor=CLERK)
    assert done.status == "delivered"
    assert [e.action for e in done.events] == [
        "submit", "accept", "review", "request_supplement", "supplement", "approve", "complete", "deliver",
    ]
    supplement_event = done.events[4]
    assert json.loads(supplement_event.detail_json)["paused_working_days"] == paused


def test_promised_case_cannot_be_approved_without_review(county) -> None:
    node, client = county
    c = submit(client, "HB-0005").case
    client.act(c.receipt, "accept", actor=CLERK)
    before = store_snapshot(node.data_dir)

    msg = refused(grpc.StatusCode.FAILED_PRECONDITION, client.act, c.receipt, "approve", actor=CHIEF)
    # The clerk needs to know where the case is and what to do instead.
    assert "accepted" in msg, msg
    assert "review" in msg, msg
    assert store_snapshot(node.data_dir) == before
    assert client.get(c.receipt).status == "accepted"


# --- 3. joint (联办件) ----------------------------------------------------------------


def _joint_case(client):
    code = "ZJ-0001"  # construction permit: housing leads, three departments review in parallel
    c = submit(client, code).case
    assert c.case_type == "joint"
    client.act(c.receipt, "accept", actor=CLERK)
    client.act(c.receipt, "review", actor=CLERK)
    started = client.act(c.receipt, "start_joint", actor=CLERK)
    return c.receipt, started


def test_joint_case_needs_every_department_to_agree(county) -> None:
    node, client = county
    receipt, started = _joint_case(client)
    departments = list(item("ZJ-0001").joint_departments)
    assert started.status == "joint_review"
    assert [(j.department, j.opinion) for j in started.joint] == [(d, "pending") for d in departments]

    for dept in departments[:-1]:
        client.act(receipt, "opinion", actor=f"{dept}-审查员", department=dept, agree=True)
    msg = refused(grpc.StatusCode.FAILED_PRECONDITION, client.act, receipt, "approve", actor=CHIEF)
    assert departments[-1] in msg
    for dept in departments[:-1]:
        assert dept not in msg

    last = client.act(receipt, "opinion", actor="人社-审查员", department=departments[-1], agree=True)
    assert all(j.opinion == "agree" for j in last.joint)
    approved = client.act(receipt, "approve", actor=CHIEF)
    assert approved.status == "approved"
    assert [e.action for e in approved.events] == [
        "submit", "accept", "review", "start_joint", "opinion", "opinion", "opinion", "approve",
    ]
    assert [json.loads(e.detail_json)["department"] for e in approved.events if e.action == "opinion"] == departments


def test_joint_case_with_a_disagreement_is_rejected_not_approved(county) -> None:
    node, client = county
    receipt, _ = _joint_case(client)
    departments = list(item("ZJ-0001").joint_departments)
    against = departments[1]
    for dept in departments:
        agree = dept != against
        client.act(receipt, "opinion", actor=f"{dept}-审查员", department=dept, agree=agree,
                    reason="" if agree else "扬尘防治方案不符合要求")

    msg = refused(grpc.StatusCode.FAILED_PRECONDITION, client.act, receipt, "approve", actor=CHIEF)
    assert against in msg
    rejected = client.act(receipt, "reject", actor=CHIEF, reason="生态环境局不同意：扬尘防治方案不符合要求")
    assert (rejected.status, rejected.decision) == ("rejected", "rejected")
    assert rejected.decision_reason == "生态环境局不同意：扬尘防治方案不符合要求"
    assert rejected.events[-1].reason == rejected.decision_reason
    opinions = {j.department: (j.opinion, j.reason) for j in rejected.joint}
    assert opinions[against] == ("disagree", "扬尘防治方案不符合要求")


# --- 4. escalated (报批件) ------------------------------------------------------------


def test_escalated_case_is_reviewed_at_the_township_and_sent_up(make_node) -> None:
    node, client = make_node(TOWNSHIP, "township")
    code = "HB-0005"  # decided at county level
    assert item(code).authority_level == "county"
    c = submit(client, code).case
    assert c.case_type == "escalated"
    assert client.act(c.receipt, "accept", actor=CLERK).status == "accepted"
    reviewed = client.act(c.receipt, "review", actor=CLERK)
    assert reviewed.status == "under_review"
    # The first review at the lower level has its own limit (行政许可法 art. 43: 20 working days).
    assert json.loads(reviewed.events[-1].detail_json)["step_due"] == CAL.add_working_days(TODAY, 20).isoformat()

    msg = refused(grpc.StatusCode.FAILED_PRECONDITION, client.act, c.receipt, "approve", actor=CHIEF)
    assert "authority" in msg and "county" in msg

    escalated = client.act(c.receipt, "escalate", actor=CLERK)
    assert escalated.status == "escalated"
    assert escalated.case_type == "escalated"
    # Escalating hands the case over to the county in the same step: one owner at a time,
    # even while the case travels (the county is not running here, so it waits in the outbox).
    assert escalated.owner == "371102"
    assert [e.action for e in escalated.events[-2:]] == ["escalate", "hand_over"]
    assert json.loads(escalated.events[-2].detail_json) == {"to_level": "county"}
    assert json.loads(escalated.events[-1].detail_json) == {"to": "371102", "epoch": 2}

    msg = refused(grpc.StatusCode.FAILED_PRECONDITION, client.act, c.receipt, "approve", actor=CHIEF)
    assert "371102" in msg
    assert client.get(c.receipt).status == "escalated"


def test_a_node_with_authority_decides_instead_of_escalating(county) -> None:
    node, client = county
    c = submit(client, "HB-0005").case
    client.act(c.receipt, "accept", actor=CLERK)
    client.act(c.receipt, "review", actor=CLERK)
    msg = refused(grpc.StatusCode.FAILED_PRECONDITION, client.act, c.receipt, "escalate", actor=CLERK)
    assert "authority" in msg and "HB-0005" in msg


# --- 5. returned (退办件) -------------------------------------------------------------


def test_returned_case_gets_one_notice_listing_every_missing_material(county) -> None:
    node, client = county
    code = "SJ-0003"  # food business licence: 3 core, 2 non-core materials
    given = core_materials(code)[:1]
    missing_core = core_materials(code)[1:]
    missing_other = list(item(code).noncore_materials)
    c = submit(client, code, given).case
    assert list(c.missing_core) == missing_core

    msg = refused(grpc.StatusCode.FAILED_PRECONDITION, client.act, c.receipt, "accept", actor=CLERK)
    for name in missing_core:
        assert name in msg

    returned = client.act(c.receipt, "return", actor=CLERK)
    assert returned.status == "returned"
    assert returned.case_type == "returned"
    for name in missing_core + missing_other:
        assert name in returned.notice, name
    assert c.receipt in returned.notice
    assert list(returned.allowed_actions) == []
    event = returned.events[-1]
    assert event.action == "return"
    assert json.loads(event.detail_json)["missing_core"] == missing_core

    for action in ("accept", "return", "withdraw", "approve"):
        msg = refused(grpc.StatusCode.FAILED_PRECONDITION, client.act, c.receipt, action, actor=CLERK)
        assert "returned" in msg and "none" in msg, msg


# --- 6. proxy (代办件) ----------------------------------------------------------------


def test_proxy_case_carried_by_a_village_agent(make_node) -> None:
    node, client = make_node(VILLAGE, "village")
    code = "WJ-0004"  # birth registration, decided at the village point
    assert item(code).proxy and item(code).authority_level == "village"
    done = submit(client, code, agent=AGENT, actor="")
    c = done.case
    assert (c.case_type, c.agent, c.origin, c.owner) == ("proxy", AGENT, VILLAGE, VILLAGE)

    client.act(c.receipt, "accept", actor=AGENT)
    client.act(c.receipt, "approve", actor="村委会主任")
    client.act(c.receipt, "complete", actor="村委会主任")
    final = client.act(c.receipt, "deliver", actor=AGENT)
    assert final.status == "delivered"
    assert final.agent == AGENT
    first = final.events[0]
    assert (first.action, first.actor) == ("submit", AGENT)
    assert json.loads(first.detail_json)["agent"] == AGENT
    assert [e.action for e in final.events] == ["submit", "accept", "approve", "complete", "deliver"]


@pytest.mark.parametrize(
    ("node_id", "level", "code"),
    [(VILLAGE, "village", "GA-0002"), (COUNTY, "county", "MZ-0004")],
    ids=["village-id-card", "county-marriage"],
)
def test_agent_refused_for_an_item_that_must_be_handled_in_person(make_node, node_id, level, code) -> None:
    node, client = make_node(node_id, level)
    assert not item(code).proxy
    before = store_snapshot(node.data_dir)
    msg = refused(grpc.StatusCode.FAILED_PRECONDITION, submit, client, code, agent=AGENT)
    assert code in msg and "agent" in msg
    assert store_snapshot(node.data_dir) == before


# --- tolerance acceptance, extension, withdrawal --------------------------------------


def test_tolerance_acceptance_lets_a_non_core_material_follow(county, clock) -> None:
    node, client = county
    code = "SJ-0003"
    owed = list(item(code).noncore_materials)
    c = submit(client, code, core_materials(code)).case
    assert list(c.missing_core) == []

    accepted = client.act(c.receipt, "accept", actor=CLERK)
    assert accepted.status == "accepted"
    assert list(accepted.pending_materials) == owed
    assert accepted.supplement_due == CAL.add_working_days(TODAY, 10).isoformat()
    assert accepted.due == CAL.add_working_days(TODAY, 5).isoformat()
    assert json.loads(accepted.events[-1].detail_json)["tolerance"] == owed

    clock.advance(timedelta(days=2))
    partly = client.act(c.receipt, "supplement", actor=CLERK, materials=owed[:1])
    assert list(partly.pending_materials) == owed[1:]
    assert partly.supplement_due == accepted.supplement_due
    assert partly.status == "accepted"

    cleared = client.act(c.receipt, "supplement", actor=CLERK, materials=owed[1:])
    assert list(cleared.pending_materials) == []
    assert cleared.supplement_due == ""
    assert set(cleared.materials) == set(all_materials(code))
    assert cleared.due == accepted.due  # supplying an owed material does not stop the clock


def test_tolerance_approval_proceeds_while_the_material_is_owed(county) -> None:
    node, client = county
    code = "SJ-0001"  # company registration: immediate, tolerance
    c = submit(client, code, core_materials(code)).case
    client.act(c.receipt, "accept", actor=CLERK)
    approved = client.act(c.receipt, "approve", actor=CHIEF)
    assert approved.status == "approved"
    assert list(approved.pending_materials) == list(item(code).noncore_materials)
    later = client.act(c.receipt, "supplement", actor=CLERK, materials=list(item(code).noncore_materials))
    assert (later.status, list(later.pending_materials)) == ("approved", [])


@pytest.mark.parametrize(("code", "days"), [("HB-0005", 10), ("ZJ-0001", 15)], ids=["promised", "joint"])
def test_extension_needs_an_approver_and_happens_once(county, code, days) -> None:
    node, client = county
    c = submit(client, code).case
    accepted = client.act(c.receipt, "accept", actor=CLERK)
    client.act(c.receipt, "review", actor=CLERK)
    if code == "ZJ-0001":
        client.act(c.receipt, "start_joint", actor=CLERK)

    before = store_snapshot(node.data_dir)
    msg = refused(grpc.StatusCode.INVALID_ARGUMENT, client.act, c.receipt, "extend", actor=CHIEF,
                  reason="需现场核查")
    assert "approver" in msg
    assert store_snapshot(node.data_dir) == before

    extended = client.act(c.receipt, "extend", actor=CHIEF, reason="需现场核查", approver="局长 孙伟")
    assert extended.extended
    old_due, old_statutory = date.fromisoformat(accepted.due), date.fromisoformat(accepted.statutory_due)
    assert extended.due == CAL.add_working_days(old_due, days).isoformat()
    assert extended.statutory_due == CAL.add_working_days(old_statutory, days).isoformat()
    assert json.loads(extended.events[-1].detail_json) == {"days": days, "approver": "局长 孙伟"}

    before = store_snapshot(node.data_dir)
    msg = refused(grpc.StatusCode.FAILED_PRECONDITION, client.act, c.receipt, "extend", actor=CHIEF,
                  reason="再次延期", approver="局长 孙伟")
    assert "once" in msg
    assert store_snapshot(node.data_dir) == before
    assert client.get(c.receipt).due == extended.due


@pytest.mark.parametrize("steps", [[], ["accept"], ["accept", "review"]], ids=["received", "accepted", "under_review"])
def test_applicant_may_withdraw_an_open_case(county, steps) -> None:
    node, client = county
    c = submit(client, "HB-0005").case
    for step in steps:
        client.act(c.receipt, step, actor=CLERK)
    withdrawn = client.act(c.receipt, "withdraw", actor=CLERK, reason="申请人撤回")
    assert withdrawn.status == "withdrawn"
    assert list(withdrawn.allowed_actions) == []
    assert (withdrawn.events[-1].action, withdrawn.events[-1].reason) == ("withdraw", "申请人撤回")
    msg = refused(grpc.StatusCode.FAILED_PRECONDITION, client.act, c.receipt, "accept", actor=CLERK)
    assert "withdrawn" in msg


# --- tracking, listing ----------------------------------------------------------------


def test_track_shows_progress_without_personal_data(county) -> None:
    node, client = county
    c = submit(client, "HB-0005").case
    client.act(c.receipt, "accept", actor=CLERK)
    client.act(c.receipt, "review", actor=CLERK)

    t = client.track(c.receipt)
    assert (t.receipt, t.status, t.owner) == (c.receipt, "under_review", COUNTY)
    assert t.item_name == item("HB-0005").name
    assert t.due == CAL.add_working_days(TODAY, 10).isoformat()
    assert [p.action for p in t.progress] == ["submit", "accept", "review"]
    text, raw = str(t), t.SerializeToString()
    for secret in (NAME, ID_NUMBER, PHONE, CLERK):
        assert secret not in text, secret
        assert secret.encode() not in raw, secret


def _four_cases(client):
    """Two HB-0005 (one accepted), one SJ-0003 (accepted), one WL-0001 (received)."""
    hb1 = submit(client, "HB-0005").case.receipt
    hb2 = submit(client, "HB-0005", id_number=OTHER_ID).case.receipt
    sj = submit(client, "SJ-0003").case.receipt
    wl = submit(client, "WL-0001").case.receipt
    client.act(hb1, "accept", actor=CLERK)
    client.act(sj, "accept", actor=CLERK)
    return hb1, hb2, sj, wl


def test_list_filters(county) -> None:
    node, client = county
    hb1, hb2, sj, wl = _four_cases(client)

    def receipts(**kw) -> list[str]:
        return [c.receipt for c in client.list(**kw).cases]

    assert receipts() == [hb1, hb2, sj, wl]
    assert receipts(status="accepted") == [hb1, sj]
    assert receipts(status="received") == [hb2, wl]
    assert receipts(item_code="HB-0005") == [hb1, hb2]
    assert receipts(department="市场监督管理局") == [sj]
    assert receipts(status="accepted", item_code="HB-0005") == [hb1]

    sj_due = CAL.add_working_days(TODAY, 5)  # SJ-0003 promises 5 days, HB-0005 10
    hb_due = CAL.add_working_days(TODAY, 10)
    assert receipts(due_before=sj_due.isoformat()) == [sj]  # "on or before"
    assert receipts(due_before=(sj_due - timedelta(days=1)).isoformat()) == []
    assert receipts(due_before=hb_due.isoformat()) == [hb1, sj]  # received cases have no due date yet
    assert receipts(status="returned") == []


def test_list_pages_cover_every_case_once(county) -> None:
    node, client = county
    made = [submit(client, "HB-0003").case.receipt for _ in range(5)]
    seen: list[str] = []
    token, pages = "", 0
    while True:
        page = client.list(limit=2, page_token=token)
        pages += 1
        assert len(page.cases) <= 2
        seen += [c.receipt for c in page.cases]
        token = page.next_page_token
        if not token:
            break
        assert pages < 10, "pagination does not end"
    assert pages == 3
    assert seen == made
    assert len(set(seen)) == len(seen)


# --- idempotency, duplicates, catalog versions, receipts ------------------------------


def test_same_key_same_application_gives_one_case(county) -> None:
    node, client = county
    first = submit(client, "HB-0005", key="window-3/2026-03-10/0001")
    after_first = store_snapshot(node.data_dir)
    again = submit(client, "HB-0005", key="window-3/2026-03-10/0001")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.case.receipt == first.case.receipt
    assert again.case.status == first.case.status
    assert store_snapshot(node.data_dir) == after_first
    assert after_first["case_record"][0] == 1
    assert after_first["idempotency_key"][0] == 1
    assert len(client.list().cases) == 1


def test_same_key_different_application_is_refused(county) -> None:
    node, client = county
    first = submit(client, "HB-0005", key="k-0001")
    before = store_snapshot(node.data_dir)
    msg = refused(grpc.StatusCode.ALREADY_EXISTS, submit, client, "HB-0005", key="k-0001", phone="13900001111")
    assert "k-0001" in msg and first.case.receipt in msg
    assert store_snapshot(node.data_dir) == before


def test_likely_duplicate_within_the_window_only(county, clock) -> None:
    node, client = county
    first = submit(client, "HB-0005").case
    assert not first.possible_duplicate and first.duplicate_of == ""

    clock.advance(timedelta(days=3))
    second = submit(client, "HB-0005").case
    assert second.possible_duplicate
    assert second.duplicate_of == first.receipt
    other_person = submit(client, "HB-0005", id_number=OTHER_ID).case
    assert not other_person.possible_duplicate
    other_item = submit(client, "HB-0003").case
    assert not other_item.possible_duplicate

    clock.advance(timedelta(days=31))  # the default window is 30 days
    later = submit(client, "HB-0005").case
    assert not later.possible_duplicate
    assert later.duplicate_of == ""
    assert client.get(second.receipt).duplicate_of == first.receipt


def test_each_case_keeps_the_catalog_version_it_was_submitted_under(county) -> None:
    node, client = county
    old = submit(client, "HB-0005").case
    assert old.catalog_version == 1

    shorter = dataclasses.replace(item("HB-0005"), promised_days=3)
    items = tuple(shorter if i.code == "HB-0005" else i for i in SAMPLE.items)
    published = client.put_catalog(Catalog(items=items, issuer=SAMPLE.issuer))
    assert published.version == 2
    new = submit(client, "HB-0005").case
    assert new.catalog_version == 2
    assert client.get(old.receipt).catalog_version == 1

    # Each case is handled under the rules of its own version.
    old_acc = client.act(old.receipt, "accept", actor=CLERK)
    new_acc = client.act(new.receipt, "accept", actor=CLERK)
    assert old_acc.due == CAL.add_working_days(TODAY, 10).isoformat()
    assert new_acc.due == CAL.add_working_days(TODAY, 3).isoformat()
    assert json.loads(client.get(new.receipt).events[0].detail_json)["catalog_version"] == 2


def test_receipts_are_unique_and_self_checking(county) -> None:
    node, client = county
    receipts = [submit(client, code).case.receipt for code in ("HB-0003", "HB-0005", "SJ-0003", "ZJ-0001", "HB-0003")]
    assert len(set(receipts)) == len(receipts)
    parsed = [Receipt.parse(r) for r in receipts]
    assert [str(p) for p in parsed] == receipts
    assert {p.node_id for p in parsed} == {COUNTY}
    assert [p.seq for p in parsed] == [1, 2, 3, 4, 5]
    # The applicant can read the number back with spaces instead of hyphens.
    assert client.get(receipts[2].replace("-", " ")).receipt == receipts[2]
