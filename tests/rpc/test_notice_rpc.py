"""The window's rules at the edge, over real in-process nodes (gRPC and the CLI): the one-time
notice (printed as text or a page, one supplement request per case), honest back-dating, and
the acceptance deadline watched by the owner's scanner on a controlled clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import grpc
import pytest

from govnet.node.domain.receipt import Receipt
from govnet.node.rpc.client import ClientError

from support.helpers import CLERK, ID_NUMBER, MORNING, PHONE, core_materials, govnet, item, store_snapshot, submit
from support.inprocess import InProcessNode

S = grpc.StatusCode


def refused(node: InProcessNode, call: Callable[[], object], code: grpc.StatusCode, fragment: str,
            field: str = "") -> None:
    before = store_snapshot(node.data_dir)
    with pytest.raises(ClientError) as info:
        call()
    assert info.value.code == code, f"{info.value.code.name}: {info.value}"
    assert fragment in str(info.value) and "\n" not in str(info.value)
    if field:
        assert info.value.field == field
    assert store_snapshot(node.data_dir) == before, "a refused call changed the store"


# --- the one-time notice ---


def test_a_returned_case_has_its_notice_in_case_show_and_printed_as_text_or_a_page(make_node) -> None:
    node, client = make_node("371102", "county")
    receipt = submit(client, "HB-0002", ["建设项目立项文件"]).case.receipt
    case = client.act(receipt, "return", actor=CLERK, reason="请携带原件")
    assert case.status == "returned" and case.notice.startswith("一次性告知书（退回）")
    assert "1. 建设项目环境影响报告表审批申请表（核心材料）" in case.notice and "法律依据：" in case.notice

    shown = govnet("case", "show", receipt, "--node", node.address)
    assert shown.returncode == 0, shown.stderr
    assert "一次性告知书（退回）" in shown.stdout and "2. 环境影响报告表（核心材料）" in shown.stdout

    text = govnet("case", "notice", receipt, "--node", node.address)
    assert text.returncode == 0, text.stderr
    assert text.stdout.rstrip("\n") == case.notice  # the page says what the window said then
    page = govnet("case", "notice", receipt, "--html", "--node", node.address)
    assert page.returncode == 0 and page.stdout.startswith("<!DOCTYPE html>") and "<script" not in page.stdout
    assert "请携带原件" in page.stdout and "告知窗口：371102" in page.stdout
    as_json = json.loads(govnet("case", "notice", receipt, "--json", "--node", node.address).stdout)
    assert as_json["kind"] == "return" and as_json["node"] == "371102"


def test_one_supplement_request_per_case_unless_the_application_changed(make_node) -> None:
    node, client = make_node("371102", "county")
    receipt = submit(client, "HB-0005").case.receipt
    for action in ("accept", "review"):
        client.act(receipt, action, actor=CLERK)
    refused(node, lambda: client.notice(receipt), S.FAILED_PRECONDITION, "has no one-time notice")
    first = client.act(receipt, "request_supplement", actor=CLERK, materials=["验收监测报告"], reason="缺签章页")
    assert first.status == "awaiting_supplement" and first.notice.startswith("一次性告知书（补正材料）")
    client.act(receipt, "supplement", actor=CLERK, materials=["验收监测报告"])

    refused(node, lambda: client.act(receipt, "request_supplement", actor=CLERK, materials=["环境影响评价批复文件"]),
            S.FAILED_PRECONDITION, "one-time notice (一次性告知) was already given")
    refused(node, lambda: client.act(receipt, "request_supplement", actor=CLERK, materials=["环境影响评价批复文件"],
                                     changed_application=True),
            S.INVALID_ARGUMENT, "what the applicant changed")

    out = govnet("case", "act", receipt, "request_supplement", "--material", "环境影响评价批复文件",
                 "--changed-application", "--reason", "申请人变更了建设内容", "--node", node.address)
    assert out.returncode == 0, out.stderr
    case = client.get(receipt)
    assert case.status == "awaiting_supplement" and "申请人变更了申请内容" in case.notice
    last = [e for e in case.events if e.action == "request_supplement"][-1]
    assert json.loads(last.detail_json)["changed_application"] is True and last.reason == "申请人变更了建设内容"
    notice = client.notice(receipt)
    assert notice.kind == "supplement" and "1. 环境影响评价批复文件（核心材料）" in notice.text


def test_a_notice_for_a_case_not_here_is_not_found_and_a_bad_receipt_is_invalid(make_node) -> None:
    node, client = make_node("371102", "county")
    unknown = str(Receipt("371102", 1, 99))
    mistyped = unknown[:-1] + str((int(unknown[-1]) + 1) % 10)  # a wrong check digit
    refused(node, lambda: client.notice(unknown), S.NOT_FOUND, "no case", "receipt")
    refused(node, lambda: client.notice(mistyped), S.INVALID_ARGUMENT, "", "receipt")
    out = govnet("case", "notice", unknown, "--node", node.address)
    assert out.returncode != 0 and out.stderr.count("\n") == 1 and "no case" in out.stderr


# --- honest back-dating ---


def test_a_back_filled_step_may_not_precede_the_step_it_follows(make_node, clock) -> None:
    node, client = make_node("371102", "county")
    receipt = submit(client, "ZJ-0001").case.receipt
    clock.set(MORNING + timedelta(hours=1))
    client.act(receipt, "accept", actor=CLERK)
    client.act(receipt, "review", actor=CLERK)
    clock.set(MORNING + timedelta(hours=3))
    client.act(receipt, "start_joint", actor=CLERK, happened_at="2026-03-10T11:00:00+08:00")  # entered an hour late
    department = item("ZJ-0001").joint_departments[0]
    refused(node, lambda: client.act(receipt, "opinion", actor=CLERK, department=department, agree=True,
                                     happened_at="2026-03-10T10:30:00+08:00"),
            S.INVALID_ARGUMENT, "before the start_joint it follows", "happened_at")
    # Back-dating the joint review's start before the review it follows is refused too (the faked
    # history that would have made the silent reviewers agree at once).
    other = submit(client, "ZJ-0001").case.receipt
    for action in ("accept", "review"):
        client.act(other, action, actor=CLERK)
    refused(node, lambda: client.act(other, "start_joint", actor=CLERK, happened_at="2026-03-03T09:00:00+08:00"),
            S.INVALID_ARGUMENT, "before the review it follows", "happened_at")
    out = govnet("case", "act", other, "start_joint", "--happened-at", "2026-03-03T09:00:00+08:00",
                 "--node", node.address)
    assert out.returncode != 0 and "happened_at" in out.stderr and out.stderr.count("\n") == 1
    # In the order they happened, a back-filled opinion is taken and flagged.
    clock.set(MORNING + timedelta(hours=5))
    case = client.act(receipt, "opinion", actor=CLERK, department=department, agree=True,
                      happened_at="2026-03-10T11:30:00+08:00")
    flags = {e.action: json.loads(e.detail_json).get("backfilled", False) for e in case.events}
    assert flags["opinion"] is True and flags["review"] is False
    shown = govnet("case", "show", receipt, "--node", node.address)
    assert "opinion [back-filled]" in shown.stdout


# --- the acceptance deadline, watched by the owner's scanner ---


def test_a_received_case_is_warned_then_deemed_accepted_from_its_arrival_once(make_node, clock) -> None:
    node, client = make_node("371102", "county")
    waiting = submit(client, "HB-0002", core_materials("HB-0002")).case.receipt  # arrived Tue Mar 10
    returned = submit(client, "HB-0002", ["建设项目立项文件"]).case.receipt
    client.act(returned, "return", actor=CLERK)
    assert client.scan().recorded == 0

    clock.set(MORNING + timedelta(days=6))  # Mon Mar 16: the 4th working day after arrival
    assert client.scan().recorded == 1 and client.scan().recorded == 0
    (yellow,) = client.alarms().alarms
    assert (yellow.receipt, yellow.kind, yellow.card, yellow.open) == (waiting, "warn", "yellow", True)
    assert "accept or refuse by 2026-03-17" in client.get(waiting).events[-1].reason

    clock.set(MORNING + timedelta(days=8))  # Wed Mar 18: the 5 working days ran out yesterday
    assert client.scan().recorded == 1
    assert client.scan().recorded == 0  # exactly once
    case = client.get(waiting)
    assert case.status == "accepted" and case.events[-1].action == "deem_accept"
    assert case.due == "2026-03-24"  # 10 working days from its arrival on Tue Mar 10, not from today
    detail = json.loads(case.events[-1].detail_json)
    assert detail["accepted_on"] == "2026-03-10" and detail["missing"] == ["建设项目立项文件"]
    assert client.get(returned).status == "returned"  # refused in time: nothing to watch
    tracked = [step.text for step in client.track(waiting).steps]  # the applicant's view: in their words
    assert tracked[-1] == "依法视为受理（五个工作日内未作受理决定）" and not any("warn" in t for t in tracked)
    kinds = {(a.receipt, a.kind, a.card, a.open) for a in client.alarms().alarms}
    assert kinds == {(waiting, "warn", "yellow", False), (waiting, "deem_accept", "red", False)}  # past: none open
    listed = govnet("alarms", "--node", node.address)
    assert listed.returncode == 0, listed.stderr
    assert "deemed accepted as of its arrival 2026-03-10" in listed.stdout
    assert "not accepted: 1 working day(s) left, by 2026-03-17" in listed.stdout


def test_a_township_accepting_a_county_item_is_watched_there(make_node, clock) -> None:
    node, client = make_node("371102001", "township")
    receipt = submit(client, "HB-0005").case.receipt  # decided at the county: accepted here, then sent up
    clock.set(MORNING + timedelta(days=9))  # Thu Mar 19: past Tue Mar 17
    assert client.scan().recorded == 1  # past the deadline at once: the red card only, no late yellow one
    case = client.get(receipt)
    assert case.status == "accepted" and case.owner == "371102001" and case.due == "2026-03-24"


def test_timeout_defaults_count_from_when_the_joint_review_really_started(make_node, clock) -> None:
    node, client = make_node("371102", "county")
    receipt = submit(client, "ZJ-0001").case.receipt  # a joint item with timeout default
    client.act(receipt, "accept", actor=CLERK)
    client.act(receipt, "review", actor=CLERK)
    clock.set(MORNING + timedelta(days=2))  # Thu Mar 12: the joint review started on Tuesday, entered now
    client.act(receipt, "start_joint", actor=CLERK, happened_at="2026-03-10T15:00:00+08:00")
    clock.set(MORNING + timedelta(days=7))  # Tue Mar 17: each share of 5 working days ends today
    assert client.scan().recorded == 0
    clock.set(MORNING + timedelta(days=8))  # Wed Mar 18 (counted from Thursday's recording: not before Mar 19)
    assert client.scan().recorded == 6  # each silent reviewer: its step alarm, then taken as agreeing
    case = client.get(receipt)
    assert [j.opinion for j in case.joint] == ["agree", "agree", "agree"]
    shares = {json.loads(e.detail_json)["due"] for e in case.events if e.action == "timeout_agree"}
    assert shares == {"2026-03-17"}


def test_a_paper_application_entered_weeks_later_is_not_deemed_accepted_before_its_acceptance_is_entered(
        make_node, clock) -> None:
    node, client = make_node("371102", "county")
    out = govnet("case", "submit", "--item", "HB-0005", "--name", "张三", "--id-number", ID_NUMBER, "--phone", PHONE,
                 *[f"--material={m}" for m in item("HB-0005").core_materials],
                 "--happened-at", "2026-02-02T10:00:00+08:00", "--node", node.address, "--json")
    assert out.returncode == 0, out.stderr
    receipt = json.loads(out.stdout)["receipt"]
    assert client.scan().recorded == 0  # taken six weeks ago, entered today: its acceptance is entered next
    case = client.act(receipt, "accept", actor=CLERK, happened_at="2026-02-02T11:00:00+08:00")
    assert case.status == "accepted" and [e.action for e in case.events] == ["submit", "accept"]
