"""The case API's contract, through a real node's gRPC API: the six case types end to end,
status codes of refusals (with nothing written), what a case converts to, tracking, listing,
idempotency and receipts.

The lifecycle's rules themselves (deadlines, supplements, joint opinions, one-time notices,
tolerance acceptance, withdrawal) are tested at the pure core: tests/unit/test_case_lifecycle.py
and, for every status and step, tests/unit/test_lifecycle_table.py.

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
from govnet.node.domain.people import Role
from govnet.node.domain.receipt import Receipt
from govnet.node.rpc.client import ClientError, GovnetClient

from support.accounts import staff
from support.helpers import (
    CHIEF,
    CLERK,
    ID_NUMBER,
    NAME,
    OTHER_ID,
    PHONE,
    SAMPLE,
    core_materials,
    item,
    store_snapshot,
    submit,
)

CAL = WorkCalendar.load()
TODAY = date(2026, 3, 10)  # the conftest clock's first day

COUNTY, TOWNSHIP, VILLAGE = "371102", "371102001", "371102001201"
AGENT = "lisi (李四)"  # a village agent's account


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
    node, _ = county
    # One review, one approval: the department's window clerk reviews, its chief representative approves.
    dept = item("HB-0003").department
    clerk = staff(node, "wangfang", Role.WINDOW_CLERK, [dept], name="王芳")
    chief = staff(node, "zhaoqiang", Role.CHIEF_REPRESENTATIVE, [dept], name="赵强")
    CLERK, CHIEF = "wangfang (王芳)", "zhaoqiang (赵强)"  # noqa: N806  (the events record the signed-in people)
    client = clerk
    done = submit(client, "HB-0003")
    c = done.case
    assert (c.case_type, c.status, c.due) == ("immediate", "received", "")
    assert not done.replayed

    accepted = client.act(c.receipt, "accept", actor=CLERK)
    assert accepted.status == "accepted"
    assert accepted.due == TODAY.isoformat()  # promised 0 days: due on the day of acceptance
    assert "approve" in accepted.allowed_actions

    approved = chief.act(c.receipt, "approve")  # no review step for an immediate item
    assert (approved.status, approved.decision) == ("approved", "approved")
    completed = chief.act(c.receipt, "complete")
    assert completed.status == "completed"
    delivered = client.act(c.receipt, "deliver", actor=CLERK)
    assert delivered.status == "delivered"
    assert list(delivered.allowed_actions) == []
    # A step the table does not allow from here is a failed precondition, told in one line.
    msg = refused(grpc.StatusCode.FAILED_PRECONDITION, client.act, c.receipt, "accept", actor=CLERK)
    assert "delivered" in msg and "none" in msg and "\n" not in msg

    got = client.get(c.receipt)
    assert got.received_by == CLERK  # 首问负责
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


# --- 5. returned (退办件) -------------------------------------------------------------


def test_returned_case_carries_its_one_time_notice(county) -> None:
    node, client = county
    code = "SJ-0003"  # food business licence: 3 core materials
    c = submit(client, code, core_materials(code)[:1]).case
    assert list(c.missing_core) == core_materials(code)[1:]
    returned = client.act(c.receipt, "return", actor=CLERK)
    assert (returned.status, returned.case_type) == ("returned", "returned")
    assert c.receipt in returned.notice and list(returned.allowed_actions) == []
    assert json.loads(returned.events[-1].detail_json)["missing_core"] == core_materials(code)[1:]


# --- 6. carried by a village agent (代办): a fact apart from the case type ---------------


def test_a_case_carried_by_a_village_agent_keeps_its_own_type(make_node) -> None:
    node, client = make_node(VILLAGE, "village")
    code = "WJ-0004"  # birth registration, decided at the village point
    assert item(code).proxy and item(code).authority_level == "village"
    client = staff(node, "lisi", Role.VILLAGE_AGENT, name="李四")  # the agent signs in; the case names them
    done = submit(client, code)
    c = done.case
    # How it is decided (the item's own type) and who carried it are two fields; "proxy" is never given.
    assert (c.case_type, c.carried, c.agent, c.origin, c.owner) == (item(code).item_type, True, AGENT, VILLAGE,
                                                                     VILLAGE)

    window = GovnetClient(node.address)  # the village point's staff (the tester) decide it
    window.act(c.receipt, "accept")
    window.act(c.receipt, "approve")
    window.act(c.receipt, "complete")
    final = window.act(c.receipt, "deliver")
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


# --- extension ----------------------------------------------------------------------


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
