"""Tests for node.domain.catalog: the sample catalog's coverage, round trips, missing(), and validation.

Everything is pure except the file tests, which only use pytest's tmp_path.
"""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from govnet.federation.tree import Level
from govnet.node.domain.catalog import (
    Catalog,
    CatalogError,
    ItemType,
    Material,
    ServiceItem,
    load_catalog_file,
    parse_catalog,
    sample_catalog_path,
)

# --- the sample catalog --------------------------------------------------------------

SAMPLE = load_catalog_file(sample_catalog_path())


def test_sample_issuer_and_codes() -> None:
    assert SAMPLE.issuer == "371100"
    codes = [item.code for item in SAMPLE]
    assert len(codes) == len(set(codes)) == len(SAMPLE)


# (claim, how many sample items satisfy it, the least the sample must have)
COVERAGE: list[tuple[str, Callable[[Catalog], int], int]] = [
    ("items", len, 24),
    ("departments", lambda c: len({i.department for i in c}), 8),
    ("levels", lambda c: len({i.authority_level for i in c}), len(Level)),
    ("item types", lambda c: len({i.item_type for i in c}), len(ItemType)),
    ("immediate items", lambda c: sum(i.item_type is ItemType.IMMEDIATE for i in c), 3),
    ("joint items", lambda c: sum(i.item_type is ItemType.JOINT for i in c), 2),
    ("village items", lambda c: sum(i.authority_level is Level.VILLAGE for i in c), 1),
    ("township items", lambda c: sum(i.authority_level is Level.TOWNSHIP for i in c), 1),
    ("tolerance items", lambda c: sum(i.tolerance for i in c), 1),
    ("items with non-core materials", lambda c: sum(bool(i.noncore_materials) for i in c), 1),
    ("proxy=false items", lambda c: sum(not i.proxy for i in c), 1),
    ("proxy=true items", lambda c: sum(i.proxy for i in c), 1),
    ("fee-bearing items", lambda c: sum(bool(i.fees) for i in c), 1),
    ("free items", lambda c: sum(not i.fees for i in c), 1),
    ("timeout-default items", lambda c: sum(i.timeout_default for i in c), 1),
]


@pytest.mark.parametrize(("claim", "count", "least"), COVERAGE, ids=[c[0] for c in COVERAGE])
def test_sample_coverage(claim: str, count: Callable[[Catalog], int], least: int) -> None:
    assert count(SAMPLE) >= least, claim


def test_sample_has_every_level_and_type_by_name() -> None:
    assert {i.authority_level for i in SAMPLE} == set(Level)
    assert {i.item_type for i in SAMPLE} == set(ItemType)


def test_sample_named_domain_items() -> None:
    # The items the domain reports name explicitly are present with their key properties.
    rural = SAMPLE.get("ZR-0002")
    assert rural is not None and rural.authority_level is Level.TOWNSHIP and "1000平方米" in rural.name
    permit = SAMPLE.get("ZJ-0001")
    assert permit is not None and permit.item_type is ItemType.JOINT and len(permit.joint_departments) >= 2
    names = " ".join(i.name for i in SAMPLE)
    for fragment in ("环境影响报告书", "环境影响报告表", "环境影响登记表", "排污许可", "夜间施工", "竣工验收", "音像制品"):
        assert fragment in names, fragment


def test_sample_limits_are_consistent() -> None:
    for item in SAMPLE:
        assert 1 <= item.statutory_days <= 60
        assert item.promised_days <= item.statutory_days
        assert (item.promised_days == 0) == (item.item_type is ItemType.IMMEDIATE), item.code


@pytest.mark.parametrize("item", SAMPLE.items, ids=[i.code for i in SAMPLE.items])
def test_round_trip_every_sample_item(item: ServiceItem) -> None:
    data = item.to_dict()
    # Plain data only: survives JSON unchanged.
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    assert ServiceItem.from_dict(data) == item


