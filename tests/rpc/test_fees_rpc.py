"""Fees, payments, waivers and the green channel through a real node's gRPC API and the CLI.

The rules (what a case owes, what a payment may be, when delivery waits) are tested at the pure
core (tests/unit/test_fees.py); here: the contract — status codes with the field at fault,
nothing written on a refusal, what a case shows, the order of the work queue, and the
``govnet case pay / waive-fee / green-channel`` commands run as a user would.
"""

from __future__ import annotations

import json
import subprocess
import sys

import grpc
import pytest

from govnet.node.domain.people import Role
from govnet.node.domain.receipt import Receipt
from govnet.node.rpc.client import ClientError

from support.accounts import staff
from support.helpers import all_materials, item, store_snapshot, submit

COUNTY = "371102"
REGISTRATION = "ZR-0003"  # 80.00 a case + 10.00 a certificate, the first certificate free
JOINT = "ZJ-0001"  # construction permit: 15 promised days, 7 in the green channel


@pytest.fixture
def county(make_node):
    node, _ = make_node(COUNTY, "county")
    dept = item(REGISTRATION).department
    clerk = staff(node, "wangfang", Role.WINDOW_CLERK, [dept], name="王芳")
    chief = staff(node, "zhaoqiang", Role.CHIEF_REPRESENTATIVE, [dept], name="赵强")
    return node, clerk, chief


