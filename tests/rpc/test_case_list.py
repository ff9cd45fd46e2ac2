"""``case list`` filters over a real node (issue #13, point 9): several statuses (repeated or a
comma list), open only, ``--due-before`` leaving finished cases out, each row with the item's
name and the applicant's masked name; an unknown status refused naming the field and the
valid statuses, nothing changed."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest
from click.testing import CliRunner

from govnet.node.domain.lifecycle import Status
from govnet.node.rpc.client import ClientError, GovnetClient
from govnet.ops.cli import main

from support.helpers import CHIEF, CLERK, NAME, OTHER_ID, OTHER_NAME, store_snapshot, submit

S = grpc.StatusCode


@dataclass
class Desk:
    client: GovnetClient
    address: str
    data_dir: object
    received: str
    accepted: str
    rejected: str  # accepted, then rejected: finished, with a due date


@pytest.fixture
def desk(make_node) -> Desk:
    node, client = make_node("371102", "county")
    received = submit(client, "HB-0005").case.receipt
    accepted = submit(client, "HB-0005", name=OTHER_NAME, id_number=OTHER_ID).case.receipt
    client.act(accepted, "accept", actor=CLERK)
    rejected = submit(client, "HB-0005", key="rejected").case.receipt
    for action in ("accept", "review"):
        client.act(rejected, action, actor=CLERK)
    client.act(rejected, "reject", actor=CHIEF, reason="不符合条件")
    return Desk(client, node.address, node.data_dir, received, accepted, rejected)


def receipts(page) -> set[str]:
    return {c.receipt for c in page.cases}


def test_several_statuses_repeated_or_as_a_comma_list(desk: Desk) -> None:
    both = {desk.received, desk.accepted}
    assert receipts(desk.client.list(statuses=["received", "accepted"])) == both
    assert receipts(desk.client.list(status="received,accepted")) == both
    assert receipts(desk.client.list(status="rejected", statuses=["accepted"])) == {desk.accepted, desk.rejected}
    assert receipts(desk.client.list(statuses=["received"])) == {desk.received}
    assert receipts(desk.client.list()) == {*both, desk.rejected}


def test_open_only_and_due_before_leave_finished_cases_out(desk: Desk) -> None:
    assert receipts(desk.client.list(open_only=True)) == {desk.received, desk.accepted}
    # Both accepted cases have a due date; the rejected one waits for nobody. The received one has none yet.
    assert receipts(desk.client.list(due_before="2099-12-31")) == {desk.accepted}
    assert receipts(desk.client.list(statuses=["rejected"], open_only=True)) == set()


def test_each_row_has_the_item_name_and_the_masked_applicant(desk: Desk) -> None:
    rows = {c.receipt: c for c in desk.client.list().cases}
    assert rows[desk.received].item_name and rows[desk.received].item_name == rows[desk.accepted].item_name
    assert rows[desk.received].applicant_masked == NAME[0] + "*" * (len(NAME) - 1)
    assert rows[desk.accepted].applicant_masked == OTHER_NAME[0] + "*" * (len(OTHER_NAME) - 1)


@pytest.mark.parametrize("call, field", [
    (lambda c: c.list(statuses=["accepted", "finished"]), "statuses"),
    (lambda c: c.list(status="received,bogus"), "status"),
])
def test_an_unknown_status_is_refused_naming_the_field_and_the_valid_ones(desk: Desk, call, field) -> None:
    before = store_snapshot(desk.data_dir)
    with pytest.raises(ClientError) as info:
        call(desk.client)
    assert info.value.code is S.INVALID_ARGUMENT and info.value.field == field
    assert all(s.value in info.value.line() for s in Status)
    assert store_snapshot(desk.data_dir) == before


def test_cli_several_statuses_chinese_headings_and_one_line_refusal(desk: Desk) -> None:
    at = ["--node", desk.address]
    out = CliRunner().invoke(main, ["case", "list", "--status", "received", "--status", "rejected", *at])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split()[:4] == ["受理编号", "事项", "事项名称", "申请人"]
    body = "\n".join(lines[2:])
    assert desk.received in body and desk.rejected in body and desk.accepted not in body
    assert "张*" in body and NAME not in body and "不予许可" in body and "待受理" in body

    listed = CliRunner().invoke(main, ["case", "list", "--open", "--json", *at])
    assert listed.exit_code == 0, listed.output
    assert desk.rejected not in listed.output and desk.accepted in listed.output

    bad = CliRunner().invoke(main, ["case", "list", "--status", "received,nope", *at])
    assert bad.exit_code == 1
    assert bad.output.count("\n") == 1 and "INVALID_ARGUMENT" in bad.output and "nope" in bad.output
