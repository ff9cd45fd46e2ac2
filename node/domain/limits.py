"""How much a client may send: every limit on input, in one place.

Why limits at all. A node stores what a window sends and then carries it: to the owner in a
hand-over, to the origin in events, to every ancestor in summaries. A field with no bound
lets one case grow past what a peer can receive (the stalled county→city link of issue #11:
a 15 MB case, each request under the 8 MiB gRPC limit, that no batch could ever carry), and
an error that quotes its input back grows past what gRPC metadata can hold. So every
free-text field a client sends and the node stores has a maximum length, every list a
maximum count, and a whole case a maximum encoded size. All are checked at the edge of the
application (``node.app``: the desk, supervision, complaints) before anything is written, so
the gRPC servicers and a future web console refuse the same things the same way.

Lengths are in characters (Unicode code points after NFC normalisation and after the
invisible characters a field kind strips are gone, see ``node.domain.text``), not bytes: a
clerk counts what they see. In UTF-8 a Chinese character is 3 bytes, a rare one 4, so a
byte budget below is 4 × the characters.

The figures, and why:

* People's names (applicant, agent, actor, approver): 50. The longest Chinese names on
  cards (transliterated minority names with the middle dot, 阿依古丽·买买提·…) stay under 30;
  a romanised foreign name under 50. ``applicant.NAME_MAX`` has always been 50.
* Departments and material names: 100. Official names of departments (with their bureau's
  full title) run to ~30 characters, the longest material names in a catalog to ~60
  (《建设项目环境影响报告表》及其审批意见复印件 …).
* Note at intake, rectification note: 2,000 — a paragraph or two of what the applicant
  explained; longer texts are documents and belong among the materials.
* Reason (return, reject, extend, suspend, appeal, …) and resolution of a complaint: 1,000 —
  a decision's reason to the applicant is a few sentences; the one-time notice lists
  materials by name, not by prose.
* Complaint text: 1,000 (what complaints have always allowed); rating comment: 500 (same).
* Identifiers a client chooses or copies: idempotency key 128 (a UUID is 36; 128 has always
  been allowed), receipt 64 (a receipt is ~30), item code 64, action / kind / rating 32,
  node ids 32, complaint id 64, time stamps 64.
* Resident ID and phone as typed: 40 (18 characters or 11-13 digits, plus the spaces and
  hyphens a clerk may type); the shape checks of ``node.domain.applicant`` then apply.
* Lists: materials at most 50 entries (the longest catalog item lists ~30); departments of a
  joint review at most 20 (a construction permit involves ~10).

The catalog a node publishes (``PutCatalogRequest``): item names 100, legal basis and
conditions 1,000, at most 20 procedure steps of 100, 10 fees (name 100, standard and basis
200), 50 materials, 20 joint departments, 1,000 items (Handan's center publishes 713). And
the whole release, as it travels to every descendant in one envelope, at most
``MAX_CATALOG_BYTES`` = 768 KiB: it must fit one sync batch (1,000,000 bytes) with its
envelope. The sample catalog takes ~785 bytes an item, so 713 real items take ~560 KB. Only
lengths and counts are checked here; the catalog's own rules (codes, levels, days, no
surrounding white space) are ``node.domain.catalog``'s.

The whole case: ``MAX_CASE_BYTES`` = 256 KiB, measured as the hand-over carries it (the
``transfer`` payload of ``node.domain.messages``: state, personal data and every event, JSON,
UTF-8). Why 256 KiB: a sync batch is cut at 1,000,000 bytes (``sync.batching``), so the
largest case takes a quarter of one batch and always fits with room for others; the node's
gRPC messages may be 8 MiB (``node.process``), so ``Get`` and ``Act`` answers carrying the
whole case (its protobuf form is smaller than its JSON) are 30× under it. A real case is
2-10 KB; one with every field at its limit and the whole lifecycle (supplements, a joint
review, an extension, suspensions) is ~100-150 KB, so only a runaway history reaches 256 KiB.

Within that, three budgets, so that a full case can still be decided and closed:

* steps that may repeat (a supplement round, a suspension and its resumption, an extension, a
  joint opinion) fill a case up to ``RECORD_CASE_BYTES`` (176 KiB);
* steps that take a case forward to its end (``PROGRESS_STEPS``: accept, return, review,
  escalate, start the joint review, approve, reject, complete, deliver, withdraw, and the
  applicant's rating with its rectification and appeal) go on up to ``PROGRESS_CASE_BYTES``
  (240 KiB). Each happens at most once or twice per level, ~15 in a whole lifecycle, at most
  ~4 KB each (18 KB for an acceptance listing 50 owed materials): the 64 KiB between the two
  budgets always holds them, so a county that filled a case with suspensions before escalating
  it leaves the city room to review, decide, complete and deliver it;
* steps the node records itself (hand-over, take-over, alarms, timeout agreements, a refused
  request; a few hundred bytes each, bounded in number except refusals) go on up to
  ``MAX_CASE_BYTES``; a refused request that no longer fits is dropped and logged, not recorded.

No step ever takes a case past ``MAX_CASE_BYTES``. A refusal is FAILED_PRECONDITION, not
INVALID_ARGUMENT: the same request is fine on another case; it is this case's history that is
full.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MAX_CASE_BYTES = 256 * 1024  # a whole case, as a hand-over carries it; the node's own records may fill it
PROGRESS_CASE_BYTES = MAX_CASE_BYTES - 16 * 1024  # what a step toward the case's end may fill it up to
RECORD_CASE_BYTES = PROGRESS_CASE_BYTES - 64 * 1024  # what a step that may repeat may fill it up to
# The steps (the lifecycle's and supervision's, by name) that take a case toward its end.
PROGRESS_STEPS = frozenset({
    "accept", "return", "review", "escalate", "start_joint", "approve", "reject", "complete", "deliver", "withdraw",
    "evaluate", "rectify_close", "appeal", "appeal_decided",
})

# Characters.
PERSON = 50
DEPARTMENT = 100
MATERIAL = 100
NOTE = 2_000
REASON = 1_000
COMPLAINT = 1_000
COMMENT = 500
KEY = 128
RECEIPT = 64
ITEM_CODE = 64
WORD = 32  # action, kind, rating, status
NODE = 32
COMPLAINT_ID = 64
TIMESTAMP = 64
TYPED_NUMBER = 40  # resident ID and phone as typed
LOGIN = 64  # an account's login (node.domain.people)
PASSWORD = 128  # hashed whole by argon2 at every login: a bound keeps a login's cost bounded
DAY = 10  # YYYY-MM-DD
STATUSES = 12  # a case list's status filter: each status at most once
AMOUNT = 16  # money typed in yuan: "100000000.00" is 12
PAYMENT_NUMBER = 64  # a collection point's receipt or a payment transaction's number (WeChat's is 32)
ROLES = 10
# Entries.
MATERIALS = 50
DEPARTMENTS = 20
# The catalog.
ITEM_NAME = 100
BASIS = 1_000  # legal basis, conditions
STEP = 100
STEPS = 20
FEE_TEXT = 200
FEES = 10
CATALOG_ITEMS = 1_000
MAX_CATALOG_BYTES = 768 * 1024
# A year's holiday schedule as TOML: the shipped 2026 file, with its comments and names, is
# ~3,400 characters; a schedule is at most ~40 dates.
CALENDAR_TEXT = 20_000


class Kind(StrEnum):
    """How a field's text is normalised and what it may contain (``node.domain.text``)."""

    NAME = "name"  # a person's or a body's name: one line, at least one letter, nothing invisible
    LABEL = "label"  # a name that need not contain a letter (a department, a material): one line, nothing invisible
    TEXT = "text"  # prose: lines and tabs kept, invisible characters stripped, other controls refused
    TOKEN = "token"  # an identifier or a word from a list: one line, no controls, no invisible characters
    CATALOG = "catalog"  # a catalog's text: length here, everything else by the catalog's own rules
    SECRET = "secret"  # a password: kept exactly as typed (never normalised), only its length bounded


