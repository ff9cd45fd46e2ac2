"""Receipt numbers: what the applicant is handed at submission.

A receipt number must be

* unique across the whole network without coordination: village points
  issue receipts while offline, so no central counter can be asked. The
  number therefore starts with the issuing node's id (unique by law), then
  the store's incarnation, then a per-store sequence;
* safe after a restore: when a store is rebuilt from a backup its sequence
  rewinds, so the incarnation is raised and old numbers are never reissued;
* easy to read aloud over a phone or a counter: digits only, in groups;
* self-checking: the last digit is a Damm check digit over every digit
  before it, which catches any single mistyped digit and any swap of two
  adjacent digits, the two commonest slips when a number is copied by hand.

Canonical text: ``{node_id}-{incarnation:02d}-{seq:06d}-{check}``, e.g.
``371102001201-01-000123-7``. Larger incarnations or sequences just use more
digits; padding is only ever up to the minimum width, so each receipt has
exactly one canonical text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from govnet.federation.tree import NodeIdError, level_of
from govnet.node.domain.limits import excerpt

# The totally anti-symmetric quasigroup of order 10 from H. Michael Damm's
# 2004 thesis. Row = running interim digit, column = next input digit. Its
# zero diagonal and anti-symmetry are what make every single substitution
# and every adjacent transposition change the final interim digit.
_DAMM: tuple[tuple[int, ...], ...] = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

# Groups may be separated by hyphens or spaces (people read numbers aloud in
# groups and type what they hear), in any mix and amount.
_SEPARATORS = re.compile(r"[\s-]+")

_FORMAT_HINT = "expected node-incarnation-sequence-check, like 371102001201-01-000123-7"


class ReceiptError(ValueError):
    """A receipt number is malformed, fails its check digit, or has
    field values no node would issue."""


def damm_check_digit(digits: str) -> str:
    """The Damm check digit for a string of ASCII digits.

    Appending it makes the whole string check to 0; the empty string's
    check digit is "0".
    """
    if not isinstance(digits, str) or not (digits.isascii() and (digits.isdigit() or digits == "")):
        raise ReceiptError(f"cannot compute a check digit for {digits!r}: expected only the digits 0-9")
    interim = 0
    for char in digits:
        interim = _DAMM[interim][ord(char) - ord("0")]
    return str(interim)


@dataclass(frozen=True, order=True)
class Receipt:
    """One receipt number. Ordering sorts by issuing node, then incarnation,
    then sequence, which is issue order within a node."""

    node_id: str
    incarnation: int
    seq: int

    def __post_init__(self) -> None:
        try:
            level_of(self.node_id)
        except NodeIdError as err:
            raise ReceiptError(f"receipt node id is not valid: {err}") from None
        # bool is an int subclass; True as an incarnation is always a bug.
        for name, value in (("incarnation", self.incarnation), ("seq", self.seq)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ReceiptError(f"receipt {name} {value!r} is not valid: expected a whole number of at least 1")

    def _body(self) -> str:
        return f"{self.node_id}-{self.incarnation:02d}-{self.seq:06d}"

    def __str__(self) -> str:
        body = self._body()
        return f"{body}-{damm_check_digit(body.replace('-', ''))}"

    @classmethod
    def parse(cls, text: str) -> Receipt:
        """Read a receipt number as typed or read back by a person.

        Accepts surrounding spaces, spaces instead of hyphens, and
        full-width digits from a Chinese input method. The check digit is
        verified before anything else about the values, so a typo is
        reported as a typo even when it also broke the node id.
        """
        if not isinstance(text, str):
            raise ReceiptError(f"receipt {excerpt(str(text))} is not text: {_FORMAT_HINT}")
        folded = unicodedata.normalize("NFKC", text).strip()
        # Quoted whole only when short: a message never echoes more than a prefix of its input.
        shown = folded if folded and len(folded) <= 40 and folded.isprintable() else excerpt(folded or text, 40)
        groups = _SEPARATORS.split(folded) if folded else []
        if len(groups) != 4 or not all(g.isascii() and g.isdigit() for g in groups):
            raise ReceiptError(f"receipt {shown}: not four groups of digits; {_FORMAT_HINT}")
        node_id, incarnation, seq, check = groups
        if len(check) != 1:
            raise ReceiptError(f"receipt {shown}: the last group is one check digit, found {len(check)} digits")
        if damm_check_digit(node_id + incarnation + seq) != check:
            raise ReceiptError(
                f"receipt {shown}: check digit does not match — a digit was mistyped or two were swapped"
            )
        try:
            level_of(node_id)
        except NodeIdError as err:
            raise ReceiptError(f"receipt {shown}: {err}") from None
        # One receipt, one text: padding only up to the minimum width, so
        # "0000123" is rejected rather than silently equal to "000123".
        for name, group, width in (("incarnation", incarnation, 2), ("sequence", seq, 6)):
            if len(group) < width or (len(group) > width and group[0] == "0"):
                raise ReceiptError(
                    f"receipt {shown}: the {name} group {group} should have {width} digits "
                    f"(more only when needed, without leading zeros); {_FORMAT_HINT}"
                )
        if int(incarnation) < 1 or int(seq) < 1:
            raise ReceiptError(f"receipt {shown}: incarnation and sequence start at 1; no node issues 0")
        return cls(node_id=node_id, incarnation=int(incarnation), seq=int(seq))