def test_catalog_round_trip_through_json_file(tmp_path: Path) -> None:
    assert parse_catalog(SAMPLE.to_dict()) == SAMPLE
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(SAMPLE.to_dict(), ensure_ascii=False), encoding="utf-8")
    assert load_catalog_file(path) == SAMPLE


def test_get_and_len() -> None:
    item = SAMPLE.get("GA-0002")
    assert item is not None and item.code == "GA-0002" and not item.proxy
    assert SAMPLE.get("XX-0000") is None
    assert len(SAMPLE) == len(SAMPLE.items)


# --- a valid item to start from ----------------------------------------------------


def valid_item() -> dict[str, Any]:
    """A fresh valid promised item; each invalid case breaks exactly one thing."""
    return {
        "code": "HB-0002",
        "name": "建设项目环境影响报告表审批",
        "department": "生态环境局",
        "authority_level": "county",
        "item_type": "promised",
        "legal_basis": "《中华人民共和国环境影响评价法》",
        "procedure": ["受理", "审查", "决定"],
        "conditions": "建设项目可能造成轻度环境影响",
        "materials": [
            {"name": "申请表", "core": True},
            {"name": "环境影响报告表", "core": True},
            {"name": "立项文件", "core": False},
        ],
        "statutory_days": 20,
        "promised_days": 10,
        "fees": [{"name": "工本费", "amount_fen": 1000, "standard": "每证10元", "basis": "某收费文件"}],
        "tolerance": True,
    }


def test_valid_item_is_valid() -> None:
    item = ServiceItem.from_dict(valid_item())
    assert item.authority_level is Level.COUNTY and item.item_type is ItemType.PROMISED
    assert item.core_materials == ("申请表", "环境影响报告表")
    assert item.noncore_materials == ("立项文件",)
    assert item.fees[0].amount_fen == 1000


def test_text_is_stripped_and_defaults_apply() -> None:
    data = valid_item()
    data["name"] = "  建设项目环境影响报告表审批 \n"
    data["procedure"] = [" 受理", "审查 "]
    item = ServiceItem.from_dict(data)
    assert item.name == "建设项目环境影响报告表审批"
    assert item.procedure == ("受理", "审查")
    assert (item.joint_departments, item.proxy, item.timeout_default, item.progress_public) == ((), True, False, True)