@dataclass(frozen=True)
class Limit:
    """One field a client sends: its path in the request, the most it may hold, and its rule."""

    message: str  # the proto request message
    field: str  # the field's path in it ("applicant.name", "materials")
    chars: int  # the most characters (of each entry, for a list); 0 for a list of messages
    kind: Kind
    entries: int = 0  # for a repeated field: the most entries
    required: bool = False


L = Limit
# Every client-sent text field the node stores (or echoes), by request. The .proto comments and the
# README's "Limits" table say the same (tests/unit/test_limits_docs.py keeps them in step).
LIMITS: tuple[Limit, ...] = (
    L("SubmitCaseRequest", "idempotency_key", KEY, Kind.TOKEN, required=True),
    L("SubmitCaseRequest", "item_code", ITEM_CODE, Kind.TOKEN, required=True),
    L("Applicant", "name", PERSON, Kind.NAME, required=True),
    L("Applicant", "id_number", TYPED_NUMBER, Kind.TOKEN, required=True),
    L("Applicant", "phone", TYPED_NUMBER, Kind.TOKEN, required=True),
    L("SubmitCaseRequest", "materials", MATERIAL, Kind.LABEL, entries=MATERIALS),
    L("SubmitCaseRequest", "agent", PERSON, Kind.NAME),
    L("SubmitCaseRequest", "note", NOTE, Kind.TEXT),
    L("SubmitCaseRequest", "actor", PERSON, Kind.NAME),
    L("SubmitCaseRequest", "happened_at", TIMESTAMP, Kind.TOKEN),
    L("GetCaseRequest", "receipt", RECEIPT, Kind.TOKEN, required=True),
    L("TrackCaseRequest", "receipt", RECEIPT, Kind.TOKEN, required=True),
    L("ActRequest", "receipt", RECEIPT, Kind.TOKEN, required=True),
    L("ActRequest", "action", WORD, Kind.TOKEN, required=True),
    L("ActRequest", "actor", PERSON, Kind.NAME),
    L("ActRequest", "reason", REASON, Kind.TEXT),
    L("ActRequest", "materials", MATERIAL, Kind.LABEL, entries=MATERIALS),
    L("ActRequest", "departments", DEPARTMENT, Kind.LABEL, entries=DEPARTMENTS),
    L("ActRequest", "department", DEPARTMENT, Kind.LABEL),
    L("ActRequest", "approver", PERSON, Kind.NAME),
    L("ActRequest", "happened_at", TIMESTAMP, Kind.TOKEN),
    L("SuspendRequest", "receipt", RECEIPT, Kind.TOKEN, required=True),
    L("SuspendRequest", "kind", WORD, Kind.TOKEN, required=True),
    L("SuspendRequest", "reason", REASON, Kind.TEXT, required=True),
    L("SuspendRequest", "actor", PERSON, Kind.NAME),
    L("ResumeRequest", "receipt", RECEIPT, Kind.TOKEN, required=True),
    L("ResumeRequest", "reason", REASON, Kind.TEXT),
    L("ResumeRequest", "actor", PERSON, Kind.NAME),
    L("EvaluateRequest", "receipt", RECEIPT, Kind.TOKEN, required=True),
    L("EvaluateRequest", "rating", WORD, Kind.TOKEN, required=True),
    L("EvaluateRequest", "comment", COMMENT, Kind.TEXT),
    L("EvaluateRequest", "actor", PERSON, Kind.NAME),
    L("RectifyRequest", "receipt", RECEIPT, Kind.TOKEN, required=True),
    L("RectifyRequest", "note", NOTE, Kind.TEXT, required=True),
    L("RectifyRequest", "actor", PERSON, Kind.NAME),
    L("AppealRequest", "receipt", RECEIPT, Kind.TOKEN, required=True),
    L("AppealRequest", "reason", REASON, Kind.TEXT, required=True),
    L("AppealRequest", "actor", PERSON, Kind.NAME),
    L("DecideAppealRequest", "receipt", RECEIPT, Kind.TOKEN, required=True),
    L("DecideAppealRequest", "reason", REASON, Kind.TEXT, required=True),
    L("DecideAppealRequest", "actor", PERSON, Kind.NAME),
    L("FileComplaintRequest", "text", COMPLAINT, Kind.TEXT, required=True),
    L("FileComplaintRequest", "receipt", RECEIPT, Kind.TOKEN),
    L("FileComplaintRequest", "about_node", NODE, Kind.TOKEN),
    L("FileComplaintRequest", "department", DEPARTMENT, Kind.LABEL),
    L("ResolveComplaintRequest", "complaint_id", COMPLAINT_ID, Kind.TOKEN, required=True),
    L("ResolveComplaintRequest", "resolution", REASON, Kind.TEXT, required=True),
    L("ResolveComplaintRequest", "actor", PERSON, Kind.NAME),
    # Fees and the green channel (node.domain.fees, lifecycle pay / waive_fee / green_channel).
    L("PayFeeRequest", "receipt", RECEIPT, Kind.TOKEN, required=True),
    L("PayFeeRequest", "amount", AMOUNT, Kind.TOKEN, required=True),
    L("PayFeeRequest", "method", WORD, Kind.TOKEN, required=True),
    L("PayFeeRequest", "number", PAYMENT_NUMBER, Kind.TOKEN, required=True),
    L("PayFeeRequest", "happened_at", TIMESTAMP, Kind.TOKEN),
    L("WaiveFeeRequest", "receipt", RECEIPT, Kind.TOKEN, required=True),
    L("WaiveFeeRequest", "reason", REASON, Kind.TEXT, required=True),
    L("GreenChannelRequest", "receipt", RECEIPT, Kind.TOKEN, required=True),
    L("GreenChannelRequest", "reason", REASON, Kind.TEXT, required=True),
    L("PutCatalogRequest", "items", 0, Kind.CATALOG, entries=CATALOG_ITEMS),
    L("PutCatalogRequest", "issuer", NODE, Kind.TOKEN),
    L("PublishCalendarRequest", "schedule", CALENDAR_TEXT, Kind.TEXT, required=True),
    L("ServiceItem", "code", ITEM_CODE, Kind.CATALOG),
    L("ServiceItem", "name", ITEM_NAME, Kind.CATALOG),
    L("ServiceItem", "department", DEPARTMENT, Kind.CATALOG),
    L("ServiceItem", "legal_basis", BASIS, Kind.CATALOG),
    L("ServiceItem", "procedure", STEP, Kind.CATALOG, entries=STEPS),
    L("ServiceItem", "conditions", BASIS, Kind.CATALOG),
    L("ServiceItem", "materials", 0, Kind.CATALOG, entries=MATERIALS),
    L("ServiceItem", "fees", 0, Kind.CATALOG, entries=FEES),
    L("ServiceItem", "joint_departments", DEPARTMENT, Kind.CATALOG, entries=DEPARTMENTS),
    L("Material", "name", MATERIAL, Kind.CATALOG),
    L("Fee", "name", ITEM_NAME, Kind.CATALOG),
    L("Fee", "standard", FEE_TEXT, Kind.CATALOG),
    L("Fee", "basis", FEE_TEXT, Kind.CATALOG),
    # Filters of the reads: never stored, bounded all the same (a filter is compared with every row).
    L("ListCasesRequest", "status", WORD, Kind.TOKEN),
    L("ListCasesRequest", "item_code", ITEM_CODE, Kind.TOKEN),
    L("ListCasesRequest", "department", DEPARTMENT, Kind.LABEL),
    L("ListCasesRequest", "due_before", DAY, Kind.TOKEN),
    L("ListCasesRequest", "page_token", RECEIPT, Kind.TOKEN),
    L("ListCasesRequest", "statuses", WORD, Kind.TOKEN, entries=STATUSES),
    L("GetItemRequest", "code", ITEM_CODE, Kind.TOKEN, required=True),
    L("ListItemsRequest", "department", DEPARTMENT, Kind.LABEL),
    L("ListItemsRequest", "authority_level", WORD, Kind.TOKEN),
    L("ListComplaintsRequest", "status", WORD, Kind.TOKEN),
    L("ListComplaintsRequest", "about_node", NODE, Kind.TOKEN),
    L("ListAlarmsRequest", "about_node", NODE, Kind.TOKEN),
    L("StatsQuery", "by", WORD, Kind.TOKEN),
    L("StatsQuery", "from_day", DAY, Kind.TOKEN),
    L("StatsQuery", "to_day", DAY, Kind.TOKEN),
    L("StatsQuery", "subtree", NODE, Kind.TOKEN),
    L("StatsQuery", "rank_by", WORD, Kind.TOKEN),
    L("EvaluateRequest", "rating_code", WORD, Kind.TOKEN),
    # People (node.app.accounts).
    L("LoginRequest", "login", LOGIN, Kind.TOKEN, required=True),
    L("LoginRequest", "password", PASSWORD, Kind.SECRET, required=True),
    L("AddUserRequest", "login", LOGIN, Kind.TOKEN, required=True),
    L("AddUserRequest", "name", PERSON, Kind.NAME),
    L("AddUserRequest", "roles", WORD, Kind.TOKEN, entries=ROLES),
    L("AddUserRequest", "departments", DEPARTMENT, Kind.LABEL, entries=DEPARTMENTS),
    L("AddUserRequest", "backup_for", LOGIN, Kind.TOKEN),
    L("AddUserRequest", "password", PASSWORD, Kind.SECRET, required=True),
    L("ResetPasswordRequest", "login", LOGIN, Kind.TOKEN, required=True),
    L("ResetPasswordRequest", "password", PASSWORD, Kind.SECRET, required=True),
    L("SetAbsentRequest", "login", LOGIN, Kind.TOKEN, required=True),
    L("LoginName", "login", LOGIN, Kind.TOKEN, required=True),
)
del L


