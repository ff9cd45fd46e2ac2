"""Fees, payments and waivers, the green channel, and the case kind apart from carriage: the pure core.

Expected figures are written from the published rules (发改价格规〔2016〕2559号: the registration
fee 80 yuan a case, the certificate's cost 10 yuan a book, the first book free), not read
from the code.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

import pytest

from govnet.federation.tree import Level
from govnet.node.domain.calendar import CHINA_TZ, WorkCalendar
from govnet.node.domain.catalog import CatalogError, ServiceItem, load_catalog_file, sample_catalog_path
from govnet.node.domain.fees import PaymentMethod, assess, check_method, parse_yuan, yuan
from govnet.node.domain.lifecycle import (
    Action,
    ActionRefused,
    ActParams,
    CaseState,
    CaseType,
    Context,
    InvalidParams,
    Status,
    act,
    allowed_actions,
    classify,
    fees_outstanding,
    intake,
)
from govnet.node.domain.people import Facts, Person, Role, authorize
from govnet.node.domain.statistics import COUNTERS, EventFact, contributions

CATALOG = load_catalog_file(sample_catalog_path())
CAL = WorkCalendar.load()
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=CHINA_TZ)  # a Tuesday
TODAY = date(2026, 3, 10)
COUNTY, VILLAGE = "371102", "371102001201"
REGISTRATION = "ZR-0003"  # transfer registration: 80.00 a case + 10.00 a certificate, the first one free
ID_CARD = "GA-0002"  # 20.00 a card
FREE = "HB-0005"  # no fee
JOINT = "ZJ-0001"  # construction permit: promised 15 days, 7 in the green channel
CLERK = ActParams(actor="窗口-王芳")


def item(code: str) -> ServiceItem:
    found = CATALOG.get(code)
    assert found is not None, code
    return found


def ctx(code: str, now: datetime = NOW) -> Context:
    return Context(item=item(code), node_id=COUNTY, node_level=Level.COUNTY, now=now, calendar=CAL)


def case(code: str, status: Status, **fields: Any) -> CaseState:
    it = item(code)
    base = CaseState(receipt="371102-01-000001-3", item_code=code, case_type=CaseType(it.item_type.value),
                     status=status, origin=COUNTY, owner=COUNTY, owner_epoch=1, submitted_at=NOW, catalog_version=1,
                     materials=tuple(m.name for m in it.materials), event_count=3)
    if status is not Status.RECEIVED:
        base = dataclasses.replace(base, accepted_on=TODAY, due=CAL.due_date(TODAY, it.promised_days),
                                   statutory_due=CAL.due_date(TODAY, it.statutory_days))
    return dataclasses.replace(base, **fields)


def clerk(**params: Any) -> ActParams:
    return dataclasses.replace(CLERK, **params)


# --- money as text and fen ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "fen"), [
    ("80", 8000), ("80.0", 8000), ("80.00", 8000), ("0.5", 50), ("0.01", 1), (" 12.34 ", 1234),
    ("100000000.00", 100_000_000_00),
])
def test_amounts_typed_in_yuan_are_whole_fen(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen
    assert parse_yuan(yuan(fen)) == fen


@pytest.mark.parametrize(("text", "why"), [
    ("-80.00", "negative"), ("80.001", "more than two decimals"), ("80.005", "more than two decimals"),
    ("8e3", "not an amount"), ("1,000.00", "not an amount"), ("", "not an amount"), ("80.", "not an amount"),
    ("nan", "not an amount"), ("¥80", "not an amount"), ("100000000.01", "above"),
])
def test_amounts_that_are_not_money_are_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_yuan(text)


def test_yuan_shows_two_decimals() -> None:
    assert [yuan(f) for f in (0, 1, 50, 8000, 123456, -1050)] == ["0.00", "0.01", "0.50", "80.00", "1234.56", "-10.50"]


@pytest.mark.parametrize(("text", "method"), [
    ("cash", PaymentMethod.CASH), (" WeChat ", PaymentMethod.WECHAT), ("支付宝", PaymentMethod.ALIPAY),
    ("bank", PaymentMethod.BANK), ("card", PaymentMethod.CARD),
])
def test_payment_methods_by_name_or_label(text: str, method: PaymentMethod) -> None:
    assert check_method(text) is method


def test_an_unknown_payment_method_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="'bitcoin' is not one of cash .*alipay"):
        check_method("bitcoin")


# --- what a case owes ------------------------------------------------------------------------------


def test_first_certificate_free_charges_80_not_90() -> None:
    # The published amounts sum to 90.00; the certificate's cost is waived for the first book.
    assert sum(f.amount_fen for f in item(REGISTRATION).fees) == 9000
    assessed = assess(item(REGISTRATION))
    assert assessed.total_fen == 8000
    assert [(line.units, line.free_units, line.due_fen) for line in assessed.lines] == [(1, 0, 8000), (1, 1, 0)]


def test_each_further_unit_is_charged() -> None:
    assert assess(item(REGISTRATION), {"不动产权属证书工本费": 3}).total_fen == 8000 + 2 * 1000
    assert assess(item(REGISTRATION), {"住宅类不动产登记费": 0, "不动产权属证书工本费": 0}).total_fen == 0


@pytest.mark.parametrize(("code", "fen"), [(ID_CARD, 2000), (FREE, 0), (JOINT, 0)])
def test_items_without_free_units_owe_their_published_amounts(code: str, fen: int) -> None:
    assert assess(item(code)).total_fen == fen


@pytest.mark.parametrize(("units", "why"), [({"no such fee": 1}, "has no fee"),
                                            ({"不动产权属证书工本费": -1}, "whole number from 0"),
                                            ({"不动产权属证书工本费": True}, "whole number from 0")])
def test_units_of_fees_are_checked(units: dict[str, Any], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        assess(item(REGISTRATION), units)


def test_the_catalog_checks_free_units_and_green_channel_days() -> None:
    data = item(REGISTRATION).to_dict()
    bad_fee = {**data, "fees": [{**data["fees"][1], "free_units": -1}]}
    with pytest.raises(CatalogError, match="free_units: must be at least 0"):
        ServiceItem.from_dict(bad_fee)
    joint = item(JOINT).to_dict()
    with pytest.raises(CatalogError, match="green_channel_days.*not shorter than promised_days 15"):
        ServiceItem.from_dict({**joint, "green_channel_days": 16})
    immediate = CATALOG.get("HB-0003")
    assert immediate is not None
    with pytest.raises(CatalogError, match="immediate items are decided the same day"):
        ServiceItem.from_dict({**immediate.to_dict(), "green_channel_days": 1})
    # A fee table without free_units is read as before (none free).
    old = {**data, "fees": [{k: v for k, v in f.items() if k != "free_units"} for f in data["fees"]]}
    assert [f.free_units for f in ServiceItem.from_dict(old).fees] == [0, 0]


# --- approval assesses, payment and waiver settle, delivery waits --------------------------------


def test_approval_assesses_what_the_case_owes_and_a_rejection_owes_nothing() -> None:
    approved = act(case(REGISTRATION, Status.UNDER_REVIEW), "approve", CLERK, ctx(REGISTRATION))
    assert (approved.case.fees_due_fen, fees_outstanding(approved.case)) == (8000, 8000)
    assert approved.event.detail["fees_due_fen"] == 8000
    rejected = act(case(REGISTRATION, Status.UNDER_REVIEW), "reject", clerk(reason="权属不清"), ctx(REGISTRATION))
    assert (rejected.case.fees_due_fen, fees_outstanding(rejected.case)) == (0, 0)
    free = act(case(FREE, Status.UNDER_REVIEW), "approve", CLERK, ctx(FREE))
    assert free.case.fees_due_fen == 0 and "fees_due_fen" not in free.event.detail


def test_delivery_waits_until_the_fees_are_paid() -> None:
    owed = case(REGISTRATION, Status.COMPLETED, fees_due_fen=8000)
    assert "deliver" not in allowed_actions(owed) and "pay" in allowed_actions(owed)
    with pytest.raises(ActionRefused, match="fees of 80.00 yuan are due: record the payment"):
        act(owed, "deliver", CLERK, ctx(REGISTRATION))
    part = act(owed, "pay", clerk(amount_fen=5000, method="cash", number="SF-001"), ctx(REGISTRATION))
    assert (part.case.fees_paid_fen, fees_outstanding(part.case)) == (5000, 3000)
    assert dict(part.event.detail) == {"amount_fen": 5000, "method": "cash", "number": "SF-001",
                                       "outstanding_fen": 3000}
    assert part.case.status is Status.COMPLETED
    with pytest.raises(ActionRefused, match="30.00 yuan are due"):
        act(part.case, "deliver", CLERK, ctx(REGISTRATION))
    rest = act(part.case, "pay", clerk(amount_fen=3000, method="wechat", number="4200001234"), ctx(REGISTRATION))
    assert fees_outstanding(rest.case) == 0 and "pay" not in allowed_actions(rest.case)
    assert act(rest.case, "deliver", CLERK, ctx(REGISTRATION)).case.status is Status.DELIVERED


def test_a_waiver_settles_what_is_left_and_needs_its_reason() -> None:
    owed = case(REGISTRATION, Status.APPROVED, fees_due_fen=8000, fees_paid_fen=2000)
    with pytest.raises(InvalidParams, match="a waiver needs its reason"):
        act(owed, "waive_fee", CLERK, ctx(REGISTRATION))
    waived = act(owed, "waive_fee", clerk(reason="最低生活保障对象免收（发改价格规〔2016〕2559号）"), ctx(REGISTRATION))
    assert waived.case.fees_waived and fees_outstanding(waived.case) == 0
    assert dict(waived.event.detail) == {"waived_fen": 6000}
    completed = act(waived.case, "complete", CLERK, ctx(REGISTRATION)).case
    assert act(completed, "deliver", CLERK, ctx(REGISTRATION)).case.status is Status.DELIVERED


@pytest.mark.parametrize(("params", "error", "why"), [
    (clerk(amount_fen=9000, method="cash", number="SF-1"), ActionRefused, "90.00 yuan is more than the 80.00"),
    (clerk(amount_fen=0, method="cash", number="SF-1"), InvalidParams, "above 0"),
    (clerk(amount_fen=-100, method="cash", number="SF-1"), InvalidParams, "above 0"),
    (clerk(amount_fen=8000, method="bitcoin", number="SF-1"), InvalidParams, "is not one of cash"),
    (clerk(amount_fen=8000, method="cash", number=" "), InvalidParams, "needs its number"),
])
def test_a_payment_that_does_not_fit_is_refused_and_changes_nothing(params: ActParams, error: type[Exception],
                                                                     why: str) -> None:
    owed = case(REGISTRATION, Status.COMPLETED, fees_due_fen=8000)
    before = dataclasses.replace(owed)
    with pytest.raises(error, match=why):
        act(owed, "pay", params, ctx(REGISTRATION))
    assert owed == before


def test_nothing_to_pay_or_waive_on_a_free_or_settled_case() -> None:
    for settled, why in ((case(FREE, Status.COMPLETED), "no fees are due"),
                         (case(REGISTRATION, Status.COMPLETED, fees_due_fen=8000, fees_paid_fen=8000), "settled")):
        for action, params in (("pay", clerk(amount_fen=100, method="cash", number="1")),
                               ("waive_fee", clerk(reason="免收"))):
            with pytest.raises(ActionRefused, match=why):
                act(settled, action, params, ctx(settled.item_code))


def test_waiving_is_the_signing_officers_and_paying_a_clerks() -> None:
    clerk_ = Person("wang", "王芳", COUNTY, frozenset({Role.WINDOW_CLERK}), ("自然资源和规划局",))
    chief = Person("li", "李强", COUNTY, frozenset({Role.CHIEF_REPRESENTATIVE}), ("自然资源和规划局",))
    facts = Facts(department="自然资源和规划局")
    assert authorize(clerk_, Action.PAY, facts) is None
    assert "waive_fee needs role 首席代表" in str(authorize(clerk_, Action.WAIVE_FEE, facts))
    assert authorize(chief, Action.WAIVE_FEE, facts) is None


# --- the green channel ----------------------------------------------------------------------------


def test_the_green_channel_needs_a_reason_and_is_flagged_once() -> None:
    received = case(JOINT, Status.RECEIVED)
    with pytest.raises(InvalidParams, match="needs its reason"):
        act(received, "green_channel", CLERK, ctx(JOINT))
    flagged = act(received, "green_channel", clerk(reason="市重点项目：新能源产业园"), ctx(JOINT))
    assert flagged.case.green_channel and flagged.case.status is Status.RECEIVED
    assert "green_channel" not in allowed_actions(flagged.case)
    with pytest.raises(ActionRefused, match="already in the green channel"):
        act(flagged.case, "green_channel", clerk(reason="again"), ctx(JOINT))


def test_a_green_case_accepted_takes_the_items_shorter_limit() -> None:
    plain = act(case(JOINT, Status.RECEIVED), "accept", CLERK, ctx(JOINT)).case
    green = act(case(JOINT, Status.RECEIVED, green_channel=True), "accept", CLERK, ctx(JOINT))
    assert plain.due == CAL.due_date(TODAY, 15)
    assert green.case.due == CAL.due_date(TODAY, 7) < plain.due
    assert green.event.detail["promised_days"] == 7 and green.event.detail["green_channel"] is True


def test_flagging_a_running_case_shortens_its_due_date_counting_stopped_days() -> None:
    running = case(JOINT, Status.JOINT_REVIEW, paused_days=2)
    running = dataclasses.replace(running, due=CAL.due_date(TODAY, 15, 2))
    later = datetime(2026, 3, 12, 9, 0, tzinfo=CHINA_TZ)
    done = act(running, "green_channel", clerk(reason="省重点项目"), ctx(JOINT, later))
    assert done.case.due == CAL.due_date(TODAY, 7, 2)
    assert done.event.detail == {"due": CAL.due_date(TODAY, 7, 2).isoformat(),
                                 "was_due": CAL.due_date(TODAY, 15, 2).isoformat()}


def test_a_suspended_case_may_be_flagged_and_its_pause_still_counts() -> None:
    suspended = case(JOINT, Status.JOINT_REVIEW, pause_started=TODAY)
    flagged = act(suspended, "green_channel", clerk(reason="重点项目"), ctx(JOINT)).case
    assert flagged.due == CAL.due_date(TODAY, 7)
    later = datetime(2026, 3, 13, 9, 0, tzinfo=CHINA_TZ)  # three working days stood still
    resumed = act(flagged, "resume", clerk(kind="hearing"), ctx(JOINT, later)).case
    assert resumed.due == CAL.due_date(TODAY, 7, 3)


def test_an_item_without_a_green_limit_keeps_its_due_date() -> None:
    running = case(FREE, Status.UNDER_REVIEW)
    done = act(running, "green_channel", clerk(reason="重点项目"), ctx(FREE))
    assert done.case.green_channel and done.case.due == running.due and dict(done.event.detail) == {}


def test_the_green_channel_is_for_chief_representatives_and_supervisors() -> None:
    dept = Facts(department="住房和城乡建设局")
    people = {
        Role.WINDOW_CLERK: Person("w", "w", COUNTY, frozenset({Role.WINDOW_CLERK}), ("住房和城乡建设局",)),
        Role.CHIEF_REPRESENTATIVE: Person("c", "c", COUNTY, frozenset({Role.CHIEF_REPRESENTATIVE}), ("住房和城乡建设局",)),
        Role.SUPERVISOR: Person("s", "s", COUNTY, frozenset({Role.SUPERVISOR})),
    }
    assert [authorize(p, Action.GREEN_CHANNEL, dept) is None for p in people.values()] == [False, True, True]
    other = Person("c2", "c2", COUNTY, frozenset({Role.CHIEF_REPRESENTATIVE}), ("民政局",))
    assert authorize(other, Action.GREEN_CHANNEL, dept) is not None  # only for its own department


# --- kind and carriage --------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "level", "agent", "kind"), [
    ("WJ-0004", Level.VILLAGE, True, CaseType.IMMEDIATE),  # decided at the village, carried there
    ("HB-0002", Level.VILLAGE, True, CaseType.ESCALATED),  # decided above: escalated, carried or not
    ("HB-0002", Level.VILLAGE, False, CaseType.ESCALATED),
    (JOINT, Level.COUNTY, True, CaseType.JOINT),  # a joint item stays joint when an agent carries it
    ("HB-0003", Level.COUNTY, True, CaseType.IMMEDIATE),
    ("HB-0003", Level.COUNTY, False, CaseType.IMMEDIATE),
])
def test_the_kind_follows_the_item_and_the_level_never_the_agent(code: str, level: Level, agent: bool,
                                                                 kind: CaseType) -> None:
    it = item(code)
    assert classify(it, level, agent) is kind
    node = VILLAGE if level is Level.VILLAGE else COUNTY
    if it.authority_level.rank > level.rank:
        return  # not received at this level
    done = intake(receipt="r", item=it, node_id=node, node_level=level, now=NOW, catalog_version=1,
                  materials=[m.name for m in it.materials], agent="李代办" if agent else "", actor="李代办")
    assert (done.case.case_type, done.case.carried) == (kind, agent)
    assert done.event.detail["case_type"] == kind.value  # what the statistics count at intake


def test_classify_never_gives_the_deprecated_proxy_kind() -> None:
    kinds = {classify(i, lvl, True) for i in CATALOG for lvl in Level if lvl.rank >= i.authority_level.rank}
    assert CaseType.PROXY not in kinds


# --- what statistics count -----------------------------------------------------------------------


def fact(action: str, **kw: Any) -> EventFact:
    return EventFact(action=action, happened_on=TODAY, item_code=REGISTRATION, department="自然资源和规划局", **kw)


@pytest.mark.parametrize(("event", "expected"), [
    (fact("submit", agent="李代办", case_type="joint"), {"received": 1, "carried": 1, "kind_joint": 1}),
    (fact("submit", case_type="escalated"), {"received": 1, "kind_escalated": 1}),
    (fact("submit", agent="李代办", case_type="proxy"), {"received": 1, "carried": 1}),  # an older node's kind
    (fact("pay", fees_fen=5000), {"fees_collected_fen": 5000}),
    (fact("waive_fee", fees_fen=3000), {"fees_waived_fen": 3000}),
    (fact("waive_fee"), {}),
    (fact("green_channel"), {"green_channel": 1}),
    (fact("complete", decision="approved", fees_fen=8000), {"completed": 1, "fees_fen": 8000}),
])
def test_carriage_kinds_fees_and_the_green_channel_are_counted(event: EventFact, expected: dict[str, int]) -> None:
    assert contributions(event, CAL) == expected
    assert set(expected) <= set(COUNTERS)