def refused(code: grpc.StatusCode, call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    assert info.value.code == code, f"expected {code.name}, got {info.value.code.name}: {info.value}"
    assert "\n" not in str(info.value)
    return info.value


def completed_registration(clerk, chief) -> str:
    receipt = submit(clerk, REGISTRATION, all_materials(REGISTRATION)).case.receipt
    clerk.act(receipt, "accept")
    clerk.act(receipt, "review")
    approved = chief.act(receipt, "approve")
    assert (approved.fees_due_fen, approved.fees_outstanding_fen) == (8000, 8000)  # first certificate free
    chief.act(receipt, "complete")
    return receipt


def test_a_case_is_delivered_once_its_fees_are_paid(county) -> None:
    node, clerk, chief = county
    receipt = completed_registration(clerk, chief)
    msg = str(refused(grpc.StatusCode.FAILED_PRECONDITION, clerk.act, receipt, "deliver"))
    assert "fees of 80.00 yuan are due" in msg
    part = clerk.pay_fee(receipt, "50", "cash", "SF-20260310-001")
    assert (part.fees_paid_fen, part.fees_outstanding_fen, part.status) == (5000, 3000, "completed")
    assert "deliver" not in part.allowed_actions and "pay" in part.allowed_actions
    done = clerk.pay_fee(receipt, "30.00", "wechat", "4200001234202603100001")
    assert (done.fees_paid_fen, done.fees_outstanding_fen) == (8000, 0) and "deliver" in done.allowed_actions
    pays = [json.loads(e.detail_json) for e in done.events if e.action == "pay"]
    assert [(p["amount_fen"], p["method"], p["number"]) for p in pays] == [
        (5000, "cash", "SF-20260310-001"), (3000, "wechat", "4200001234202603100001")]
    assert {e.actor for e in done.events if e.action == "pay"} == {"wangfang (王芳)"}  # who took the money
    assert clerk.act(receipt, "deliver").status == "delivered"


@pytest.mark.parametrize(("amount", "method", "number", "field", "fragment"), [
    ("-80.00", "cash", "SF-1", "amount", "negative"),
    ("80.001", "cash", "SF-1", "amount", "more than two decimals"),
    ("八十", "cash", "SF-1", "amount", "not an amount"),
    ("", "cash", "SF-1", "amount", "amount is required"),
    ("0.00", "cash", "SF-1", "amount", "above 0"),
    ("80.00", "bitcoin", "SF-1", "method", "is not one of cash"),
    ("80.00", "cash", "", "number", "number is required"),
    ("80.00", "cash", "x" * 65, "number", "at most 64"),
])
def test_a_bad_payment_is_invalid_names_its_field_and_writes_nothing(county, amount, method, number, field,
                                                                     fragment) -> None:
    node, clerk, chief = county
    receipt = completed_registration(clerk, chief)
    before = store_snapshot(node.data_dir)
    error = refused(grpc.StatusCode.INVALID_ARGUMENT, clerk.pay_fee, receipt, amount, method, number)
    assert error.field == field and fragment in str(error), (error.field, str(error))
    assert store_snapshot(node.data_dir) == before


def test_overpaying_is_a_failed_precondition_and_an_unknown_case_not_found(county) -> None:
    node, clerk, chief = county
    receipt = completed_registration(clerk, chief)
    before = store_snapshot(node.data_dir)
    assert "90.00 yuan is more than the 80.00 yuan still due" in str(
        refused(grpc.StatusCode.FAILED_PRECONDITION, clerk.pay_fee, receipt, "90.00", "card", "POS-1"))
    assert store_snapshot(node.data_dir) == before
    assert refused(grpc.StatusCode.NOT_FOUND, clerk.pay_fee, str(Receipt(COUNTY, 1, 9999)), "80.00", "cash",
                   "SF-1").field == "receipt"


def test_only_the_signing_officer_waives_and_says_why(county) -> None:
    node, clerk, chief = county
    receipt = completed_registration(clerk, chief)
    assert "waive_fee needs role 首席代表" in str(
        refused(grpc.StatusCode.PERMISSION_DENIED, clerk.waive_fee, receipt, "低保对象"))
    assert refused(grpc.StatusCode.INVALID_ARGUMENT, chief.waive_fee, receipt, "  ").field == "reason"
    waived = chief.waive_fee(receipt, "最低生活保障对象免收登记费")
    assert (waived.fees_waived, waived.fees_outstanding_fen) == (True, 0)
    assert [e.reason for e in waived.events if e.action == "waive_fee"] == ["最低生活保障对象免收登记费"]
    # Anyone holding the receipt sees that the fee was waived, never why (the applicant's hardship).
    tracked = clerk.track(receipt)
    assert tracked.status == "completed" and "最低生活保障".encode() not in tracked.SerializeToString()
    assert clerk.act(receipt, "deliver").status == "delivered"


def test_green_channel_cases_come_first_in_the_work_queue_and_take_the_shorter_limit(make_node) -> None:
    node, tester = make_node(COUNTY, "county")
    dept = item(JOINT).department
    clerk = staff(node, "wangfang", Role.WINDOW_CLERK, [dept], name="王芳")
    supervisor = staff(node, "jiancha", Role.SUPERVISOR, name="监察员")
    receipts = [submit(clerk, JOINT, all_materials(JOINT)).case.receipt for _ in range(4)]
    for r in receipts:
        clerk.act(r, "accept")
    assert "green_channel needs role 首席代表" in str(
        refused(grpc.StatusCode.PERMISSION_DENIED, clerk.green_channel, receipts[2], "重点项目"))
    assert refused(grpc.StatusCode.INVALID_ARGUMENT, supervisor.green_channel, receipts[2], "").field == "reason"
    before = clerk.get(receipts[2]).due
    green = supervisor.green_channel(receipts[2], "市重点项目：新能源产业园")
    assert green.green_channel and green.due < before
    assert [e.action for e in green.events][-1] == "green_channel"
    refused(grpc.StatusCode.FAILED_PRECONDITION, supervisor.green_channel, receipts[2], "again")
    # The queue: the green case first, then the others by receipt, page after page.
    first = tester.list(limit=2)
    assert [c.receipt for c in first.cases] == [receipts[2], receipts[0]] and first.cases[0].green_channel
    assert first.next_page_token == receipts[0]
    rest = tester.list(limit=2, page_token=first.next_page_token)
    assert [c.receipt for c in rest.cases] == [receipts[1], receipts[3]] and rest.next_page_token == ""
    one = tester.list(limit=1)
    assert one.next_page_token == "green:" + receipts[2]
    assert [c.receipt for c in tester.list(limit=1, page_token=one.next_page_token).cases] == [receipts[0]]


def govnet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "govnet.ops.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_cli_pays_waives_flags_and_shows_fees(county) -> None:
    node, clerk, chief = county
    receipt = completed_registration(clerk, chief)
    at = ("--node", node.address)
    bad = govnet("case", "pay", receipt, "--amount", "80.005", "--method", "cash", "--number", "SF-9", *at)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("govnet: error: ") and "two decimals" in bad.stderr
    paid = govnet("case", "pay", receipt, "--amount", "30.00", "--method", "alipay", "--number", "ALI-77", *at)
    assert paid.returncode == 0, paid.stderr
    assert paid.stdout.strip() == f"{receipt}: due 80.00, paid 30.00, outstanding 50.00 yuan"
    shown = govnet("case", "show", receipt, *at)
    assert "due 80.00, paid 30.00, outstanding 50.00 yuan" in shown.stdout
    assert "paid 30.00 yuan by alipay no. ALI-77" in shown.stdout
    as_json = json.loads(govnet("case", "show", receipt, "--json", *at).stdout)
    assert (as_json["fees_due_fen"], as_json["fees_paid_fen"], as_json["fees_outstanding_fen"]) == ("8000", "3000",
                                                                                                   "5000")
    waived = govnet("case", "waive-fee", receipt, "--reason", "困难群众减免", *at)
    assert waived.returncode == 0 and "rest waived, outstanding 0.00 yuan" in waived.stdout
    green = govnet("case", "green-channel", receipt, "--reason", "重点项目", *at)
    assert green.returncode == 1 and "cannot green_channel a case that is completed" in green.stderr


@pytest.mark.parametrize("code", [REGISTRATION, JOINT])
def test_free_units_and_the_green_limit_survive_the_wire(code: str) -> None:
    from govnet.node.domain.catalog import ServiceItem
    from govnet.node.rpc.convert import item_to_dict, item_to_proto

    published = item(code)
    assert ServiceItem.from_dict(item_to_dict(item_to_proto(published))) == published
    assert (published.fees[-1].free_units if published.fees else published.green_channel_days) in (1, 7)
