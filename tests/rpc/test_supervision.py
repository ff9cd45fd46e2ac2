"""Supervision over real gRPC nodes: alarms recorded once by the owner's scanner and listed
(API and CLI), suspensions, evaluations (once per case, made where the applicant applied,
counted at the owner), rectification and appeal, and bad input refused with nothing written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from govnet.node.domain.people import Role
from govnet.node.rpc.client import ClientError, GovnetClient
from govnet.ops.processes import init_node

from support.accounts import staff, start_in_process
from support.helpers import (
    CHIEF,
    CLERK,
    ID_NUMBER,
    MORNING,
    PHONE,
    all_materials,
    govnet,
    store_snapshot,
    submit,
    wait_for,
)
from support.inprocess import BackgroundLoop, InProcessNode

S = grpc.StatusCode
FAST = {"flush_interval_s": 0.1, "digest_interval_s": 5.0}


def actions(client: GovnetClient, receipt: str) -> list[str]:
    return [e.action for e in client.get(receipt).events]


def delivered(client: GovnetClient, code: str = "SJ-0001", codes: dict[str, str] | None = None) -> str:
    """An immediate case taken through to delivery at the window (``codes``: gets the receipt's rating code)."""
    done = submit(client, code)
    receipt = done.case.receipt
    if codes is not None:
        codes[receipt] = done.rating_code
    client.act(receipt, "accept", actor=CLERK)
    client.act(receipt, "approve", actor=CHIEF)
    client.act(receipt, "complete", actor=CLERK)
    client.act(receipt, "deliver", actor=CLERK)
    return receipt


def refused(node: InProcessNode, call: Callable[[], object], code: grpc.StatusCode, fragment: str) -> None:
    before = store_snapshot(node.data_dir)
    with pytest.raises(ClientError) as info:
        call()
    assert info.value.code == code, f"{info.value.code.name}: {info.value}"
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert store_snapshot(node.data_dir) == before, "a refused call changed the store"


# --- alarms ---


def test_the_owner_records_a_yellow_then_a_red_card_once_even_across_a_restart(make_node, loop, clock) -> None:
    node, client = make_node("371102", "county")
    receipt = submit(client, "HB-0005").case.receipt  # promised, 10 working days
    client.act(receipt, "accept", actor=CLERK)
    client.act(receipt, "review", actor=CLERK)
    assert client.get(receipt).due == "2026-03-24"  # Tue Mar 10 + 10 working days
    assert client.scan().recorded == 0 and list(client.alarms().alarms) == []

    clock.set(MORNING + timedelta(days=13))  # Mon Mar 23: one working day left
    assert client.scan().recorded == 1
    assert client.scan().recorded == 0  # a second scan adds nothing
    (yellow,) = client.alarms().alarms
    assert (yellow.receipt, yellow.kind, yellow.card, yellow.due, yellow.owner, yellow.open) == \
        (receipt, "warn", "yellow", "2026-03-24", "371102", True)
    assert json.loads(yellow.detail_json) == {"due": "2026-03-24", "working_days_left": 1}

    clock.set(MORNING + timedelta(days=15))  # Wed Mar 25: past the due date
    assert client.scan().recorded == 1
    assert [(a.kind, a.card) for a in client.alarms().alarms] == [("overdue", "red"), ("warn", "yellow")]

    node.stop()  # the same store again: nothing new to record
    again = start_in_process(loop, node.data_dir, clock)
    try:
        with GovnetClient(again.address) as c2:
            assert c2.scan().recorded == 0
            assert actions(c2, receipt).count("warn") == 1 and actions(c2, receipt).count("overdue") == 1
            out = govnet("alarms", "--node", again.address, "--json")
            assert out.returncode == 0, out.stderr
            listed = json.loads(out.stdout)["alarms"]
            assert [(a["kind"], a["card"], a["receipt"], a["item_code"]) for a in listed] == [
                ("overdue", "red", receipt, "HB-0005"), ("warn", "yellow", receipt, "HB-0005")]
            text = govnet("alarms", "--node", again.address)
            assert text.returncode == 0 and "未结红牌 1 张，黄牌 1 张" in text.stdout and receipt in text.stdout
            # Decided late: the alarms stay on record, no longer open.
            c2.act(receipt, "approve", actor=CHIEF)
            assert [a.open for a in c2.alarms().alarms] == [False, False]
            assert list(c2.alarms(open_only=True).alarms) == []
    finally:
        again.stop()


def test_a_joint_reviewer_silent_past_its_share_is_taken_as_agreeing(make_node, clock) -> None:
    _, client = make_node("371102", "county")
    receipt = submit(client, "ZJ-0001").case.receipt  # joint, timeout default
    for action in ("accept", "review", "start_joint"):
        client.act(receipt, action, actor=CLERK)
    first, *silent = [j.department for j in client.get(receipt).joint]
    client.act(receipt, "opinion", actor="审查员", department=first, agree=True)
    clock.set(MORNING + timedelta(days=8))  # Wed Mar 18: past the 5-working-day share (Mar 17)
    assert client.scan().recorded == 2 * len(silent)
    case = client.get(receipt)
    assert {j.department: j.opinion for j in case.joint} == {first: "agree", **{d: "agree" for d in silent}}
    timeouts = [json.loads(e.detail_json)["department"] for e in case.events if e.action == "timeout_agree"]
    assert timeouts == silent
    assert client.scan().recorded == 0
    client.act(receipt, "approve", actor=CHIEF)  # every department has agreed now


def test_a_suspension_stops_the_clock_and_the_resume_moves_the_due_date(make_node, clock) -> None:
    node, client = make_node("371102", "county")
    receipt = submit(client, "HB-0005").case.receipt
    client.act(receipt, "accept", actor=CLERK)
    client.act(receipt, "review", actor=CLERK)
    refused(node, lambda: client.suspend(receipt, kind="picnic", days=3, reason="r", actor=CLERK),
            S.INVALID_ARGUMENT, "not one of hearing")
    done = client.suspend(receipt, kind="expert_review", days=5, reason="专家评审", actor=CLERK)
    assert done.suspended and done.due == "2026-03-24"
    clock.set(MORNING + timedelta(days=21))  # Tue Mar 31, past the old due date: the clock is stopped
    assert client.scan().recorded == 0
    refused(node, lambda: client.act(receipt, "approve", actor=CHIEF), S.FAILED_PRECONDITION, "resume it first")
    done = client.resume(receipt, actor=CLERK)
    # Stopped (Mar 10, Mar 31] = 15 working days: Mar 24 + 15 -> Apr 15 (Qingming Apr 4-6 off).
    assert (done.suspended, done.paused_days, done.due) == (False, 15, "2026-04-15")
    resumed = [json.loads(e.detail_json) for e in client.get(receipt).events if e.action == "resume"]
    assert resumed == [{"kind": "expert_review", "reason": "", "working_days": 15}]


# --- evaluation, rectification, appeal ---


def test_one_rating_per_case_after_delivery(make_node) -> None:
    node, client = make_node("371102", "county")
    kiosk = staff(node, "kiosk", Role.TERMINAL)  # the applicant rates at a self-service terminal
    receipt = submit(client, "SJ-0001").case.receipt
    refused(node, lambda: kiosk.evaluate(receipt, "satisfied"), S.FAILED_PRECONDITION, "once it has been delivered")
    receipt = delivered(client)
    refused(node, lambda: client.evaluate(receipt, "satisfied"), S.PERMISSION_DENIED, "needs role 自助终端")
    refused(node, lambda: kiosk.evaluate(receipt, "great"), S.INVALID_ARGUMENT, "very_satisfied, satisfied")
    refused(node, lambda: kiosk.evaluate("371102-01-000001-0", "satisfied"), S.INVALID_ARGUMENT, "check digit")
    done = kiosk.evaluate(receipt, "very_satisfied", "办事很快")
    assert (done.rating, done.forwarded_to, done.rectification_due) == ("very_satisfied", "", "")
    refused(node, lambda: kiosk.evaluate(receipt, "dissatisfied"), S.FAILED_PRECONDITION, "one rating per case")
    (event,) = [e for e in client.get(receipt).events if e.action == "evaluate"]
    assert json.loads(event.detail_json) == {"rating": "very_satisfied", "comment": "办事很快", "at": "371102"}
    # Nothing to rectify or appeal after a good rating.
    refused(node, lambda: client.rectify(receipt, note="n", actor=CLERK), S.FAILED_PRECONDITION, "no rectification")
    refused(node, lambda: client.appeal(receipt, reason="r", actor=CLERK), S.FAILED_PRECONDITION, "no dissatisfied")


def test_a_dissatisfied_rating_opens_a_rectification_with_its_deadline_and_an_appeal_path(make_node) -> None:
    node, client = make_node("371102", "county")
    codes: dict[str, str] = {}
    receipt = delivered(client, codes=codes)
    # The applicant's own channel: the code printed on the receipt (no login needed for it).
    out = govnet("case", "evaluate", receipt, "--rating", "dissatisfied", "--comment", "等太久", "--code",
                 codes[receipt], "--node", node.address)
    assert out.returncode == 0, out.stderr
    assert "rectification opened, due 2026-03-31" in out.stdout  # Tue Mar 10 + 15 working days
    opened = [json.loads(e.detail_json) for e in client.get(receipt).events if e.action == "rectify_open"]
    assert opened == [{"due": "2026-03-31", "working_days": 15}]
    refused(node, lambda: client.rectify(receipt, note=" ", actor=CLERK), S.INVALID_ARGUMENT, "what was rectified")
    assert client.rectify(receipt, note="增加窗口", actor=CLERK).on_time
    refused(node, lambda: client.rectify(receipt, note="again", actor=CLERK), S.FAILED_PRECONDITION, "already closed")
    refused(node, lambda: client.decide_appeal(receipt, upheld=True, reason="r"),
            S.PERMISSION_DENIED, "never decides about its own node")
    client.appeal(receipt, reason="申请人材料不全却给差评", actor="窗口负责人")
    refused(node, lambda: client.appeal(receipt, reason="again", actor="x"), S.FAILED_PRECONDITION, "already been appealed")
    # The rated county's own supervisor cannot decide it (its parent's does: tests/rpc/test_accounts.py).
    out = govnet("case", "appeal-decide", receipt, "--outcome", "upheld", "--reason", "查实恶意差评", "--node", node.address)
    assert out.returncode == 1 and "never decides about its own node" in out.stderr, out.stderr
    assert actions(client, receipt)[-4:] == ["evaluate", "rectify_open", "rectify_close", "appeal"]


@pytest.fixture
def live(loop: BackgroundLoop, tmp_path: Path) -> Iterator[Callable[..., InProcessNode]]:
    """Nodes on the real clock, linked child to parent (the link driver runs on it)."""
    started: list[InProcessNode] = []

    def start(node_id: str, level: str, parent: str | None = None) -> InProcessNode:
        d = init_node(tmp_path / node_id, node_id, level, parent, sync=FAST)
        node = start_in_process(loop, d)
        started.append(node)
        return node

    yield start
    for n in reversed(started):
        n.stop()


def test_a_rating_made_at_the_village_counts_at_the_township_that_owns_the_case(live, sample_catalog) -> None:
    town = live("371102001", "township", "127.0.0.1:1")
    village = live("371102001201", "village", town.address)
    with GovnetClient(town.address) as t, GovnetClient(village.address) as v:
        t.put_catalog(sample_catalog)
        wait_for(lambda: bool(v.list_items().items), 20, lambda: "catalog did not reach the village")
        submitted = submit(v, "MZ-0002", agent="村代办员-李四")  # decided at the township
        receipt, code = submitted.case.receipt, submitted.rating_code
        wait_for(lambda: bool(t.list(limit=10).cases), 20, lambda: "case did not reach the township")
        for action, actor in (("accept", CLERK), ("review", CLERK), ("approve", CHIEF), ("complete", CLERK),
                              ("deliver", CLERK)):
            t.act(receipt, action, actor=actor)
        wait_for(lambda: v.get(receipt).status == "delivered", 20, lambda: v.get(receipt).status)
        with GovnetClient(village.address, token="") as applicant:  # with the code on the receipt, no login
            done = applicant.evaluate(receipt, "satisfied", "代办很方便", rating_code=code)
        assert done.forwarded_to == "371102001"
        wait_for(lambda: "evaluate" in actions(t, receipt), 20, lambda: str(actions(t, receipt)))
        (event,) = [e for e in t.get(receipt).events if e.action == "evaluate"]
        assert json.loads(event.detail_json)["at"] == "371102001201" and event.node == "371102001"
        # The owner's event comes back to the village, which then refuses a second rating itself.
        wait_for(lambda: "evaluate" in actions(v, receipt), 20, lambda: str(actions(v, receipt)))
        kiosk = staff(village, "kiosk", Role.TERMINAL)
        refused(village, lambda: kiosk.evaluate(receipt, "very_dissatisfied"), S.FAILED_PRECONDITION,
                "one rating per case")


# --- back-filled entries ---


def test_a_paper_application_entered_later_keeps_when_it_happened_and_is_flagged(make_node, clock) -> None:
    node, client = make_node("371102", "county")
    out = govnet("case", "submit", "--item", "HB-0005", "--name", "张三", "--id-number", ID_NUMBER, "--phone", PHONE,
              *[f"--material={m}" for m in all_materials("HB-0005")], "--happened-at", "2026-03-06T15:00:00+08:00",
              "--node", node.address, "--json")
    assert out.returncode == 0, out.stderr
    receipt = json.loads(out.stdout)["receipt"]
    refused(node, lambda: client.act_response(receipt, "accept", actor=CLERK, happened_at="2026-03-11T09:00:00+08:00"),
            S.INVALID_ARGUMENT, "in the future")
    refused(node, lambda: client.act_response(receipt, "accept", actor=CLERK, happened_at="2026-03-06 15:00"),
            S.INVALID_ARGUMENT, "time zone")
    refused(node, lambda: client.act_response(receipt, "accept", actor=CLERK, happened_at="2026-03-05T09:00:00+08:00"),
            S.INVALID_ARGUMENT, "before the case's last event")
    case = client.act_response(receipt, "accept", actor=CLERK, happened_at="2026-03-06T15:30:00+08:00").case
    assert case.due == "2026-03-20"  # counted from Fri Mar 6, when it was accepted on paper
    assert case.submitted_at.startswith("2026-03-06T07:00:00")
    client.act(receipt, "review", actor=CLERK)  # entered as it happens: not flagged
    case_events = client.get(receipt).events
    submitted = case_events[0]
    assert (submitted.happened_at, submitted.recorded_at) == ("2026-03-06T07:00:00.000000+00:00",
                                                              "2026-03-10T01:00:00.000000+00:00")
    assert [json.loads(e.detail_json).get("backfilled", False) for e in case_events] == [True, True, False]
    shown = govnet("case", "show", receipt, "--node", node.address)
    assert shown.returncode == 0 and shown.stdout.count("[back-filled]") == 2
    clock.set(MORNING + timedelta(days=9))  # Thu Mar 19: one working day left of the paper deadline
    assert client.scan().recorded == 1 and client.alarms().alarms[0].kind == "warn"


def test_the_node_scans_by_itself_every_scan_interval(make_node, clock) -> None:
    node, client = make_node("371102", "county", supervision={"scan_interval_s": 0.1, "warn_working_days": 2})
    receipt = submit(client, "HB-0005").case.receipt
    client.act(receipt, "accept", actor=CLERK)
    clock.set(MORNING + timedelta(days=10))  # Fri Mar 20: two working days left (Mar 23, 24)
    wait_for(lambda: [a.kind for a in client.alarms().alarms] == ["warn"], 10, lambda: str(client.alarms()))
    assert json.loads(client.alarms().alarms[0].detail_json)["working_days_left"] == 2
