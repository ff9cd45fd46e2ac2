"""The limits at the edge, over real gRPC (issue #11, points 1 and 3).

* An over-long note and a name made of a zero-width space are refused with INVALID_ARGUMENT,
  naming the field, and nothing is stored.
* The largest case the limits allow: every field at its limit, a history as long as the case
  budget lets it grow (a supplement round of every material, an extension, suspensions), then
  escalated from a county to the city over a real link. Every answer arrives (no
  RESOURCE_EXHAUSTED), the next suspension is refused as FAILED_PRECONDITION once the case is
  full, the hand-over reaches the city, whose ``Get`` shows the whole case, and the city can
  still decide, complete and deliver it and the applicant rate it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from govnet.node.app.desk import DeskError, SubmitCommand
from govnet.node.domain import limits
from govnet.node.domain.catalog import Catalog, Material, load_catalog_file, sample_catalog_path
from govnet.node.domain.lifecycle import ActParams
from govnet.node.domain.messages import TransferMessage
from govnet.node.domain.people import ALL_DEPARTMENTS, Role
from govnet.node.rpc.client import ClientError, GovnetClient
from govnet.node.store import replicas
from govnet.node.store.cases import load_case_row

from support.accounts import staff, start_in_process
from support.helpers import CLERK, ID_NUMBER, PHONE, submit, wait_for
from support.inprocess import BackgroundLoop, InProcessNode, in_process_nodes

S = grpc.StatusCode
CITY, COUNTY = "371100", "371102"
BIG = "HB-9001"


@pytest.fixture
def nodes(loop: BackgroundLoop, tmp_path: Path) -> Iterator[Callable[..., InProcessNode]]:
    """Nodes on the real clock, their links flushing at once."""
    yield from in_process_nodes(loop, tmp_path, {"flush_interval_s": 0.05, "digest_interval_s": 30.0},
                                start=start_in_process)


def catalog_with_the_biggest_item() -> Catalog:
    """The sample catalog and one city item whose 50 materials have names of 100 characters."""
    sample = load_catalog_file(sample_catalog_path())
    base = next(i for i in sample.items if i.code == "HB-0001")
    materials = tuple(Material(name=f"材料{n:02d}" + "环" * (limits.MATERIAL - 4), core=n < 2)
                      for n in range(limits.MATERIALS))
    big = dataclasses.replace(base, code=BIG, materials=materials)
    return Catalog(items=(*sample.items, big), issuer=sample.issuer)


def encoded_size(node: InProcessNode, receipt: str) -> int:
    """The case as its hand-over carries it, in bytes."""
    with node.store.reading() as s:
        row = load_case_row(s, receipt)
        assert row is not None
        return len(TransferMessage(*replicas.whole_case(s, row)).encode())


def test_over_long_note_and_invisible_name_are_refused_naming_the_field(nodes) -> None:
    county = nodes(COUNTY, "county", "127.0.0.1:1")
    with GovnetClient(county.address) as c:
        c.put_catalog(load_catalog_file(sample_catalog_path()))
        before = len(c.list().cases)
        with pytest.raises(ClientError) as info:
            submit(c, "HB-0005", note="注" * 3_001)
        assert info.value.code is S.INVALID_ARGUMENT
        assert str(info.value) == "note is 3,001 characters; at most 2,000 are allowed"
        with pytest.raises(ClientError) as info:
            submit(c, "HB-0005", name="\u200b")
        assert info.value.code is S.INVALID_ARGUMENT and "invisible character (U+200B" in str(info.value)
        assert len(c.list().cases) == before

    # The same refusals carry the request's field path (what the RPC layer reports as a field violation).
    desk = county.node.core.desk
    cmd = SubmitCommand(idempotency_key="k1", item_code="HB-0005", applicant_name="张三", applicant_id=ID_NUMBER,
                        applicant_phone=PHONE, materials=("申请表",), actor=CLERK)
    for change, field in [({"note": "注" * 3_001}, "note"), ({"applicant_name": "\u200b"}, "applicant.name"),
                          ({"materials": ("申请表", "x" * 101)}, "materials[1]"), ({"actor": "\ufeff"}, "actor"),
                          ({"item_code": " "}, "item_code"), ({"idempotency_key": ""}, "idempotency_key")]:
        with pytest.raises(DeskError) as refused:
            county.loop.run(desk.submit(dataclasses.replace(cmd, **change)))
        assert (refused.value.kind, refused.value.field) == ("invalid", field), str(refused.value)
    with GovnetClient(county.address) as c:
        assert len(c.list().cases) == before
        done = submit(c, "HB-0005")
        receipt = done.case.receipt
        events = len(c.get(receipt).events)
    for action, params, field in [
        ("return", ActParams(actor=CLERK, reason="理" * 1_001), "reason"),
        ("accept", ActParams(actor=CLERK, materials=("申请表",) * 51), "materials"),
        ("accept", ActParams(actor=CLERK, materials=("申请表", "表", "x" * 101)), "materials[2]"),
        ("accept", ActParams(actor=" \u200b"), "actor"),
        ("", ActParams(actor=CLERK), "action"),
        ("extend", ActParams(actor=CLERK, reason="r", approver="局\u202e长"), "approver"),
        ("return", ActParams(actor=CLERK, reason="原因\x00"), "reason"),
    ]:
        with pytest.raises(DeskError) as refused:
            county.loop.run(desk.act(receipt, action, params))
        assert (refused.value.kind, refused.value.field) == ("invalid", field), str(refused.value)
        assert len(str(refused.value)) < 200
    with pytest.raises(DeskError) as refused:
        county.loop.run(desk.act("", "accept", ActParams(actor=CLERK)))
    assert refused.value.field == "receipt"
    with GovnetClient(county.address) as c:
        # Supervision and complaints refuse by the same limits, over gRPC.
        for call, message in [
            (lambda: c.suspend(receipt, kind="hearing", days=3, reason="理" * 1_001, actor=CLERK),
             "reason is 1,001 characters; at most 1,000 are allowed"),
            (lambda: c.rectify(receipt, note="整改\u202e"), "note contains"),
            (lambda: c.file_complaint("投" * 1_001, receipt=receipt), "text is 1,001 characters; at most 1,000"),
        ]:
            with pytest.raises(ClientError) as info:
                call()
            assert info.value.code is S.INVALID_ARGUMENT and message in str(info.value), str(info.value)
        assert len(c.get(receipt).events) == events
    with GovnetClient(county.address, token="") as applicant:  # the applicant's own channel: the receipt's code
        with pytest.raises(ClientError) as info:
            applicant.evaluate(receipt, "satisfied", "评" * 501, rating_code=done.rating_code)
        assert info.value.code is S.INVALID_ARGUMENT and "comment is 501 characters; at most 500" in str(info.value)


def test_the_largest_case_the_limits_allow_is_answered_and_handed_over(nodes) -> None:
    city = nodes(CITY, "city")
    county = nodes(COUNTY, "county", city.address)
    with GovnetClient(city.address) as c:
        c.put_catalog(catalog_with_the_biggest_item())
    # Events record the signed-in person as 'login (name)': one whose record takes the whole actor limit.
    login, name = "clerk", "王" * (limits.PERSON - len("clerk ()"))
    roles = (Role.WINDOW_CLERK, Role.CHIEF_REPRESENTATIVE)
    c = staff(county, login, roles, ALL_DEPARTMENTS, name=name)
    wait_for(lambda: any(i.code == BIG for i in c.list_items().items), 15, lambda: "the catalog did not arrive")

    actor, reason = f"{login} ({name})", "理" * limits.REASON
    assert len(actor) == limits.PERSON
    names = [m.name for m in catalog_with_the_biggest_item().get(BIG).materials]  # type: ignore[union-attr]
    done = c.submit(idempotency_key="k" * limits.KEY, item_code=BIG, name="欧" * limits.PERSON, id_number=ID_NUMBER,
                    phone=PHONE, materials=names, agent="代" * limits.PERSON, note="注" * limits.NOTE, actor=actor)
    receipt = done.case.receipt
    c.act(receipt, "accept", actor=actor, reason=reason)
    c.act(receipt, "review", actor=actor, reason=reason)
    c.act(receipt, "extend", actor=actor, reason=reason, approver="局" * limits.PERSON)
    c.act(receipt, "request_supplement", actor=actor, reason=reason, materials=names)
    c.act(receipt, "supplement", actor=actor, reason=reason, materials=names)

    # Suspensions until the case is full: every answer arrives, and the step that would overfill it is refused.
    refused = None
    for _ in range(200):
        try:
            c.suspend(receipt, kind="expert_review", days=5, reason=reason, actor=actor)
        except ClientError as exc:
            refused = exc
            break
        c.resume(receipt, actor=actor)
    assert refused is not None and refused.code is S.FAILED_PRECONDITION, refused
    assert f"case {receipt} is full" in str(refused) and len(str(refused)) < 300
    full = c.get(receipt)
    assert full.status == "under_review" and len(full.events) > 25

    # What the desk predicted is what was stored: full to within one suspension, never past its budget.
    assert limits.RECORD_CASE_BYTES - 4_000 < encoded_size(county, receipt) <= limits.RECORD_CASE_BYTES

    acted = c.act_response(receipt, "escalate", actor=actor)
    assert acted.case.status == "escalated" and acted.case.owner == CITY
    assert encoded_size(county, receipt) <= limits.PROGRESS_CASE_BYTES

    with staff(city, login, roles, ALL_DEPARTMENTS, name=name) as at_city:
        def arrived() -> bool:
            try:
                case = at_city.get(receipt)
            except ClientError:
                return False
            return case.owner == CITY and any(e.action == "take_over" for e in case.events)

        wait_for(arrived, 20, lambda: "the hand-over did not reach the city")
        case = at_city.get(receipt)
        assert case.applicant.name == "欧" * limits.PERSON and len(case.materials) == limits.MATERIALS
        assert len(case.events) == len(acted.case.events) + 1  # the whole history, and its take-over
        # A full case can still be decided and closed by its owner, each step at its limits.
        for action in ("review", "approve", "complete", "deliver"):
            assert at_city.act(receipt, action, actor=actor, reason=reason).status != "escalated"
        # Rated where the applicant applied, once the delivery has come back there.
        wait_for(lambda: c.get(receipt).status == "delivered", 20, lambda: "the delivery did not come back")
        with GovnetClient(county.address, token="") as applicant:
            rated = applicant.evaluate(receipt, "dissatisfied", "评" * limits.COMMENT, rating_code=done.rating_code)
        assert rated.rating == "dissatisfied"
    c.close()
