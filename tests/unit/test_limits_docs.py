"""The limits are stated in three places — limits.py, the .proto comments, the README — and must agree.

The .proto files are read as text: a field's leading comment is the block of ``//`` lines just
above it (what reflection-based tools show); the README's "Limits" table is read row by row."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from govnet.node.domain.limits import LIMITS, Limit, describe

ROOT = Path(__file__).resolve().parents[2]
PROTOS = sorted((ROOT / "protos" / "govnet" / "v1").glob("*.proto"))


@cache
def leading_comments() -> dict[tuple[str, str], str]:
    """(message, field) -> the field's leading comment, its lines joined by spaces."""
    found: dict[tuple[str, str], str] = {}
    for path in PROTOS:
        message = None
        comment: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            opened = re.match(r"message (\w+) \{", stripped)
            if opened:
                message, comment = opened.group(1), []
                continue
            if stripped.startswith("//"):
                comment.append(stripped[2:].strip())
                continue
            field = re.match(r"(?:repeated\s+)?[\w.]+\s+(\w+)\s*=\s*\d+\s*;", stripped)
            if message and field:
                found[(message, field.group(1))] = " ".join(comment)
            if stripped == "}":
                message = None
            comment = []
    return found


@cache
def readme_rows() -> dict[str, tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Limits", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = (cells[1], cells[2])
    return rows


def name(limit: Limit) -> str:
    return f"{limit.message}.{limit.field}"


@pytest.mark.parametrize("limit", LIMITS, ids=name)
def test_every_limit_is_in_its_fields_proto_comment(limit: Limit) -> None:
    comments = leading_comments()
    assert (limit.message, limit.field) in comments, f"no field {name(limit)} in the .proto files"
    comment = comments[(limit.message, limit.field)]
    stated = describe(limit).removeprefix("Required. ")
    assert stated in comment, f"{name(limit)}: the comment {comment!r} does not say {stated!r}"
    assert ("Required" in comment) == limit.required, f"{name(limit)}: 'Required' in {comment!r}"


def test_no_proto_comment_states_a_limit_the_table_does_not_have() -> None:
    table = {(limit.message, limit.field) for limit in LIMITS}
    stray = [k for k, c in leading_comments().items() if "At most" in c and k not in table]
    assert stray == []


@pytest.mark.parametrize("limit", LIMITS, ids=name)
def test_every_limit_is_in_the_readme_table(limit: Limit) -> None:
    assert readme_rows().get(name(limit)) == (describe(limit), limit.kind.value)


def test_the_readme_table_has_no_other_rows() -> None:
    assert set(readme_rows()) == {name(limit) for limit in LIMITS}