def case_budget(step: str) -> int:
    """How far a person's ``step`` may fill a case (encoded bytes)."""
    return PROGRESS_CASE_BYTES if step in PROGRESS_STEPS else RECORD_CASE_BYTES


def limit_of(message: str, field: str) -> Limit:
    """The limit of ``message.field`` (KeyError when the table has none: every checked field has one)."""
    for limit in LIMITS:
        if limit.message == message and limit.field == field:
            return limit
    raise KeyError(f"{message}.{field}")


def count(n: int) -> str:
    """A count as people read it: 3,001."""
    return f"{n:,}"


def excerpt(text: str, n: int = 24) -> str:
    """A short, safe quotation of input for a message: at most ``n`` characters, quoted
    with ``repr`` (so control and invisible characters show as escapes, and a message stays
    one line), and the whole length when it was cut: ``'前二十四个字…' (3,001 characters)``.

    Every message that quotes what a client sent goes through here: an error that echoed a
    megabyte back would outgrow gRPC's metadata limit and hide the real error (issue #11)."""
    if not isinstance(text, str):
        text = str(text)
    if len(text) <= n:
        return repr(text)
    return f"{text[:n] + '…'!r} ({count(len(text))} characters)"


def excerpts(values: list[str] | tuple[str, ...], most: int = 5, n: int = 24) -> str:
    """Several quoted values, at most ``most`` of them, then how many more there are."""
    shown = ", ".join(excerpt(v, n) for v in values[:most])
    return shown + (f" and {count(len(values) - most)} more" if len(values) > most else "")


