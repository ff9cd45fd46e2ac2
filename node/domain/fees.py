"""Fees (收费): what a case owes, how money is written, and how it is paid at the collection point.

What is due. An item publishes its fees (``catalog.Fee``: amount, standard, legal basis, and
``free_units``, the units that are not charged — "第一本证书免收，每增加一本收取10元" is one
fee of 10.00 yuan with ``free_units = 1``). ``assess`` computes a case's fees from its item
and the units it takes (one of each fee unless told otherwise): the first ``free_units``
units cost nothing, each further unit ``amount_fen``. So a transfer registration that
issues one certificate owes 80.00 yuan (the registration fee alone), not the 90.00 that
summing the published amounts gave.

When. The fees are assessed when the case is approved (a rejected case owes nothing) and
recorded on the case (``CaseState.fees_due_fen``). The applicant pays once, at the unified
collection point (统一收费): each payment is a ``pay`` step of the case (amount, method,
payment number, who, when: its event); the person with the department's signing power may
instead waive what is still due (``waive_fee``, with its reason, e.g. an exemption for
recipients of minimum living allowance). A case is not delivered while anything is due
(``lifecycle.fees_outstanding``): the result is handed over once paid or waived.

Money. Always whole fen (1/100 yuan) as integers, never floats: sums at the collection point
and the statistics that roll up to the city are exact. People type and read yuan with at most
two decimals ("80", "80.5", "80.00"): ``parse_yuan`` and ``yuan`` convert at the edge.

This module is pure: no store, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from govnet.node.domain.catalog import ServiceItem
from govnet.node.domain.limits import excerpt

# The most one payment may be (100 million yuan): a larger figure is a typing slip, not a fee.
MAX_PAYMENT_FEN = 100_000_000_00
_YUAN = re.compile(r"(\d{1,12})(?:\.(\d{1,2}))?")


class PaymentMethod(StrEnum):
    """How the applicant paid at the collection point."""

    CASH = "cash"
    CARD = "card"  # bank card at the counter's terminal (POS)
    WECHAT = "wechat"
    ALIPAY = "alipay"
    BANK = "bank"  # bank transfer, or payment at a bank counter with the payment notice

    @property
    def label(self) -> str:
        return _METHOD_LABELS[self]


_METHOD_LABELS = {
    PaymentMethod.CASH: "现金",
    PaymentMethod.CARD: "银行卡",
    PaymentMethod.WECHAT: "微信支付",
    PaymentMethod.ALIPAY: "支付宝",
    PaymentMethod.BANK: "银行转账",
}


def check_method(text: str) -> PaymentMethod:
    """The payment method by its name or Chinese label; ValueError naming them all."""
    value = text.strip().lower()
    for method in PaymentMethod:
        if value in (method.value, method.label):
            return method
    known = ", ".join(f"{m.value} ({m.label})" for m in PaymentMethod)
    raise ValueError(f"payment method {excerpt(text)} is not one of {known}")


def parse_yuan(text: str) -> int:
    """An amount typed in yuan ("80", "80.5", "80.00") as whole fen; ValueError for anything
    else: negative, more than two decimals, exponents, separators, or above ``MAX_PAYMENT_FEN``."""
    value = text.strip()
    match = _YUAN.fullmatch(value)
    if match is None:
        if value.startswith("-"):
            raise ValueError(f"amount {excerpt(text)} is negative: give the amount paid, in yuan (e.g. 80.00)")
        if re.fullmatch(r"\d+\.\d{3,}", value):
            raise ValueError(f"amount {excerpt(text)} has more than two decimals: money is counted in fen (0.01 yuan)")
        raise ValueError(f"amount {excerpt(text)} is not an amount in yuan with at most two decimals (e.g. 80.00)")
    whole, cents = match.group(1), (match.group(2) or "").ljust(2, "0")
    fen = int(whole) * 100 + int(cents)
    if fen > MAX_PAYMENT_FEN:
        raise ValueError(f"amount {excerpt(text)} is above {yuan(MAX_PAYMENT_FEN)} yuan: check the figure")
    return fen


def yuan(fen: int) -> str:
    """Fen as yuan with two decimals: 8000 -> "80.00" (a sign for negative figures)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


@dataclass(frozen=True)
class FeeLine:
    """One fee of a case: how many units it takes, how many of them are free, what is due."""

    name: str
    units: int
    free_units: int
    unit_fen: int
    due_fen: int


@dataclass(frozen=True)
class Assessment:
    lines: tuple[FeeLine, ...]

    @property
    def total_fen(self) -> int:
        return sum(line.due_fen for line in self.lines)


def assess(item: ServiceItem, units: Mapping[str, int] | None = None) -> Assessment:
    """The fees a case of ``item`` owes. ``units``: per fee name, how many units the case takes
    (certificates issued …); one of each when not given. A fee's first ``free_units`` are free."""
    units = units or {}
    unknown = sorted(set(units) - {f.name for f in item.fees})
    if unknown:
        raise ValueError(f"item {item.code} has no fee {excerpt(unknown[0])}")
    lines = []
    for fee in item.fees:
        n = units.get(fee.name, 1)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"units of fee {excerpt(fee.name)} must be a whole number from 0, not {n!r}")
        charged = max(0, n - fee.free_units)
        lines.append(FeeLine(fee.name, n, fee.free_units, fee.amount_fen, charged * fee.amount_fen))
    return Assessment(tuple(lines))
