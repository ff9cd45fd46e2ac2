"""The service-item catalog: the published rules every node applies to a case.

Why this module exists
----------------------
Every centre in the network (city, county, township, village point) has to
apply the same rules to the same service item (事项): which level may decide
it, which materials it needs, how long it may take, what it costs. The city
publishes those rules as one catalog (政务服务项目库) and no department may
change an item on its own. This module is the model of that catalog and the
one gate through which catalog text enters a node, :func:`parse_catalog`.

A catalog mistake is copied to every village point, and a village point may be
offline for days before it sees a correction. So validation is strict and
happens up front. Unknown keys are errors, because a misspelt ``tolerence``
must not quietly mean "no tolerance". Integers must be real integers, and
required text must be non-empty. Only the first problem is reported, as one
line naming the item and the field, so the catalog office can fix it without
reading a traceback.

What an item publishes
----------------------
An item carries the "ten publics" (十公开): name, legal basis, procedure,
conditions, materials, promised time limit, whether progress is visible to the
applicant, and for each fee its name, standard and basis. It also carries the
department, the level with the authority to decide, the statutory limit and
the case type. Limits are in working days. Money is in fen (1/100 yuan) as
integers, so sums at the unified collection point (统一收费) are exact.

The case kinds
--------------
The domain has five kinds of case (办件类型). Three belong to the item and are
stored here as :class:`ItemType`:

* immediate (即办件): decided at the window the same day, so
  ``promised_days`` is 0.
* promised (承诺件): needs review, inspection, testing or a hearing, and must
  finish within ``promised_days``.
* joint (联办件): the lead ``department`` and the ``joint_departments``
  review in parallel.

The other two come from how one particular case goes, so they are worked out
per case and never stored:

* escalated (上报件): the item's ``authority_level`` is above the node that
  accepted the case (it has a smaller ``Level.rank``). The node does the first
  review and sends the case up. See :meth:`ServiceItem.escalates_from`.
* returned (退办件): materials were missing at intake.
  :meth:`ServiceItem.missing` lists every missing material at once, because
  the applicant must be told once and never asked twice (一次性告知). Missing
  non-core materials do not return a case when ``tolerance`` (容缺受理) allows
  them to follow later.

Carried by an agent (代办) is not a kind: a village agent may carry an
immediate, promised, joint or escalated case alike (the case records the agent
apart from its kind). It is allowed only where ``proxy`` is true. Some items
need the applicant in person, for example to give fingerprints.

Fees and the green channel
--------------------------
A fee may leave its first units free (``free_units``: "第一本证书免收" is 1), so
the amount due is computed per case (``node.domain.fees.assess``), never the
plain sum of the published amounts. ``green_channel_days`` is the shorter
promised limit of a case flagged for the green channel (绿色通道).

Purity
------
Apart from :func:`load_catalog_file`, which reads one file, nothing here does
I/O or reads the clock. Catalogs can therefore be built, compared and checked
anywhere, including in tests and on an offline village point.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from govnet.federation.tree import Level
from govnet.node.domain.limits import excerpt

__all__ = [
    "CODE_PATTERN",
    "MAX_STATUTORY_DAYS",
    "Catalog",
    "CatalogError",
    "Fee",
    "ItemType",
    "Material",
    "ServiceItem",
    "load_catalog_file",
    "parse_catalog",
    "sample_catalog_path",
]

# A department prefix (pinyin initials such as HB for 环保, up to 8 characters)
# and a number, like "HB-0001". A fixed shape keeps codes easy to say over the
# phone and easy to print as a barcode, and it means a code can never contain
# spaces or line breaks that would garble a one-line error message.
CODE_PATTERN = re.compile(r"[A-Z][A-Z0-9]{1,7}-[0-9]{3,6}")

# The longest statutory limit the network accepts, in working days. The
# Administrative Licensing Law's default is 20 (30 with an extension) and joint
# approvals usually get 45, so anything above 60 is almost certainly a typo.
MAX_STATUTORY_DAYS = 60


class ItemType(StrEnum):
    """The case type fixed by the item itself (the other three kinds are per case)."""

    IMMEDIATE = "immediate"
    PROMISED = "promised"
    JOINT = "joint"


class CatalogError(ValueError):
    """A catalog (or one item of it) breaks a rule.

    ``item_code`` and ``field`` locate the problem for programs, for example a
    catalog editor that highlights the field. ``str()`` is always one line
    that names them for people, e.g.
    ``catalog item HB-0003, field promised_days: 25 exceeds statutory_days 20``.
    If the item has no usable code, ``item_code`` is None and the 1-based
    position ``index`` identifies it instead (``catalog item #4, field code: ...``).
    ``source`` is the file the catalog came from, when there was one.
    """

    def __init__(
        self,
        detail: str,
        *,
        item_code: str | None = None,
        field: str | None = None,
        index: int | None = None,
        source: str | None = None,
    ) -> None:
        self.detail = detail
        self.item_code = item_code
        self.field = field
        self.index = index
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        where: list[str] = []
        if self.source is not None:
            where.append(f"file {self.source}")
        if self.item_code is not None:
            where.append(f"item {self.item_code}")
        elif self.index is not None:
            where.append(f"item #{self.index}")
        if self.field is not None:
            where.append(f"field {self.field}")
        head = ("catalog " + ", ".join(where)) if where else "catalog"
        # Logs, window terminals and the supervision office's alert feed all
        # treat one line as one event, so a stray newline in a value or in
        # a parser's message must never split the error.
        return _one_line(f"{head}: {self.detail}")

    def located(self, *, index: int | None = None, source: str | None = None) -> CatalogError:
        """A copy with more context added. Context already present wins,
        since it was recorded closer to the problem."""
        return CatalogError(
            self.detail,
            item_code=self.item_code,
            field=self.field,
            index=self.index if self.index is not None else index,
            source=self.source if self.source is not None else source,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # The attributes are keyword-only, which the default exception pickling
        # cannot rebuild. Errors may cross process boundaries (worker pools),
        # so they are rebuilt explicitly.
        return (
            _rebuild_error,
            (self.detail, self.item_code, self.field, self.index, self.source),
        )


def _rebuild_error(
    detail: str, item_code: str | None, field: str | None, index: int | None, source: str | None
) -> CatalogError:
    return CatalogError(detail, item_code=item_code, field=field, index=index, source=source)


@dataclass(frozen=True)
class Material:
    """One required material (申请材料).

    A core material can never be missing. A non-core one may be missing when
    the item allows tolerance acceptance (容缺受理): the applicant promises to
    supply it later and the approval goes ahead meanwhile.

    Materials and fees are checked by the item that holds them, so that an
    error can name the item's code.
    """

    name: str
    core: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "core": self.core}


@dataclass(frozen=True)
class Fee:
    """One fee item with its published standard and legal basis (part of the ten publics).

    ``amount_fen`` is in fen (1/100 yuan). It is an integer so that fees add up
    exactly at the unified collection point.
    """

    name: str
    amount_fen: int
    standard: str
    basis: str
    # The first ``free_units`` units of this fee are not charged ("第一本证书免收": 1); each
    # further unit costs ``amount_fen`` (``node.domain.fees.assess`` applies it).
    free_units: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "amount_fen": self.amount_fen,
            "standard": self.standard,
            "basis": self.basis,
            "free_units": self.free_units,
        }


@dataclass(frozen=True)
class ServiceItem:
    """One service item as the catalog publishes it.

    The constructor checks every rule, so a ``ServiceItem`` that exists is a
    valid one. Code that receives an item never has to re-check it. Any
    violation raises :class:`CatalogError` naming the item code and the field.
    """

    code: str
    name: str
    department: str
    authority_level: Level
    item_type: ItemType
    legal_basis: str
    procedure: tuple[str, ...]
    conditions: str
    materials: tuple[Material, ...]
    statutory_days: int
    promised_days: int
    fees: tuple[Fee, ...]
    joint_departments: tuple[str, ...] = ()
    tolerance: bool = False
    proxy: bool = True
    timeout_default: bool = False
    progress_public: bool = True
    # 绿色通道: the promised limit of a case flagged for the green channel (major projects), in
    # working days; 0: the item's own ``promised_days`` (no shorter limit is published).
    green_channel_days: int = 0

    def __post_init__(self) -> None:
        # The checks follow the field order so that "the first error" is
        # predictable. Rules that involve two fields are checked at the
        # later of the two.
        code = _check_code(self.code)

        def at(name: str) -> _At:
            return _At(code, name)

        _check_text(self.name, at("name"))
        department = _check_text(self.department, at("department"))
        # Text is accepted for the two enums and converted. A StrEnum member
        # equals its text, so this changes nothing for equality or hashing.
        object.__setattr__(
            self, "authority_level", _to_enum(self.authority_level, Level, at("authority_level"), "level")
        )
        item_type = _to_enum(self.item_type, ItemType, at("item_type"), "item type")
        object.__setattr__(self, "item_type", item_type)
        _check_text(self.legal_basis, at("legal_basis"))
        steps = _check_tuple(self.procedure, at("procedure"), "steps")
        if not steps:
            at("procedure").fail("at least one step is required")
        for number, step in enumerate(steps, 1):
            _check_text(step, at("procedure"), f"step {number}")
        _check_text(self.conditions, at("conditions"))
        materials = _check_materials(self.materials, at("materials"))

        statutory = _check_int(self.statutory_days, at("statutory_days"), 1, MAX_STATUTORY_DAYS)
        promised = _check_int(self.promised_days, at("promised_days"), 0, None)
        if promised > statutory:
            at("promised_days").fail(f"{promised} exceeds statutory_days {statutory}")
        if item_type is ItemType.IMMEDIATE and promised != 0:
            at("promised_days").fail(
                f"immediate items are decided the same day, so promised_days must be 0, not {promised}"
            )
        if item_type is not ItemType.IMMEDIATE and promised == 0:
            at("promised_days").fail(
                f"{item_type.value} items need at least 1 promised day (0 is only for immediate items)"
            )

        _check_fees(self.fees, at("fees"))
        _check_joint(self.joint_departments, item_type, department, at("joint_departments"))

        if _check_bool(self.tolerance, at("tolerance")) and all(m.core for m in materials):
            # Core materials can never be missing. Tolerance without a
            # non-core material would promise something the window can never give.
            at("tolerance").fail(
                "tolerance acceptance needs at least one non-core material "
                "(core materials can never be missing)"
            )
        _check_bool(self.proxy, at("proxy"))
        _check_bool(self.timeout_default, at("timeout_default"))
        _check_bool(self.progress_public, at("progress_public"))
        green = _check_int(self.green_channel_days, at("green_channel_days"), 0, None)
        if green and item_type is ItemType.IMMEDIATE:
            at("green_channel_days").fail("immediate items are decided the same day; a green channel limit is for "
                                          "promised and joint items")
        if green > promised:
            at("green_channel_days").fail(f"{green} is not shorter than promised_days {promised}: the green "
                                          "channel shortens the limit")

    @property
    def core_materials(self) -> tuple[str, ...]:
        """Names of the materials that can never be missing, in catalog order."""
        return tuple(m.name for m in self.materials if m.core)

    @property
    def noncore_materials(self) -> tuple[str, ...]:
        """Names of the materials that tolerance acceptance may let follow later."""
        return tuple(m.name for m in self.materials if not m.core)

    def missing(self, provided: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Which materials are absent from ``provided``: ``(missing core, missing non-core)``.

        Both lists are complete and in catalog order, because the returned-case
        notice must name every missing material at once (一次性告知). Names in
        ``provided`` that the item does not ask for are ignored.
        """
        # A bare string is an iterable of characters. Accepting one would
        # silently report every material as missing.
        if isinstance(provided, str):
            raise TypeError("provided must be an iterable of material names, not a single string")
        have: set[str] = set()
        for name in provided:
            if not isinstance(name, str):
                raise TypeError(f"material names must be text, got {_describe(name)}")
            have.add(name.strip())
        return (
            tuple(m.name for m in self.materials if m.core and m.name not in have),
            tuple(m.name for m in self.materials if not m.core and m.name not in have),
        )

    def escalates_from(self, accepting: Level) -> bool:
        """True if a case accepted at ``accepting`` must be sent up (an escalated case).

        Authority sits higher when its rank is smaller (city 0 ... village 3).
        """
        return self.authority_level.rank < accepting.rank

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the catalog file's own shape (JSON- and TOML-ready).

        Every field is written out, defaults included, so the published form
        shows each rule explicitly instead of leaving readers to know the defaults.
        """
        return {
            "code": self.code,
            "name": self.name,
            "department": self.department,
            "authority_level": self.authority_level.value,
            "item_type": self.item_type.value,
            "legal_basis": self.legal_basis,
            "procedure": list(self.procedure),
            "conditions": self.conditions,
            "materials": [m.to_dict() for m in self.materials],
            "statutory_days": self.statutory_days,
            "promised_days": self.promised_days,
            "fees": [f.to_dict() for f in self.fees],
            "joint_departments": list(self.joint_departments),
            "tolerance": self.tolerance,
            "proxy": self.proxy,
            "timeout_default": self.timeout_default,
            "progress_public": self.progress_public,
            "green_channel_days": self.green_channel_days,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ServiceItem:
        """Build an item from parsed TOML or JSON, checking everything.

        The code is checked first, because every later message names it. Next
        come the keys (unknown, then missing, including inside materials and
        fees), and then the values in field order. Keys come before values
        because a misspelt key is usually what makes a value look missing.
        Text is stripped of surrounding whitespace. Everything else must
        already have the right type: ``"20"`` is not a number of days and
        ``1`` is not ``true``.
        ``fees`` is required even for free items (``fees = []``), since the
        fee is one of the ten publics and leaving it out may be a mistake.
        """
        if not isinstance(d, Mapping):
            raise CatalogError(f"expected a table for the item, got {_describe(d)}")
        if "code" not in d:
            raise CatalogError("missing; every item needs a code such as 'HB-0001'", field="code")
        code = _check_code(_strip(d["code"]))

        for key in d:
            if key not in _ITEM_KEYS:
                raise CatalogError(_unknown_key(key, _ITEM_KEYS), item_code=code, field=str(key))
        for key in _REQUIRED_ITEM_KEYS:
            if key not in d:
                hint = " (write fees = [] for a free item)" if key == "fees" else ""
                raise CatalogError(f"missing; every item must state it{hint}", item_code=code, field=key)

        values: dict[str, Any] = {}
        for key, raw in d.items():
            if key == "materials":
                values[key] = _tables(raw, _At(code, key), "material", _MATERIAL_KEYS, Material)
            elif key == "fees":
                values[key] = _tables(raw, _At(code, key), "fee", _FEE_KEYS, Fee, _REQUIRED_FEE_KEYS)
            elif isinstance(raw, (list, tuple)):
                values[key] = tuple(_strip(v) for v in raw)
            else:
                values[key] = _strip(raw)
        values["code"] = code
        return cls(**values)


# Computed from the dataclass so that the accepted keys cannot drift from the fields.
_ITEM_KEYS: tuple[str, ...] = tuple(f.name for f in fields(ServiceItem))
_REQUIRED_ITEM_KEYS: tuple[str, ...] = tuple(
    f.name for f in fields(ServiceItem) if f.default is MISSING and f.default_factory is MISSING
)
_MATERIAL_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Material))
_FEE_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Fee))
_REQUIRED_FEE_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Fee) if f.default is MISSING)


@dataclass(frozen=True)
class Catalog:
    """The whole published catalog: items with unique codes, and the node that issued it."""

    items: tuple[ServiceItem, ...]
    issuer: str

    def __post_init__(self) -> None:
        _check_text(self.issuer, _At(None, "issuer"))
        if not isinstance(self.items, tuple):
            raise CatalogError(f"expected a tuple of items, got {_describe(self.items)}", field="items")
        first_seen: dict[str, int] = {}
        for number, item in enumerate(self.items, 1):
            if not isinstance(item, ServiceItem):
                raise CatalogError(f"expected a ServiceItem, got {_describe(item)}", index=number)
            _claim_code(first_seen, item.code, number)

    @cached_property
    def _by_code(self) -> dict[str, ServiceItem]:
        # Built on first use. Lookups happen for every case, and a city
        # catalog holds several hundred items. cached_property writes to the
        # instance dict directly, so it works on a frozen dataclass.
        return {item.code: item for item in self.items}

    def get(self, code: str) -> ServiceItem | None:
        """The item with this code, or None if the catalog has no such item."""
        return self._by_code.get(code)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ServiceItem]:
        return iter(self.items)

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the shape :func:`parse_catalog` reads back."""
        return {"issuer": self.issuer, "item": [item.to_dict() for item in self.items]}


_TOP_KEYS: tuple[str, ...] = ("issuer", "item")


def parse_catalog(data: Mapping[str, Any]) -> Catalog:
    """Build a catalog from parsed TOML or JSON: ``{"issuer": ..., "item": [{...}, ...]}``.

    Raises :class:`CatalogError` for the first problem found. The top-level
    keys are checked first, then the issuer, then the items in order. An
    empty catalog is refused because a file with no items is almost certainly
    the wrong file.
    """
    if not isinstance(data, Mapping):
        raise CatalogError(f"expected a table at the top level, got {_describe(data)}")
    for key in data:
        if key not in _TOP_KEYS:
            raise CatalogError(_unknown_key(key, _TOP_KEYS), field=str(key))
    if "issuer" not in data:
        raise CatalogError(
            "missing; name the node that publishes this catalog, e.g. '371100'", field="issuer"
        )
    issuer = _check_text(_strip(data["issuer"]), _At(None, "issuer"))
    raw_items = data.get("item")
    if raw_items is None:
        raise CatalogError("missing; the catalog needs at least one [[item]] table", field="item")
    if not isinstance(raw_items, (list, tuple)):
        raise CatalogError(f"expected a list of [[item]] tables, got {_describe(raw_items)}", field="item")
    if not raw_items:
        raise CatalogError("the catalog needs at least one [[item]] table", field="item")

    items: list[ServiceItem] = []
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(raw_items, 1):
        try:
            item = ServiceItem.from_dict(raw)
        except CatalogError as err:
            raise err.located(index=number) from None
        # Checked here as well as in Catalog so that a duplicate is reported
        # in file order, before problems in later items.
        _claim_code(first_seen, item.code, number)
        items.append(item)
    return Catalog(items=tuple(items), issuer=issuer)


def load_catalog_file(path: Path | str) -> Catalog:
    """Read a catalog from a ``.toml`` or ``.json`` file; the only function here that does I/O.

    Every failure is a :class:`CatalogError` whose one-line message names the
    file. For bad TOML or JSON it also gives the line and column reported by
    the parser.
    """
    path = Path(path)
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise CatalogError(f"unsupported file type {path.suffix!r}; expected .toml or .json", source=source)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise CatalogError(f"cannot read the file: {err.strerror or err}", source=source) from err
    try:
        # utf-8-sig drops a byte-order mark, which editors on office Windows
        # machines often add and which both parsers would otherwise reject.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CatalogError(f"not UTF-8 text (bad byte at offset {err.start})", source=source) from err
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = json.loads(text, object_pairs_hook=_json_object)
    except tomllib.TOMLDecodeError as err:
        # tomllib puts "(at line N, column M)" in its message.
        raise CatalogError(f"invalid TOML: {err}", source=source) from err
    except json.JSONDecodeError as err:
        where = f"(at line {err.lineno}, column {err.colno})"
        raise CatalogError(f"invalid JSON: {err.msg} {where}", source=source) from err
    except CatalogError as err:  # a duplicate JSON key, from _json_object
        raise err.located(source=source) from None
    try:
        return parse_catalog(data)
    except CatalogError as err:
        raise err.located(source=source) from None


def sample_catalog_path() -> Path:
    """Where the sample catalog shipped with the package lives (node/domain/data/catalog.toml)."""
    return Path(__file__).resolve().parent / "data" / "catalog.toml"


# --- checking helpers -------------------------------------------------------------


@dataclass(frozen=True)
class _At:
    """Where a check is looking: the item code (if known) and the field."""

    code: str | None
    field: str

    def fail(self, detail: str) -> NoReturn:
        raise CatalogError(detail, item_code=self.code, field=self.field)


_E = TypeVar("_E", bound=StrEnum)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _kind(value: object) -> str:
    """Name a value's type in the words of the catalog file, not Python's."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "table"
    if value is None:
        return "nothing"
    return type(value).__name__


def _describe(value: object) -> str:
    if value is None:
        return "nothing"
    # from_dict turns lists into tuples; show them as the list the file had.
    shown = repr(list(value)) if isinstance(value, tuple) else repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{_kind(value)} {shown}"


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _unknown_key(key: object, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1)
    if close:
        return f"unknown key {excerpt(str(key))} (did you mean {close[0]!r}?)"
    return f"unknown key {excerpt(str(key))} (expected one of {', '.join(known)})"


def _check_code(code: object) -> str:
    # No item code is attached here, so that a malformed code never lands in
    # the place where a valid one is expected. The index locates the item instead.
    at = _At(None, "code")
    if not isinstance(code, str):
        at.fail(f"expected text, got {_describe(code)}")
    if CODE_PATTERN.fullmatch(code) is None:
        at.fail(
            f"{excerpt(code)} is not a valid item code "
            "(capital-letter department prefix, '-', 3 to 6 digits, e.g. 'HB-0001')"
        )
    return code


def _check_text(value: object, at: _At, what: str = "") -> str:
    label = f"{what}: " if what else ""
    if not isinstance(value, str):
        at.fail(f"{label}expected text, got {_describe(value)}")
    if not value.strip():
        at.fail(f"{label}must not be empty")
    if value != value.strip():
        at.fail(f"{label}{excerpt(value)} has leading or trailing whitespace")
    return value


def _check_int(value: object, at: _At, low: int, high: int | None, what: str = "") -> int:
    label = f"{what}: " if what else ""
    # bool is a subclass of int in Python, but ``true`` days is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        at.fail(f"{label}expected an integer, got {_describe(value)}")
    if high is None and value < low:
        at.fail(f"{label}must be at least {low}, got {value}")
    if high is not None and not low <= value <= high:
        at.fail(f"{label}must be between {low} and {high}, got {value}")
    return value


def _check_bool(value: object, at: _At) -> bool:
    if not isinstance(value, bool):
        at.fail(f"expected true or false, got {_describe(value)}")
    return value


def _check_tuple(value: object, at: _At, what: str) -> tuple[Any, ...]:
    if not isinstance(value, tuple):
        at.fail(f"expected a list of {what}, got {_describe(value)}")
    return value


def _to_enum(value: object, enum_type: type[_E], at: _At, noun: str) -> _E:
    if isinstance(value, enum_type):
        return value
    choices = ", ".join(member.value for member in enum_type)
    if isinstance(value, str):
        try:
            return enum_type(value.strip())
        except ValueError:
            at.fail(f"unknown {noun} {excerpt(value)} (expected one of {choices})")
    at.fail(f"expected a {noun} name ({choices}), got {_describe(value)}")


def _check_materials(value: object, at: _At) -> tuple[Material, ...]:
    materials = _check_tuple(value, at, "materials")
    if not materials:
        at.fail("at least one material is required")
    seen: set[str] = set()
    for number, material in enumerate(materials, 1):
        if not isinstance(material, Material):
            at.fail(f"material {number}: expected a table with name and core, got {_describe(material)}")
        name = _check_text(material.name, at, f"material {number} name")
        if not isinstance(material.core, bool):
            at.fail(f"material {number} ({name}): core must be true or false, got {_describe(material.core)}")
        if name in seen:
            # A one-time notice that names a material twice confuses the applicant.
            at.fail(f"material {excerpt(name)} is listed twice")
        seen.add(name)
    if not any(m.core for m in materials):
        # Something, at least the application itself, must always be present.
        # Otherwise tolerance acceptance could accept an empty folder.
        at.fail("at least one material must be core")
    return materials


def _check_fees(value: object, at: _At) -> tuple[Fee, ...]:
    fees = _check_tuple(value, at, "fees")
    seen: set[str] = set()
    for number, fee in enumerate(fees, 1):
        if not isinstance(fee, Fee):
            at.fail(f"fee {number}: expected a table, got {_describe(fee)}")
        name = _check_text(fee.name, at, f"fee {number} name")
        _check_int(fee.amount_fen, at, 0, None, f"fee {number} ({name}) amount_fen")
        _check_text(fee.standard, at, f"fee {number} ({name}) standard")
        _check_text(fee.basis, at, f"fee {number} ({name}) basis")
        _check_int(fee.free_units, at, 0, None, f"fee {number} ({name}) free_units")
        if name in seen:
            # Fees are collected once, per name. A duplicate would charge twice.
            at.fail(f"fee {excerpt(name)} is listed twice")
        seen.add(name)
    return fees


def _check_joint(value: object, item_type: ItemType, department: str, at: _At) -> None:
    others = _check_tuple(value, at, "departments")
    for number, other in enumerate(others, 1):
        _check_text(other, at, f"department {number}")
    if item_type is not ItemType.JOINT:
        if others:
            at.fail(f"only joint items name joint departments (this item is {item_type.value})")
        return
    if not others:
        at.fail("a joint item must name at least one department besides the lead department")
    if department in others:
        # The lead (first-handler) department is `department`. Listing it
        # again would make it notify and wait for itself.
        at.fail(f"lists the lead department {excerpt(department)}; name only the other departments")
    if len(set(others)) != len(others):
        twice = next(d for d in others if others.count(d) > 1)
        at.fail(f"department {excerpt(twice)} is listed twice")


def _claim_code(first_seen: dict[str, int], code: str, number: int) -> None:
    if code in first_seen:
        raise CatalogError(
            f"duplicate code; item #{first_seen[code]} already uses it",
            item_code=code,
            field="code",
            index=number,
        )
    first_seen[code] = number


def _tables(raw: object, at: _At, noun: str, keys: Sequence[str], build: Callable[..., object],
            required: Sequence[str] | None = None) -> object:
    """Turn a list of key/value tables into model objects.

    Only the keys are checked here. Values, and inputs of the wrong shape,
    pass through to the constructor's checks, so those messages come from one place.
    """
    if not isinstance(raw, (list, tuple)):
        return raw
    built: list[object] = []
    for number, entry in enumerate(raw, 1):
        if not isinstance(entry, Mapping):
            built.append(entry)
            continue
        for key in entry:
            if key not in keys:
                at.fail(f"{noun} {number}: {_unknown_key(key, keys)}")
        for key in keys if required is None else required:
            if key not in entry:
                at.fail(f"{noun} {number}: missing key {excerpt(str(key))}")
        built.append(build(**{key: _strip(entry[key]) for key in keys if key in entry}))
    return tuple(built)


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys without a word. TOML refuses
    # duplicates, so JSON is held to the same rule.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CatalogError(f"invalid JSON: duplicate key {excerpt(str(key))}")
        result[key] = value
    return result