def describe(limit: Limit) -> str:
    """The limit as the .proto comment and the README state it: ``Required. At most 2,000 characters.``"""
    if limit.entries and not limit.chars:
        text = f"At most {count(limit.entries)} entries."
    elif limit.entries:
        text = f"At most {count(limit.entries)} entries, each at most {count(limit.chars)} characters."
    else:
        text = f"At most {count(limit.chars)} characters."
    return ("Required. " if limit.required else "") + text


def wire_bytes(payload: Mapping[str, Any]) -> int:
    """Bytes of ``payload`` in the wire's JSON (the form of ``messages.dumps``; this module sits
    below the messages, so it spells the form out, and a unit test holds the two equal)."""
    return len(json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode())


def _too_long(limit: Limit, value: Any, label: str) -> str | None:
    if isinstance(value, str) and len(value) > limit.chars:
        return f"{label} is {count(len(value))} characters; at most {count(limit.chars)} are allowed"
    return None


def catalog_violation(issuer: str, items: Sequence[Mapping[str, Any]]) -> tuple[str, str, str] | None:
    """The first limit a catalog release breaks, as (item code, field, message), or None.

    ``items`` in the catalog's own dictionary form (``ServiceItem.to_dict``), as they travel."""
    most = limit_of("PutCatalogRequest", "items")
    if len(items) > most.entries:
        return "", "items", f"the catalog has {count(len(items))} items; at most {count(most.entries)} are allowed"
    for item in items:
        code = str(item.get("code", ""))[:ITEM_CODE]
        for limit in LIMITS:
            if limit.message != "ServiceItem":
                continue
            value = item.get(limit.field)
            if limit.entries:
                entries = list(value or ())
                if len(entries) > limit.entries:
                    return code, limit.field, (f"{limit.field} has {count(len(entries))} entries; "
                                               f"at most {count(limit.entries)} are allowed")
                for i, entry in enumerate(entries):
                    parts = ({f"{limit.field}[{i}]": entry} if limit.chars else
                             {f"{limit.field}[{i}].{k}": v for k, v in dict(entry).items()})
                    for path, text in parts.items():
                        sub = limit if limit.chars else _sub_limit(limit.field, path.rsplit(".", 1)[-1])
                        why = sub and _too_long(sub, text, path)
                        if why:
                            return code, path, why
            else:
                why = _too_long(limit, value, limit.field)
                if why:
                    return code, limit.field, why
    size = wire_bytes({"issuer": issuer, "items": [dict(i) for i in items], "version": 10**12})
    if size > MAX_CATALOG_BYTES:
        return "", "items", (f"the release takes {count(size)} bytes as it travels to every descendant; at most "
                             f"{count(MAX_CATALOG_BYTES)} fit one sync batch: publish fewer items, or shorter texts")
    return None


_ENTRY_MESSAGE = {"materials": "Material", "fees": "Fee"}


def _sub_limit(list_field: str, key: str) -> Limit | None:
    try:
        return limit_of(_ENTRY_MESSAGE[list_field], key)
    except KeyError:
        return None
