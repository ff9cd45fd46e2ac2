"""The wire form of every envelope kind, pinned byte for byte (``node.domain.messages``).

A golden value per kind: if one of these tests fails, the bytes nodes exchange changed. That
is allowed only as a deliberate, versioned act (see the module docstring of
``node.domain.messages``): old nodes and old stored envelopes must still be understood.
The golden values are the bytes nodes wrote before payloads were typed (``case_dict`` over
the case's row, JSON with sorted keys, compact, UTF-8).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from govnet.node.domain.messages import (
    CASE_FIELDS,
    EVENT_FIELDS,
    MESSAGES,
    AncestorRestoredMessage,
    ApplicantMessage,
    AuditHeadMessage,
    CalendarMessage,
    CaseEvent,
    CaseSnapshot,
    CatalogMessage,
    CertificatesMessage,
    ComplaintCopy,
    ComplaintMessage,
    CopyMessage,
    CustodyMessage,
    EventMessage,
    MessageError,
    Personal,
    RectificationMessage,
    RequestMessage,
    RestoredMessage,
    RevocationMessage,
    StatsMessage,
    StatsReportPart,
    StatsRowPart,
    SummaryMessage,
    TransferMessage,
    decode_message,
)
from govnet.node.domain.sealed import Sealed
from govnet.node.domain.statistics import COUNTERS

CASE = CaseSnapshot(
    receipt="371102001201-20260310-0001", item_code="MZ-0005", item_name="农村低保申请", department="民政局",
    case_type="escalated", status="escalated", origin="371102001201", owner="371102001", owner_epoch=2,
    agent="李代办", materials='["身份证","户口簿"]', missing_core="[]", pending_materials="[]",
    requested_materials="[]", joint="[]", submitted_at="2026-03-10T01:00:00.000000+00:00",
    accepted_on="2026-03-10", decided_on=None, due="2026-03-24", statutory_due="2026-04-07",
    supplement_due=None, issue_due=None, pause_started=None, paused_days=0, extended=False, decision="",
    decision_reason="", notice="", catalog_version=3, catalog_issuer="371100", possible_duplicate=False,
    duplicate_of="", event_count=3, updated_at="2026-03-10T01:05:00.000000+00:00",
    personal=Personal("王芳", "371102199001011234", "13800000000"),
)
EVENTS = (
    CaseEvent("371102001201-20260310-0001", 2, "escalate", "accepted", "escalated", "李代办", "", "{}",
              "2026-03-10T01:04:00.000000+00:00", "2026-03-10T01:04:00.000000+00:00", "371102001201", 1, 7),
    CaseEvent("371102001201-20260310-0001", 3, "hand_over", "escalated", "escalated", "李代办", "",
              '{"epoch": 2, "to": "371102001"}', "2026-03-10T01:05:00.000000+00:00",
              "2026-03-10T01:05:00.000000+00:00", "371102001201", 1, 8),
)
COMPLAINT = ComplaintCopy(
    complaint_id="371102001201-1-4", receipt="371102001201-20260310-0001", about_node="371102001", item_code="MZ-0005",
    department="民政局", filed_at_node="371102001201", supervisor="371102", text="等了很久没有答复",
    filed_at="2026-03-12T02:00:00.000000+00:00", filed_on="2026-03-12", due="2026-03-19", status="open",
    resolved_on=None, resolution="", resolved_by="", version=1, updated_at="2026-03-12T02:00:00.000000+00:00",
)
SAMPLES = {
    "transfer": TransferMessage(CASE, EVENTS),
    "transfer (recovery)": TransferMessage(CASE, EVENTS, recovery=True),
    "copy": CopyMessage(CASE, EVENTS),
    "custody (sealed)": CustodyMessage(CASE.with_personal(Sealed("371102001201", "QQ==", "Tg==", "Qg==")), EVENTS),
    "event": EventMessage(CASE.public(), EVENTS[1:]),
    "summary": SummaryMessage(CASE.public()),
    "request": RequestMessage("371102001201-20260310-0001", "supplement", {"actor": "applicant", "materials": ["收入证明"]},
                              "371102001201", "2026-03-11T03:00:00.000000+00:00"),
    "restored": RestoredMessage("371102001201"),
    "ancestor_restored": AncestorRestoredMessage("371102"),
    "catalog": CatalogMessage(4, "371100", ({"code": "MZ-0005", "name": "农村低保申请", "promised_days": 10},)),
    "complaint": ComplaintMessage(COMPLAINT),
    "revocation": RevocationMessage("371100", 3, "-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n"),
    "certificates": CertificatesMessage("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
    "transfer (sealed)": TransferMessage(CASE.with_personal(Sealed("371102", "QQ==", "Tg==", "Qg==")), EVENTS),
    "applicant": ApplicantMessage("371102001201-20260310-0001", Sealed("371102", "QQ==", "Tg==", "Qg==")),
    "calendar": CalendarMessage(2027, "371100", 'year = 2027\nholidays = ["2027-01-01"]\n',
                                "2026-12-01T02:00:00.000000+00:00"),
}
SAMPLES["stats"] = StatsMessage(
    StatsReportPart("371102001201", (1 << 32) + 5, "2026-03-10T16:00:00.000000+00:00", ()),
    (StatsRowPart("371102001201", "2026-03-10", "MZ-0005", "民政局", {**dict.fromkeys(COUNTERS, 0), "received": 2,
                                                                      "escalated": 1}, (1 << 32) + 5,
                  "2026-03-10T16:00:00.000000+00:00"),),
)

SAMPLES["rectification"] = RectificationMessage(
    "371102001201-20260310-0001", "371102001", "MZ-0005", "民政局", "dissatisfied", "2026-03-20T02:00:00.000000+00:00",
    "2026-04-10", "", "2026-03-20T02:00:00.000000+00:00")

SAMPLES["audit"] = AuditHeadMessage("371102001201", 2, "sha256", 12, "ab" * 32, 9, "cd" * 32)

CASE_WHOLE = (
    '{"accepted_on":"2026-03-10","agent":"李代办","applicant_id":"371102199001011234","applicant_name":"王芳",'
    '"applicant_phone":"13800000000","case_type":"escalated","catalog_issuer":"371100",'
    '"catalog_version":3,"decided_on":null,"decision":"","decision_reason":"","department":"民政局",'
    '"due":"2026-03-24","duplicate_of":"","event_count":3,"extended":false,"fees_due_fen":0,"fees_paid_fen":0,'
    '"fees_waived":false,"green_channel":false,"issue_due":null,'
    '"item_code":"MZ-0005","item_name":"农村低保申请","joint":"[]","materials":"[\\"身份证\\",\\"户口簿\\"]",'
    '"missing_core":"[]","notice":"","origin":"371102001201","owner":"371102001","owner_epoch":2,'
    '"pause_started":null,"paused_days":0,"pending_materials":"[]","possible_duplicate":false,'
    '"receipt":"371102001201-20260310-0001","requested_materials":"[]","status":"escalated",'
    '"statutory_due":"2026-04-07","submitted_at":"2026-03-10T01:00:00.000000+00:00",'
    '"supplement_due":null,"updated_at":"2026-03-10T01:05:00.000000+00:00"}'
).encode()
CASE_PUBLIC = (
    '{"accepted_on":"2026-03-10","agent":"李代办","case_type":"escalated","catalog_issuer":"371100",'
    '"catalog_version":3,"decided_on":null,"decision":"","decision_reason":"","department":"民政局",'
    '"due":"2026-03-24","duplicate_of":"","event_count":3,"extended":false,"fees_due_fen":0,"fees_paid_fen":0,'
    '"fees_waived":false,"green_channel":false,"issue_due":null,'
    '"item_code":"MZ-0005","item_name":"农村低保申请","joint":"[]","materials":"[\\"身份证\\",\\"户口簿\\"]",'
    '"missing_core":"[]","notice":"","origin":"371102001201","owner":"371102001","owner_epoch":2,'
    '"pause_started":null,"paused_days":0,"pending_materials":"[]","possible_duplicate":false,'
    '"receipt":"371102001201-20260310-0001","requested_materials":"[]","status":"escalated",'
    '"statutory_due":"2026-04-07","submitted_at":"2026-03-10T01:00:00.000000+00:00",'
    '"supplement_due":null,"updated_at":"2026-03-10T01:05:00.000000+00:00"}'
).encode()
EVENT_2 = (
    '{"action":"escalate","actor":"李代办","detail":"{}","from_status":"accepted",'
    '"happened_at":"2026-03-10T01:04:00.000000+00:00","origin":"371102001201","origin_incarnation":1,'
    '"origin_seq":7,"reason":"","receipt":"371102001201-20260310-0001",'
    '"recorded_at":"2026-03-10T01:04:00.000000+00:00","seq":2,"superseded":false,"to_status":"escalated"}'
).encode()
EVENT_3 = (
    '{"action":"hand_over","actor":"李代办","detail":"{\\"epoch\\": 2, \\"to\\": \\"371102001\\"}",'
    '"from_status":"escalated","happened_at":"2026-03-10T01:05:00.000000+00:00","origin":"371102001201",'
    '"origin_incarnation":1,"origin_seq":8,"reason":"","receipt":"371102001201-20260310-0001",'
    '"recorded_at":"2026-03-10T01:05:00.000000+00:00","seq":3,"superseded":false,"to_status":"escalated"}'
).encode()
REQUEST = (
    '{"action":"supplement","params":{"actor":"applicant","materials":["收入证明"]},'
    '"receipt":"371102001201-20260310-0001","requested_at":"2026-03-11T03:00:00.000000+00:00",'
    '"requested_by":"371102001201"}'
).encode()
RESTORED = (
    b'{"subtree":"371102001201"}'
)
CATALOG = (
    '{"issuer":"371100","items":[{"code":"MZ-0005","name":"农村低保申请","promised_days":10}],"version":4}'
).encode()
COMPLAINT = (
    '{"complaint":{"about_node":"371102001","complaint_id":"371102001201-1-4","department":"民政局",'
    '"due":"2026-03-19","filed_at":"2026-03-12T02:00:00.000000+00:00","filed_at_node":"371102001201",'
    '"filed_on":"2026-03-12","item_code":"MZ-0005","receipt":"371102001201-20260310-0001",'
    '"resolution":"","resolved_by":"","resolved_on":null,"status":"open","supervisor":"371102",'
    '"text":"等了很久没有答复","updated_at":"2026-03-12T02:00:00.000000+00:00","version":1}}'
).encode()
STATS = (
    '{"report":{"as_of":"2026-03-10T16:00:00.000000+00:00","children":[],"node":"371102001201",'
    '"version":4294967301},"rows":[{"accepted":0,"carried":0,"complaints":0,"completed":0,'
    '"computed_at":"2026-03-10T16:00:00.000000+00:00","day":"2026-03-10","department":"民政局",'
    '"escalated":1,"eval_basically_satisfied":0,"eval_dissatisfied":0,"eval_satisfied":0,'
    '"eval_very_dissatisfied":0,"eval_very_satisfied":0,"fees_collected_fen":0,"fees_fen":0,'
    '"fees_waived_fen":0,"green_channel":0,"immediate":0,"item_code":"MZ-0005","kind_escalated":0,'
    '"kind_immediate":0,"kind_joint":0,"kind_promised":0,'
    '"node":"371102001201","on_time":0,"overdue":0,"processing_days":0,"received":2,"returned":0,'
    '"supplement_requests":0,"version":4294967301,"warnings":0}]}'
).encode()
AUDIT = (
    b'{"algorithm":"sha256","checkpoint_count":9,"checkpoint_hash":"' + b"cd" * 32 + b'","count":12,'
    b'"head":"' + b"ab" * 32 + b'","incarnation":2,"node":"371102001201"}'
)

CERTIFICATES = b'{"bundle":"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n"}'
SEALED = (b'"sealed_applicant":{"box":"Qg==","key":"QQ==","nonce":"Tg==","scheme":"p256-hkdf-sha256-aes256gcm",'
          b'"to":"371102"}')
REVOCATION = b'{"bundle":"-----BEGIN X509 CRL-----\\nMIIB\\n-----END X509 CRL-----\\n","issuer":"371100","number":3}'

GOLDEN: dict[str, bytes] = {
    "transfer": b'{"case":' + CASE_WHOLE + b',"events":[' + EVENT_2 + b"," + EVENT_3 + b"]}",
    "transfer (recovery)": b'{"case":' + CASE_WHOLE + b',"events":[' + EVENT_2 + b"," + EVENT_3 + b'],"recovery":true}',
    "copy": b'{"case":' + CASE_WHOLE + b',"events":[' + EVENT_2 + b"," + EVENT_3 + b"]}",
    "custody (sealed)": b'{"case":' + CASE_PUBLIC.replace(b'"status":', SEALED.replace(b'"371102"', b'"371102001201"')
                                                          + b',"status":') + b',"events":[' + EVENT_2 + b"," + EVENT_3
    + b"]}",
    "event": b'{"case":' + CASE_PUBLIC + b',"events":[' + EVENT_3 + b"]}",
    "summary": b'{"case":' + CASE_PUBLIC + b"}",
    "request": REQUEST,
    "restored": RESTORED,
    "ancestor_restored": b'{"node":"371102"}',
    "catalog": CATALOG,
    "complaint": COMPLAINT,
    "stats": STATS,
    "audit": AUDIT,
    "revocation": REVOCATION,
    "certificates": CERTIFICATES,
    "applicant": b'{"receipt":"371102001201-20260310-0001",' + SEALED + b"}",
    "rectification": '{"closed_on":"","department":"民政局","due":"2026-04-10","item_code":"MZ-0005",'
    '"opened_at":"2026-03-20T02:00:00.000000+00:00","owner":"371102001","rating":"dissatisfied",'
    '"receipt":"371102001201-20260310-0001","updated_at":"2026-03-20T02:00:00.000000+00:00"}'.encode(),
    "calendar": b'{"issuer":"371100","published_at":"2026-12-01T02:00:00.000000+00:00",'
                b'"schedule":"year = 2027\\nholidays = [\\"2027-01-01\\"]\\n","year":2027}',
    "transfer (sealed)": b'{"case":' + CASE_PUBLIC.replace(b'"status":', SEALED + b',"status":') + b',"events":[' + EVENT_2 + b"," + EVENT_3
    + b"]}",
}


def test_every_kind_has_a_golden_value() -> None:
    assert {name.split(" ")[0] for name in GOLDEN} == set(MESSAGES) == {m.KIND for m in SAMPLES.values()}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_the_bytes_of_each_kind_are_pinned(name: str) -> None:
    assert SAMPLES[name].encode() == GOLDEN[name]


@pytest.mark.parametrize("name", list(GOLDEN))
def test_each_kind_round_trips(name: str) -> None:
    message = SAMPLES[name]
    decoded = decode_message(message.KIND, GOLDEN[name])
    assert decoded == message
    assert decoded.encode() == GOLDEN[name]


def test_personal_data_travels_only_in_transfers_and_copies() -> None:
    for name, data in GOLDEN.items():
        clear = name.split(" ")[0] in ("transfer", "copy") and "sealed" not in name  # a sealed one: only the box
        assert ("王芳" in data.decode()) == clear, name
    # A summary or an event made from a whole case leaves it out.
    assert SummaryMessage(CASE).encode() == GOLDEN["summary"]
    assert EventMessage.decode(GOLDEN["transfer"]).case.personal is None


def test_a_column_added_to_the_table_does_not_change_the_wire() -> None:
    columns = {**CASE.to_dict(), "new_column": "anything"}
    assert TransferMessage(CaseSnapshot.from_dict(columns), EVENTS).encode() == GOLDEN["transfer"]


def test_older_and_newer_senders_are_understood() -> None:
    # Written with other JSON spacing (as older tools did), without a field added since
    # (catalog_issuer), and with a field this code does not know yet.
    case = {k: v for k, v in CASE.public().to_dict().items() if k != "catalog_issuer"}
    data = json.dumps({"case": {**case, "priority_lane": "green"}}).encode()
    decoded = SummaryMessage.decode(data)
    assert decoded.case == CaseSnapshot.from_dict({**case, "catalog_issuer": ""})
    stats = json.loads(GOLDEN["stats"])
    del stats["rows"][0]["fees_fen"]  # a counter an older sender did not count yet reads as 0
    assert StatsMessage.decode(json.dumps(stats).encode()).rows[0].counters["fees_fen"] == 0


@pytest.mark.parametrize(("kind", "payload", "problem"), [
    ("transfer", b"not json", "not JSON"),
    ("transfer", b"[1, 2]", "not a JSON object"),
    ("transfer", b'{"events": []}', "lacks 'case'"),
    ("event", b'{"case": {"receipt": "R"}, "events": []}', "lacks"),
    ("summary", b'{"case": {}}', "lacks 'receipt'"),
    ("copy", b'{"case": ' + CASE_WHOLE + b', "events": {}}', "events: not a list"),
    ("request", b'{"receipt": "R", "action": "withdraw", "params": [], "requested_by": "1", "requested_at": ""}',
     "params: not an object"),
    ("restored", b'{}', "names no subtree"),
    ("ancestor_restored", b'{"node": ""}', "names no node"),
    ("catalog", b'{"version": 2, "issuer": "371100"}', "lacks 'items'"),
    ("stats", b'{"rows": []}', "KeyError: 'report'"),
    ("audit", b'{"node": "371102", "incarnation": 1}', "lacks"),
    ("audit", AUDIT.replace(b'"count":12', b'"count":"12"'), "must be integers"),
    ("revocation", b'{"issuer": "371100", "number": "3", "bundle": ""}', "number must be a whole number"),
    ("calendar", b'{"year": "2027", "issuer": "371100", "schedule": "", "published_at": ""}',
     "year must be a whole number"),
])
def test_a_malformed_payload_is_refused_with_a_reason(kind: str, payload: bytes, problem: str) -> None:
    with pytest.raises(MessageError, match=problem):
        decode_message(kind, payload)


def test_an_unknown_kind_is_not_decoded() -> None:
    with pytest.raises(KeyError):
        decode_message("bogus", b"{}")


def test_a_take_over_event_names_its_epoch() -> None:
    take_over: Any = CaseEvent.from_dict({**EVENTS[1].to_dict(), "action": "take_over",
                                         "detail": '{"epoch": 2, "from": "371102001201"}'})
    assert (take_over.take_over_epoch, EVENTS[1].take_over_epoch) == (2, None)


def test_the_wire_fields_are_the_payload_types_fields() -> None:
    """Snapshots and events are built from and written as their wire fields, all of them."""
    assert tuple(f.name for f in dataclasses.fields(CaseSnapshot)) == (*CASE_FIELDS, "personal")
    assert tuple(f.name for f in dataclasses.fields(CaseEvent)) == EVENT_FIELDS
    assert CaseSnapshot.from_dict(CASE.to_dict()) == CASE and hash(EVENTS[0]) == hash(CaseEvent(**EVENTS[0].to_dict()))
