"""Every bad input is refused with the right gRPC status and a message that names the
problem, and leaves the node's store exactly as it was (every table, every row).

Each test starts a real county node (371102) with the sample catalog, prepares a few
cases in known states, snapshots the SQLite file with plain sqlite3, makes one bad call
and compares the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from govnet.node.domain.receipt import Receipt, damm_check_digit
from govnet.node.rpc.client import ClientError, GovnetClient, saved_token
from govnet.node.rpc.convert import item_to_proto
from govnet.v1 import catalog_pb2, catalog_pb2_grpc

from support.helpers import (
    CHIEF,
    CLERK,
    ID_NUMBER,
    SAMPLE,
    all_materials,
    item,
    resident_id,
    store_snapshot,
    submit,
    wrong_check,
)

S = grpc.StatusCode


@dataclass
class Desk:
    """A county node with one case in each interesting state."""

    client: GovnetClient
    address: str
    received: str  # HB-0005, every material handed in
    reviewing: str  # HB-0005, under review
    joint: str  # ZJ-0001, joint review; the first department has agreed
    no_tolerance: str  # GA-0002, a non-core material missing, the item allows no tolerance
    complete_set: str  # HB-0003, received with every material


@pytest.fixture
def desk(make_node):
    node, client = make_node("371102", "county")
    received = submit(client, "HB-0005").case.receipt
    reviewing = submit(client, "HB-0005", key="reviewing").case.receipt
    client.act(reviewing, "accept", actor=CLERK)
    client.act(reviewing, "review", actor=CLERK)
    joint = submit(client, "ZJ-0001").case.receipt
    for action in ("accept", "review", "start_joint"):
        client.act(joint, action, actor=CLERK)
    first_dept = item("ZJ-0001").joint_departments[0]
    client.act(joint, "opinion", actor="审查员", department=first_dept, agree=True)
    no_tolerance = submit(client, "GA-0002", list(item("GA-0002").core_materials)).case.receipt
    complete_set = submit(client, "HB-0003").case.receipt
    return node, Desk(client, node.address, received, reviewing, joint, no_tolerance, complete_set)


def check_refused(node, call: Callable[[], Any], code: grpc.StatusCode, *fragments: str) -> str:
    before = store_snapshot(node.data_dir)
    with pytest.raises(ClientError) as info:
        call()
    message = str(info.value)
    assert info.value.code == code, f"expected {code.name}, got {info.value.code.name}: {message}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "\n" not in message
    assert "Traceback" not in message
    assert store_snapshot(node.data_dir) == before, "a refused call changed the store"
    return message


# --- submit ---------------------------------------------------------------------------

BAD_BIRTH_DATE = resident_id("37110219850230201")  # 30 February, with a correct check character

SUBMIT_CASES: list[tuple[str, dict[str, Any], grpc.StatusCode, tuple[str, ...]]] = [
    ("id-wrong-check-char", {"id_number": wrong_check(ID_NUMBER)}, S.INVALID_ARGUMENT, ("resident ID", "check character")),
    ("id-17-chars", {"id_number": ID_NUMBER[:17]}, S.INVALID_ARGUMENT, ("resident ID", "17 characters")),
    ("id-bad-birth-date", {"id_number": BAD_BIRTH_DATE}, S.INVALID_ARGUMENT, ("resident ID", "birth date", "19850230")),
    ("id-old-15-digits", {"id_number": "371102850312201"}, S.INVALID_ARGUMENT, ("15-digit",)),
    ("phone-10-digits", {"phone": "1381234567"}, S.INVALID_ARGUMENT, ("phone", "11 digits")),
    ("phone-letters", {"phone": "138-ABCD-5678"}, S.INVALID_ARGUMENT, ("phone", "only digits")),
    ("name-empty", {"name": "   "}, S.INVALID_ARGUMENT, ("name is empty",)),
    ("name-control-char", {"name": "张\x07三"}, S.INVALID_ARGUMENT, ("name", "control character")),
    ("key-empty", {"key": ""}, S.INVALID_ARGUMENT, ("idempotency_key",)),
    ("key-too-long", {"key": "k" * 129}, S.INVALID_ARGUMENT, ("idempotency_key", "128")),
    ("item-unknown", {"code": "HB-9999"}, S.NOT_FOUND, ("HB-9999",)),
    ("item-empty", {"code": ""}, S.INVALID_ARGUMENT, ("item_code is required",)),
    ("item-decided-below-this-node", {"code": "MZ-0005"}, S.FAILED_PRECONDITION, ("MZ-0005", "village")),
]


@pytest.mark.parametrize(("overrides", "code", "fragments"), [c[1:] for c in SUBMIT_CASES], ids=[c[0] for c in SUBMIT_CASES])
def test_bad_submission_is_refused(desk, overrides, code, fragments) -> None:
    node, d = desk
    overrides = dict(overrides)
    item_code = overrides.pop("code", "HB-0005")
    materials = all_materials(item_code) if SAMPLE.get(item_code) else ["申请表"]
    check_refused(node, lambda: submit(d.client, item_code, materials, **overrides), code, *fragments)


@pytest.mark.parametrize("token", ["", "not-a-token-this-node-gave-out"], ids=["no-login", "unknown-token"])
def test_a_call_without_a_valid_login_is_refused_and_writes_nothing(desk, token) -> None:
    node, d = desk
    with GovnetClient(node.address, token=token) as nobody:
        check_refused(node, lambda: submit(nobody, "HB-0005"), S.UNAUTHENTICATED, "govnet login")
        check_refused(node, lambda: nobody.act(d.received, "accept"), S.UNAUTHENTICATED, "govnet login")
        check_refused(node, lambda: nobody.get(d.received), S.UNAUTHENTICATED)
        assert nobody.track(d.received).receipt == d.received  # tracking a receipt stays public


def test_unknown_material_is_a_bad_argument(desk) -> None:
    node, d = desk
    materials = all_materials("HB-0005") + ["营业执照复印件"]
    # A material the item does not list is wrong whatever state the node is in: INVALID_ARGUMENT
    # (lifecycle.InvalidParams documents "an unknown material" as a parameter error).
    check_refused(node, lambda: submit(d.client, "HB-0005", materials), S.INVALID_ARGUMENT,
                  "营业执照复印件", "HB-0005")


def test_submit_before_any_catalog_is_loaded(make_node) -> None:
    node, client = make_node("371102", "county", catalog=False)
    check_refused(node, lambda: submit(client, "HB-0005"), S.FAILED_PRECONDITION, "no catalog", "catalog load")


def test_refused_submission_does_not_use_up_a_receipt_number(desk) -> None:
    node, d = desk
    with pytest.raises(ClientError):
        submit(d.client, "HB-0005", id_number=wrong_check(ID_NUMBER))
    with pytest.raises(ClientError), GovnetClient(node.address, token="") as nobody:
        submit(nobody, "HB-0005")
    last = max(Receipt.parse(c.receipt).seq for c in d.client.list().cases)
    new = submit(d.client, "HB-0005", id_number=resident_id("37110219700101003")).case
    assert Receipt.parse(new.receipt).seq == last + 1


# --- act ------------------------------------------------------------------------------


def _mistyped(receipt: str) -> str:
    """The receipt with one digit of its sequence changed (the check digit no longer matches)."""
    body, check = receipt.rsplit("-", 1)
    digit = body[-1]
    typo = body[:-1] + ("5" if digit != "5" else "6")
    assert damm_check_digit(typo.replace("-", "")) != check
    return f"{typo}-{check}"


ACT_CASES: list[tuple[str, Callable[[Desk], Any], grpc.StatusCode, Callable[[Desk], tuple[str, ...]]]] = [
    ("unknown-receipt", lambda d: d.client.act(str(Receipt("371102", 1, 999)), "accept", actor=CLERK),
     S.NOT_FOUND, lambda d: (str(Receipt("371102", 1, 999)),)),
    ("receipt-mistyped-digit", lambda d: d.client.act(_mistyped(d.received), "accept", actor=CLERK),
     S.INVALID_ARGUMENT, lambda d: ("check digit",)),
    ("receipt-garbage", lambda d: d.client.act("not-a-receipt", "accept", actor=CLERK),
     S.INVALID_ARGUMENT, lambda d: ("receipt",)),
    ("unknown-action", lambda d: d.client.act(d.received, "approve_now", actor=CLERK),
     S.INVALID_ARGUMENT, lambda d: ("approve_now", "accept", "request_supplement", "start_joint", "withdraw")),
    ("illegal-action-for-status", lambda d: d.client.act(d.received, "complete", actor=CLERK),
     S.FAILED_PRECONDITION, lambda d: ("complete", "received", "accept, return, withdraw")),
    ("illegal-action-under-review", lambda d: d.client.act(d.reviewing, "deliver", actor=CLERK),
     S.FAILED_PRECONDITION, lambda d: ("deliver", "under_review", "request_supplement", "approve")),
    ("reject-without-reason", lambda d: d.client.act(d.reviewing, "reject", actor=CHIEF),
     S.INVALID_ARGUMENT, lambda d: ("reason",)),
    ("return-without-reason-when-nothing-missing", lambda d: d.client.act(d.complete_set, "return", actor=CLERK),
     S.INVALID_ARGUMENT, lambda d: ("reason",)),
    ("opinion-from-department-not-in-review", lambda d: d.client.act(d.joint, "opinion", actor="审查员", department="公安局", agree=True),
     S.FAILED_PRECONDITION, lambda d: ("公安局", *item("ZJ-0001").joint_departments)),
    ("opinion-without-department", lambda d: d.client.act(d.joint, "opinion", actor="审查员", agree=True),
     S.FAILED_PRECONDITION, lambda d: ("(none)",)),
    ("opinion-given-twice", lambda d: d.client.act(d.joint, "opinion", actor="审查员", department=item("ZJ-0001").joint_departments[0], agree=False, reason="改变主意"),
     S.FAILED_PRECONDITION, lambda d: (item("ZJ-0001").joint_departments[0], "already")),
    ("disagree-without-reason", lambda d: d.client.act(d.joint, "opinion", actor="审查员", department=item("ZJ-0001").joint_departments[1], agree=False),
     S.INVALID_ARGUMENT, lambda d: (item("ZJ-0001").joint_departments[1], "reason")),
    ("supplement-not-owed", lambda d: d.client.act(d.reviewing, "supplement", actor=CLERK, materials=["验收监测报告"]),
     S.FAILED_PRECONDITION, lambda d: ("验收监测报告", "not owed")),
    ("supplement-nothing", lambda d: d.client.act(d.reviewing, "supplement", actor=CLERK),
     S.INVALID_ARGUMENT, lambda d: ("material",)),
    ("request-supplement-nothing", lambda d: d.client.act(d.reviewing, "request_supplement", actor=CLERK),
     S.INVALID_ARGUMENT, lambda d: ("material",)),
    ("request-supplement-unknown-material", lambda d: d.client.act(d.reviewing, "request_supplement", actor=CLERK, materials=["营业执照复印件"]),
     S.INVALID_ARGUMENT, lambda d: ("营业执照复印件",)),
    ("accept-non-core-missing-without-tolerance", lambda d: d.client.act(d.no_tolerance, "accept", actor=CLERK),
     S.FAILED_PRECONDITION, lambda d: ("GA-0002", "tolerance", item("GA-0002").noncore_materials[0])),
    ("start-joint-on-a-non-joint-item", lambda d: d.client.act(d.reviewing, "start_joint", actor=CLERK),
     S.FAILED_PRECONDITION, lambda d: ("HB-0005", "not a joint item")),
    ("extend-without-reason", lambda d: d.client.act(d.reviewing, "extend", actor=CHIEF, approver="局长 孙伟"),
     S.INVALID_ARGUMENT, lambda d: ("reason",)),
    ("extend-without-approver", lambda d: d.client.act(d.reviewing, "extend", actor=CHIEF, reason="需现场核查"),
     S.INVALID_ARGUMENT, lambda d: ("approver",)),
]


@pytest.mark.parametrize(("call", "code", "fragments"), [c[1:] for c in ACT_CASES], ids=[c[0] for c in ACT_CASES])
def test_bad_action_is_refused(desk, call, code, fragments) -> None:
    node, d = desk
    check_refused(node, lambda: call(d), code, *fragments(d))


def test_start_joint_listing_the_lead_department(make_node) -> None:
    node, client = make_node("371102", "county")
    r = submit(client, "ZJ-0001").case.receipt
    client.act(r, "accept", actor=CLERK)
    client.act(r, "review", actor=CLERK)
    lead = item("ZJ-0001").department
    check_refused(node, lambda: client.act(r, "start_joint", actor=CLERK, departments=[lead, "生态环境局"]),
                  S.INVALID_ARGUMENT, lead, "leads")


@pytest.mark.parametrize("call", ["get", "track"])
def test_reading_an_unknown_or_mistyped_receipt(desk, call) -> None:
    node, d = desk
    read = getattr(d.client, call)
    missing = str(Receipt("371102", 1, 999))
    check_refused(node, lambda: read(missing), S.NOT_FOUND, missing)
    check_refused(node, lambda: read(_mistyped(d.received)), S.INVALID_ARGUMENT, "check digit")


# --- catalog --------------------------------------------------------------------------


def _put(address: str, items: list[catalog_pb2.ServiceItem], expected_version: int = 0) -> catalog_pb2.PutCatalogResponse:
    """PutCatalog with hand-built messages: the typed client only sends valid Catalog values."""
    with grpc.insecure_channel(address) as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        try:
            return stub.PutCatalog(
                catalog_pb2.PutCatalogRequest(issuer="371100", items=items, expected_version=expected_version),
                timeout=10, metadata=(("authorization", f"Bearer {saved_token(address)}"),),
            )
        except grpc.RpcError as exc:
            raise ClientError(exc.code(), exc.details()) from None


def _sample_with(code: str, **changes: Any) -> list[catalog_pb2.ServiceItem]:
    out = []
    for i in SAMPLE.items:
        msg = item_to_proto(i)
        if i.code == code:
            for key, value in changes.items():
                if isinstance(value, list):
                    del getattr(msg, key)[:]
                    getattr(msg, key).extend(value)
                else:
                    setattr(msg, key, value)
        out.append(msg)
    return out


CATALOG_CASES: list[tuple[str, Callable[[], list[catalog_pb2.ServiceItem]], tuple[str, ...]]] = [
    ("promised-over-statutory", lambda: _sample_with("HB-0005", promised_days=25), ("HB-0005", "promised_days", "25", "20")),
    ("immediate-with-promised-days", lambda: _sample_with("HB-0003", promised_days=1), ("HB-0003", "promised_days", "immediate")),
    ("unknown-level", lambda: _sample_with("HB-0002", authority_level="province"), ("HB-0002", "authority_level", "province")),
    ("unknown-item-type", lambda: _sample_with("HB-0002", item_type="urgent"), ("HB-0002", "item_type", "urgent")),
    ("no-procedure", lambda: _sample_with("HB-0002", procedure=[]), ("HB-0002", "procedure")),
    ("joint-without-departments", lambda: _sample_with("ZJ-0001", joint_departments=[]), ("ZJ-0001", "joint_departments")),
    ("duplicate-code", lambda: [*_sample_with("HB-0001"), item_to_proto(item("HB-0001"))], ("HB-0001",)),
    ("empty-catalog", lambda: [], ("no items",)),
]


@pytest.mark.parametrize(("build", "fragments"), [c[1:] for c in CATALOG_CASES], ids=[c[0] for c in CATALOG_CASES])
def test_invalid_catalog_is_refused_and_version_unchanged(desk, build, fragments) -> None:
    node, d = desk
    items = build()
    check_refused(node, lambda: _put(d.address, items), S.INVALID_ARGUMENT, *fragments)
    assert d.client.list_items().version == 1
    assert d.client.get_item("HB-0005").item.promised_days == item("HB-0005").promised_days


def test_catalog_put_at_a_stale_version_is_refused(desk) -> None:
    node, d = desk
    check_refused(node, lambda: _put(d.address, _sample_with("HB-0005"), expected_version=7),
                  S.FAILED_PRECONDITION, "version 1", "7")
    assert d.client.list_items().version == 1
    # The right expected version goes through (the refusal above was about the version only).
    assert _put(d.address, _sample_with("HB-0005"), expected_version=1).version == 2


# --- list -----------------------------------------------------------------------------

LIST_CASES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("limit-5000", {"limit": 5000}, ("limit", "1000")),
    ("limit-1001", {"limit": 1001}, ("limit", "1000")),
    ("limit-negative", {"limit": -1}, ("limit",)),
    ("due-before-not-a-date", {"due_before": "next week"}, ("due_before", "next week", "YYYY-MM-DD")),
    ("due-before-month-13", {"due_before": "2026-13-01"}, ("due_before", "2026-13-01")),
    ("page-token-garbage", {"page_token": "abc"}, ("page_token",)),
]


@pytest.mark.parametrize("kwargs, fragments", [c[1:] for c in LIST_CASES], ids=[c[0] for c in LIST_CASES])
def test_bad_list_request_is_refused(desk, kwargs, fragments) -> None:
    node, d = desk
    check_refused(node, lambda: d.client.list(**kwargs), S.INVALID_ARGUMENT, *fragments)


def test_list_limit_zero_means_the_default(desk) -> None:
    # proto3 cannot tell 0 from "not set"; cases.proto documents "default 100".
    node, d = desk
    assert len(d.client.list(limit=0).cases) == 5
    assert d.client.list(limit=0).next_page_token == ""


def test_snapshot_sees_every_accepted_change(desk) -> None:
    # Guards the comparisons above: a successful call must change the snapshot.
    node, d = desk
    before = store_snapshot(node.data_dir)
    d.client.act(d.received, "accept", actor=CLERK)
    after = store_snapshot(node.data_dir)
    assert after["case_record"][0] == before["case_record"][0]
    assert after["case_record"][1] != before["case_record"][1]
    assert after["case_event"][0] == before["case_event"][0] + 1