def _set(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        d.update(changes)

    return apply


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        del d[key]

    return apply


def _material(n: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        d["materials"][n].update(changes)

    return apply


def _fee(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        d["fees"][0].update(changes)

    return apply


# (id, how to break the valid item, expected item_code, expected field, text the message must contain)
INVALID: list[tuple[str, Callable[[dict[str, Any]], None], str | None, str, str]] = [
    ("code missing", _drop("code"), None, "code", "missing"),
    ("code lowercase", _set(code="hb-0002"), None, "code", "'hb-0002'"),
    ("code not text", _set(code=2), None, "code", "expected text"),
    ("unknown key typo", _set(tolerence=True), "HB-0002", "tolerence", "did you mean 'tolerance'"),
    ("required key missing", _drop("legal_basis"), "HB-0002", "legal_basis", "missing"),
    ("fees omitted", _drop("fees"), "HB-0002", "fees", "fees = []"),
    ("empty name", _set(name="   "), "HB-0002", "name", "empty"),
    ("name not text", _set(name=5), "HB-0002", "name", "expected text"),
    ("unknown level", _set(authority_level="province"), "HB-0002", "authority_level", "city, county, township, village"),
    ("unknown item type", _set(item_type="urgent"), "HB-0002", "item_type", "immediate, promised, joint"),
    ("empty procedure", _set(procedure=[]), "HB-0002", "procedure", "at least one step"),
    ("blank procedure step", _set(procedure=["受理", " "]), "HB-0002", "procedure", "step 2"),
    ("no materials", _set(materials=[]), "HB-0002", "materials", "at least one material"),
    ("no core material", _set(materials=[{"name": "立项文件", "core": False}], tolerance=False),
     "HB-0002", "materials", "core"),
    ("duplicate material", _material(1, name="申请表"), "HB-0002", "materials", "listed twice"),
    ("material unknown key", _material(0, cor=True), "HB-0002", "materials", "did you mean 'core'"),
    ("material core not bool", _material(0, core="yes"), "HB-0002", "materials", "true or false"),
    ("statutory as text", _set(statutory_days="20"), "HB-0002", "statutory_days", "expected an integer"),
    ("statutory as bool", _set(statutory_days=True), "HB-0002", "statutory_days", "expected an integer"),
    ("statutory zero", _set(statutory_days=0), "HB-0002", "statutory_days", "between 1 and 60"),
    ("statutory too long", _set(statutory_days=61), "HB-0002", "statutory_days", "between 1 and 60"),
    ("promised over statutory", _set(promised_days=25), "HB-0002", "promised_days", "25 exceeds statutory_days 20"),
    ("promised negative", _set(promised_days=-1), "HB-0002", "promised_days", "at least 0"),
    ("promised zero for promised item", _set(promised_days=0), "HB-0002", "promised_days", "at least 1 promised day"),
    ("immediate with promised days", _set(item_type="immediate"), "HB-0002", "promised_days", "must be 0"),
    ("negative fee", _fee(amount_fen=-100), "HB-0002", "fees", "at least 0"),
    ("fee in yuan as float", _fee(amount_fen=10.5), "HB-0002", "fees", "expected an integer"),
    ("fee without basis", _fee(basis=""), "HB-0002", "fees", "basis"),
    ("joint without departments", _set(item_type="joint"), "HB-0002", "joint_departments", "at least one department"),
    ("joint lists itself", _set(item_type="joint", joint_departments=["生态环境局", "住房和城乡建设局"]),
     "HB-0002", "joint_departments", "lead department"),
    ("joint duplicate department", _set(item_type="joint", joint_departments=["公安局", "公安局"]),
     "HB-0002", "joint_departments", "listed twice"),
    ("departments on non-joint", _set(joint_departments=["公安局"]), "HB-0002", "joint_departments", "only joint"),
    ("tolerance without non-core", _material(2, core=True), "HB-0002", "tolerance", "non-core"),
    ("proxy not bool", _set(proxy="false"), "HB-0002", "proxy", "true or false"),
]


@pytest.mark.parametrize(("break_it", "code", "field", "says"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_item(break_it: Callable[[dict[str, Any]], None], code: str | None, field: str, says: str) -> None:
    data = valid_item()
    break_it(data)
    with pytest.raises(CatalogError) as caught:
        ServiceItem.from_dict(data)
    err = caught.value
    assert (err.item_code, err.field) == (code, field)
    message = str(err)
    assert "\n" not in message
    assert f"field {field}" in message
    if code is not None:
        assert message.startswith(f"catalog item {code}, field {field}: ")
    assert says in message

    # Inside a catalog the same error also knows its position, and the
    # message falls back to that position when there is no usable code.
    catalog = {"issuer": "371100", "item": [valid_item() | {"code": "ZJ-0001"}, data]}
    with pytest.raises(CatalogError) as in_catalog:
        parse_catalog(catalog)
    assert (in_catalog.value.item_code, in_catalog.value.field, in_catalog.value.index) == (code, field, 2)
    if code is None:
        assert str(in_catalog.value).startswith(f"catalog item #2, field {field}: ")


def test_example_message_exactly() -> None:
    data = valid_item() | {"code": "HB-0003", "promised_days": 25}
    with pytest.raises(CatalogError, match=r"^catalog item HB-0003, field promised_days: 25 exceeds statutory_days 20$"):
        ServiceItem.from_dict(data)


def test_constructor_enforces_the_same_rules() -> None:
    item = ServiceItem.from_dict(valid_item())
    fields = {name: getattr(item, name) for name in valid_item()}
    with pytest.raises(CatalogError) as caught:
        ServiceItem(**fields | {"promised_days": 21})
    assert (caught.value.item_code, caught.value.field) == ("HB-0002", "promised_days")
    # Enum text is accepted and converted, since a StrEnum equals its text.
    assert ServiceItem(**fields | {"authority_level": "city"}).authority_level is Level.CITY
    with pytest.raises(CatalogError, match="field procedure"):
        ServiceItem(**fields | {"procedure": ["受理"]})  # a list, not a tuple: would not be hashable


def test_first_error_follows_field_order() -> None:
    data = valid_item() | {"name": "", "statutory_days": 0}
    with pytest.raises(CatalogError) as caught:
        ServiceItem.from_dict(data)
    assert caught.value.field == "name"
    # A misspelt key is reported before any value problem.
    data = valid_item() | {"name": "", "promised_day": 3}
    with pytest.raises(CatalogError) as caught:
        ServiceItem.from_dict(data)
    assert caught.value.field == "promised_day"


# --- missing() -----------------------------------------------------------------------

MISSING_ITEM = ServiceItem.from_dict(
    valid_item()
    | {
        "materials": [
            {"name": "申请表", "core": True},
            {"name": "营业执照", "core": False},
            {"name": "身份证", "core": True},
            {"name": "平面图", "core": False},
        ]
    }
)

MISSING_CASES: list[tuple[str, list[str], tuple[tuple[str, ...], tuple[str, ...]]]] = [
    ("nothing provided", [], (("申请表", "身份证"), ("营业执照", "平面图"))),
    ("everything provided", ["平面图", "身份证", "营业执照", "申请表"], ((), ())),
    ("only core provided", ["身份证", "申请表"], ((), ("营业执照", "平面图"))),
    ("only non-core provided", ["平面图", "营业执照"], (("申请表", "身份证"), ())),
    ("one of each missing", ["申请表", "平面图"], (("身份证",), ("营业执照",))),
    ("unknown and padded names", [" 申请表 ", "户口簿", "身份证"], ((), ("营业执照", "平面图"))),
]


@pytest.mark.parametrize(("provided", "expected"), [c[1:] for c in MISSING_CASES], ids=[c[0] for c in MISSING_CASES])
def test_missing(provided: list[str], expected: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
    assert MISSING_ITEM.missing(provided) == expected
    assert MISSING_ITEM.missing(iter(provided)) == expected  # any iterable, consumed once


def test_missing_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError):
        MISSING_ITEM.missing("申请表")


ESCALATION = [
    (Level.CITY, Level.CITY, False),
    (Level.CITY, Level.VILLAGE, True),
    (Level.COUNTY, Level.TOWNSHIP, True),
    (Level.TOWNSHIP, Level.COUNTY, False),
    (Level.VILLAGE, Level.VILLAGE, False),
]


@pytest.mark.parametrize(("authority", "accepting", "escalates"), ESCALATION)
def test_escalates_from(authority: Level, accepting: Level, escalates: bool) -> None:
    item = ServiceItem.from_dict(valid_item() | {"authority_level": authority.value})
    assert item.escalates_from(accepting) is escalates


# --- catalog-level errors ------------------------------------------------------------


def _catalog(*items: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"issuer": "371100", "item": list(items)} | top


CATALOG_INVALID: list[tuple[str, Any, str | None, str | None, int | None, str]] = [
    ("not a table", [1, 2], None, None, None, "top level"),
    ("unknown top key", _catalog(valid_item(), items=[]), None, "items", None, "did you mean 'item'"),
    ("issuer missing", {"item": [valid_item()]}, None, "issuer", None, "missing"),
    ("issuer blank", _catalog(valid_item(), issuer=" "), None, "issuer", None, "empty"),
    ("no items key", {"issuer": "371100"}, None, "item", None, "[[item]]"),
    ("items empty", _catalog(), None, "item", None, "at least one"),
    ("item not a table", _catalog(valid_item(), "HB-0009"), None, None, 2, "expected a table"),
    ("duplicate code", _catalog(valid_item(), valid_item()), "HB-0002", "code", 2, "item #1 already uses it"),
]


@pytest.mark.parametrize(
    ("data", "code", "field", "index", "says"), [c[1:] for c in CATALOG_INVALID], ids=[c[0] for c in CATALOG_INVALID]
)
def test_invalid_catalog(data: Any, code: str | None, field: str | None, index: int | None, says: str) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(data)
    err = caught.value
    assert (err.item_code, err.field, err.index) == (code, field, index)
    assert says in str(err) and "\n" not in str(err)


def test_first_bad_item_wins() -> None:
    bad_first = valid_item() | {"code": "HB-0001", "statutory_days": 0}
    bad_later = valid_item() | {"code": "HB-0003", "name": ""}
    with pytest.raises(CatalogError) as caught:
        parse_catalog(_catalog(bad_first, bad_later))
    assert (caught.value.item_code, caught.value.field) == ("HB-0001", "statutory_days")


def test_catalog_constructor_refuses_duplicates() -> None:
    item = ServiceItem.from_dict(valid_item())
    with pytest.raises(CatalogError, match="duplicate code"):
        Catalog(items=(item, item), issuer="371100")


def test_error_is_one_line_and_picklable() -> None:
    err = CatalogError("bad\nvalue\r\nhere", item_code="HB-0001", field="name", index=3, source="x.toml")
    assert str(err) == "catalog file x.toml, item HB-0001, field name: bad value here"
    again = pickle.loads(pickle.dumps(err))
    assert (str(again), again.item_code, again.field, again.index, again.source) == (
        str(err), "HB-0001", "name", 3, "x.toml"
    )


# --- files ---------------------------------------------------------------------------


def test_bad_toml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('issuer = "371100"\n[[item]]\ncode = "HB-0001\n', encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog_file(path)
    message = str(caught.value)
    assert str(path) in message and caught.value.source == str(path)
    assert "invalid TOML" in message and "line 3" in message
    assert "\n" not in message


def test_valid_toml_with_bad_item_names_file_and_item(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    text = sample_catalog_path().read_text(encoding="utf-8")
    path.write_text(text.replace("statutory_days = 60", "statutory_days = 90", 1), encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog_file(path)
    err = caught.value
    assert (err.item_code, err.field) == ("HB-0001", "statutory_days")
    assert str(err).startswith(f"catalog file {path}, item HB-0001, field statutory_days: ")


FILE_PROBLEMS: list[tuple[str, str, bytes | None, str]] = [
    ("missing file", "absent.toml", None, "cannot read"),
    ("wrong suffix", "catalog.yaml", b"issuer: x", "unsupported file type"),
    ("not utf-8", "catalog.toml", 'issuer = "日照"'.encode("gbk"), "not UTF-8"),
    ("bad json", "catalog.json", b'{"issuer": "371100",}', "invalid JSON"),
    ("duplicate json key", "catalog.json", b'{"issuer": "371100", "issuer": "371102", "item": []}', "duplicate key"),
]


@pytest.mark.parametrize(("name", "content", "says"), [c[1:] for c in FILE_PROBLEMS], ids=[c[0] for c in FILE_PROBLEMS])
def test_file_problems(tmp_path: Path, name: str, content: bytes | None, says: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CatalogError) as caught:
        load_catalog_file(path)
    message = str(caught.value)
    assert says in message and str(path) in message and "\n" not in message


def test_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_bytes(b"\xef\xbb\xbf" + sample_catalog_path().read_bytes())
    assert load_catalog_file(path) == SAMPLE


def test_inputs_are_not_mutated() -> None:
    data = _catalog(valid_item())
    before = copy.deepcopy(data)
    parse_catalog(data)
    assert data == before


def test_material_and_item_are_frozen() -> None:
    item = ServiceItem.from_dict(valid_item())
    with pytest.raises(AttributeError):
        item.promised_days = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Material("申请表", True).core = False  # type: ignore[misc]
    assert hash(item) == hash(ServiceItem.from_dict(valid_item()))
