"""Free text from a client, made safe to store, show and carry: one rule per kind of field.

Every text a client sends is NFC-normalised first. NFC only composes what Unicode says is
the same character written two ways (e + combining acute = é), so a name typed on two input
methods is stored the same and counted the same; it never changes what a character is. NFKC
would (full-width letters, compatibility ideographs, ㈱ → (株)): the applicant's name must stay
as on the card, so NFKC is used only where the value is a number or a code (``applicant``
folds full-width digits of an ID or a phone, ``receipt`` of a receipt).

Then, by the field's kind (``limits.Kind``):

``name`` (applicant name, agent, actor, approver)
    one line: control characters (Cc), line and paragraph separators, bidirectional controls,
    zero-width and other format characters (Cf: soft hyphen, invisible operators, tags) are
    REFUSED, never stripped: a name is identity, and a name
    that silently changed between the card and the record is worse than a refusal the clerk
    can act on. It must contain at least one letter (Unicode category L*): "\\u200b",
    "\\ufeff", a lone combining mark or punctuation alone are not names.
``label`` (department, material names)
    as ``name``, without the letter rule (a material may be named by a number or a code).
``text`` (note, reason, comment, complaint, resolution)
    prose: line feeds and tabs are kept (CR LF and lone CR become LF); zero-width characters
    (U+200B-200D, U+2060, U+FEFF) are STRIPPED — they arrive with text pasted from web pages
    and word processors, are invisible, and removing them changes nothing a reader sees;
    bidirectional controls are REFUSED — an override or isolate makes the text display in
    another order than it is stored (a reason that reads differently on screen and in the
    record; "Trojan Source"), and removing them would change what the clerk saw; every
    other control character is REFUSED (a NUL or an escape sequence is never prose).
``token`` (idempotency key, receipt, item code, action, kind, rating, node, time stamps)
    one line, no control, bidirectional, zero-width or other format characters (refused).

Surrounding white space is stripped from every kind. Lengths are counted after all this
(``limits`` gives them), so what is counted is what is stored.

Bidirectional controls: U+061C, U+200E, U+200F, U+202A-202E, U+2066-2069.
Zero-width: U+200B, U+200C, U+200D, U+2060, U+FEFF.
"""

from __future__ import annotations

import unicodedata

from govnet.node.domain.limits import Kind, count, excerpt

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
_KEPT_IN_TEXT = frozenset("\n\t")
_NAMES = {Kind.NAME: "name", Kind.LABEL: "name", Kind.TEXT: "text", Kind.TOKEN: "value"}


class TextError(ValueError):
    """A text a client sent breaks its field's rule; ``str()`` is one line saying which rule.
    ``index``: which entry of a list (``clean_all``), None for a single value."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index

    def __reduce__(self) -> tuple[type[TextError], tuple[str, int | None]]:
        return (type(self), (str(self), self.index))


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def clean(value: str, kind: Kind, limit: int, label: str) -> str:
    """``value`` normalised by the rule of ``kind`` and within ``limit`` characters, or ``TextError``.

    ``label`` is how the message names the field ("note", "applicant name")."""
    if not isinstance(value, str):
        raise TextError(f"{label} is not text")
    if kind is Kind.SECRET:  # a password is compared as typed: only its length is checked
        if len(value) > limit:
            raise TextError(f"{label} is {count(len(value))} characters; at most {count(limit)} are allowed")
        return value
    text = unicodedata.normalize("NFC", value)
    if kind is Kind.TEXT:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if any(c in ZERO_WIDTH for c in text):
            text = "".join(c for c in text if c not in ZERO_WIDTH)
    text = text.strip()
    # The length first: refusing a megabyte should not need a scan of it for what else is wrong.
    if len(text) > limit:
        raise TextError(f"{label} is {count(len(text))} characters; at most {count(limit)} are allowed")
    for position, char in enumerate(text, start=1):
        if char in BIDI_CONTROLS:
            raise TextError(f"{label} contains a bidirectional control character ({_describe(char)}) at "
                            f"character {count(position)}; it makes text display in another order than it is "
                            "stored: remove it and retype")
        if kind is Kind.TEXT and char in _KEPT_IN_TEXT:
            continue
        category = unicodedata.category(char)
        # Format characters (Cf) beyond the two named sets (soft hyphen, invisible operators, tags)
        # are invisible too: prose may carry them (a soft hyphen pasted with text), one-line values not.
        invisible = char in ZERO_WIDTH or (category == "Cf" and kind is not Kind.TEXT)
        if category in ("Cc", "Zl", "Zp") or invisible:
            what = "an invisible character" if invisible else "a control character"
            where = "" if kind is Kind.TEXT else " (one line only)"
            raise TextError(f"{label} contains {what} ({_describe(char)}) at character {count(position)}{where}; "
                            "remove it and retype")
    if kind is Kind.NAME and text and not any(unicodedata.category(c).startswith("L") for c in text):
        raise TextError(f"{label} {excerpt(text)} has no letter: a name needs at least one visible letter")
    return text


def clean_all(values: tuple[str, ...] | list[str], kind: Kind, limit: int, entries: int,
              label: str) -> tuple[str, ...]:
    """Each entry of a list cleaned by ``clean``; at most ``entries`` of them. A ``TextError``
    names the entry by its index (``label[3]``), as the request's field path does."""
    if len(values) > entries:
        raise TextError(f"{label} has {count(len(values))} entries; at most {count(entries)} are allowed")
    out = []
    for i, v in enumerate(values):
        try:
            out.append(clean(v, kind, limit, f"{label}[{i}]"))
        except TextError as exc:
            raise TextError(str(exc), index=i) from None
    return tuple(out)
