"""The audit chain's pure core (``node.domain.audit``): pinned bytes, verification that names
the first bad event, and the ancestors' judgement of a descendant's next head.

If the pinned bytes or hashes change, every chain already stored stops verifying: that is
a new ``FORMAT`` tag and a migration, never an edit of these values.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest

from govnet.node.domain.audit import (
    GENESIS,
    AuditError,
    ChainRow,
    Head,
    Judgement,
    Kept,
    Problem,
    Recorded,
    canonical,
    chain,
    digest,
    judge,
    link,
    verify,
)

EVENT: dict[str, Any] = dict(
    receipt="371102001201-01-000001-3", seq=2, action="accept", from_status="received", to_status="accepted",
    actor="王科员", reason="", detail='{"note": "材料齐全"}', happened_at="2026-03-10T01:04:00.000000+00:00",
    recorded_at="2026-03-10T01:04:00.000000+00:00", origin="371102001", origin_incarnation=1, origin_seq=7,
    superseded=0,
)
CANONICAL = (
    '["govnet.audit/1","371102001201-01-000001-3",2,"accept","received","accepted","王科员","",'
    '"{\\"note\\": \\"材料齐全\\"}","2026-03-10T01:04:00.000000+00:00","2026-03-10T01:04:00.000000+00:00",'
    '"371102001",1,7,false]'
).encode()


def test_the_canonical_bytes_of_an_event_are_pinned() -> None:
    assert canonical(EVENT) == CANONICAL
    # SQLite's 0/1 and Python's booleans are the same event; a seq stored as text is not.
    assert canonical({**EVENT, "superseded": False}) == CANONICAL
    assert canonical({**EVENT, "seq": "2"}) != CANONICAL
    assert canonical({**EVENT, "extra_column": "ignored"}) == CANONICAL


def test_the_link_hashes_are_pinned_for_both_algorithms() -> None:
    assert link("sha256", GENESIS, EVENT) == "61b077ee85748e0db1fc7da78cd27543653d58ac3409e0c9f4e5ed735b62d2ed"
    assert link("sha256", GENESIS, EVENT) == hashlib.sha256(bytes(32) + CANONICAL).hexdigest()
    assert link("sm3", GENESIS, EVENT) == "55d959c31dcc873a20cbc4be98a1a53b2e09e9e1b8f426c97355c066a027d807"
    # GB/T 32905-2016's first example: SM3("abc").
    assert digest("sm3", b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    with pytest.raises(AuditError, match="not one of sha256, sm3"):
        digest("md5", b"")


# --- verify: a chain of three cases' events, then one damage at a time ---


def _events() -> list[dict[str, Any]]:
    out = []
    for n, (receipt, seq, action) in enumerate([("R1", 1, "submit"), ("R2", 1, "submit"), ("R1", 2, "accept"),
                                                ("R1", 3, "review"), ("R2", 2, "accept"), ("R1", 4, "approve")]):
        out.append({**EVENT, "receipt": receipt, "seq": seq, "action": action, "origin_seq": n + 1})
    return out


def _rows(algorithm: str = "sha256") -> list[ChainRow]:
    events = _events()
    return [ChainRow(i + 1, h, e) for i, (h, e) in enumerate(zip(chain(algorithm, events), events))]


def _recorded(rows: list[ChainRow], algorithm: str = "sha256") -> Recorded:
    return Recorded(algorithm, len(rows), str(rows[-1].hash))


def _edit(rows: list[ChainRow], i: int, **changes: Any) -> list[ChainRow]:
    return [replace(r, event={**r.event, **changes}) if k == i else r for k, r in enumerate(rows)]


def _swap_positions(rows: list[ChainRow], i: int, j: int) -> list[ChainRow]:
    out = list(rows)
    out[i], out[j] = replace(rows[j], position=rows[i].position), replace(rows[i], position=rows[j].position)
    return out


@pytest.mark.parametrize("algorithm", ["sha256", "sm3"])
def test_an_intact_chain_verifies_with_its_count_and_head(algorithm: str) -> None:
    rows = _rows(algorithm)
    result = verify(list(reversed(rows)), _recorded(rows, algorithm))  # read in any order
    assert (result.intact, result.count, result.head) == (True, 6, rows[-1].hash)
    assert verify([], Recorded(algorithm, 0, GENESIS)).intact


ROWS = _rows()
FULL = _recorded(ROWS)
COUNTS = {"R1": 4, "R2": 2}  # what the cases' rows say (names an event deleted at the end)
DAMAGE: list[tuple[str, list[ChainRow], Recorded, tuple[Problem, str, int, int]]] = [
    ("actor edited", _edit(ROWS, 2, actor="首席代表"), FULL, (Problem.EDITED, "R1", 2, 3)),
    ("time edited", _edit(ROWS, 3, happened_at="2026-01-01T00:00:00.000000+00:00"), FULL, (Problem.EDITED, "R1", 3, 4)),
    ("reason edited", _edit(ROWS, 4, reason="已核实"), FULL, (Problem.EDITED, "R2", 2, 5)),
    ("seq stored as text", _edit(ROWS, 0, seq="1"), FULL, (Problem.EDITED, "R1", "1", 1)),  # type: ignore[list-item]
    ("deleted in the middle", ROWS[:3] + ROWS[4:], FULL, (Problem.MISSING, "R1", 3, 4)),
    ("deleted at the end", ROWS[:5], FULL, (Problem.MISSING, "R1", 4, 6)),
    ("deleted, positions closed up", ROWS[:3] + [replace(r, position=(r.position or 0) - 1) for r in ROWS[4:]], FULL,
     (Problem.EDITED, "R2", 2, 4)),
    ("rows moved", _swap_positions(ROWS, 1, 4), FULL, (Problem.OUT_OF_ORDER, "R2", 2, 2)),
    ("seqs exchanged within a case", _edit(_edit(ROWS, 2, seq=3), 3, seq=2), FULL, (Problem.OUT_OF_ORDER, "R1", 2, 3)),
    ("head row moved back", ROWS, Recorded("sha256", 5, str(ROWS[4].hash)), (Problem.EDITED, "R1", 4, 6)),
    ("forged row inserted", [*ROWS, ChainRow(None, None, {**EVENT, "receipt": "R9"})], FULL,
     (Problem.UNCHAINED, "R9", 2, 0)),
]


@pytest.mark.parametrize(("name", "rows", "recorded", "expected"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_the_first_damage_is_named_by_receipt_seq_and_what_is_wrong(
        name: str, rows: list[ChainRow], recorded: Recorded, expected: tuple[Problem, str, int, int]) -> None:
    found = verify(rows, recorded, COUNTS).divergence
    assert found is not None, name
    assert (found.problem, found.receipt, found.seq, found.position) == expected, found.line()
    assert found.line().startswith(f"{expected[0].value}: receipt {expected[1]} seq {expected[2]} "), found.line()


def test_a_forger_who_recomputes_the_chain_passes_verify_but_not_the_ancestors() -> None:
    events = _events()
    events[2] = {**events[2], "actor": "首席代表"}
    hashes = chain("sha256", events)
    forged = [ChainRow(i + 1, h, e) for i, (h, e) in enumerate(zip(hashes, events))]
    assert verify(forged, Recorded("sha256", 6, hashes[-1])).intact
    kept = Kept(1, "sha256", 4, str(ROWS[3].hash), 1)
    verdict = judge(kept, Head("371102001", 1, "sha256", 7, "ff" * 32, 4, hashes[3]), my_incarnation=1)
    assert verdict.judgement is Judgement.BROKEN and "rewritten or rolled back at or before position 4" in verdict.reason


# --- judge: the next head against the one held ---

KEPT = Kept(incarnation=2, algorithm="sha256", count=4, head="aa" * 32, kept_by_incarnation=1, seq=5)
NEXT = Head("371102001", 2, "sha256", 9, "bb" * 32, 4, "aa" * 32, seq=6)
JUDGED: list[tuple[str, Kept | None, Head, int, Judgement, str]] = [
    ("first", None, NEXT, 1, Judgement.FIRST, "first head"),
    ("extends", KEPT, NEXT, 1, Judgement.EXTENDS, "4 -> 9"),
    ("quiet heartbeat", KEPT, replace(NEXT, count=4, head="aa" * 32), 1, Judgement.EXTENDS, "4 -> 4"),
    ("rewritten", KEPT, replace(NEXT, checkpoint_hash="cc" * 32), 1, Judgement.BROKEN, "rewritten"),
    ("shrank", KEPT, replace(NEXT, count=3), 1, Judgement.BROKEN, "shrank from 4 to 3"),
    ("checkpoint elsewhere", KEPT, replace(NEXT, checkpoint_count=6), 1, Judgement.BROKEN, "cannot be shown"),
    ("algorithm changed", KEPT, replace(NEXT, algorithm="sm3"), 1, Judgement.BROKEN, "from sha256 to sm3"),
    ("restored child", KEPT, replace(NEXT, incarnation=3, count=2, checkpoint_count=0), 1, Judgement.RESTORED,
     "restored as incarnation 3"),
    ("restored ancestor", KEPT, replace(NEXT, checkpoint_count=7), 2, Judgement.RESTORED, "this node was restored"),
    ("stale", KEPT, replace(NEXT, incarnation=1), 1, Judgement.STALE, "incarnation 2 is held"),
    ("an older head again (a restored relay)", KEPT, replace(NEXT, count=2, seq=3), 1, Judgement.STALE, "a repeat"),
    ("the held head again", KEPT, replace(NEXT, count=4, head="aa" * 32, checkpoint_count=2, seq=5), 1,
     Judgement.STALE, "again"),
    ("another head under the held one's identity", KEPT, replace(NEXT, seq=5), 1, Judgement.BROKEN, "copied back"),
]


@pytest.mark.parametrize(("name", "kept", "head", "mine", "judgement", "reason"), JUDGED, ids=[j[0] for j in JUDGED])
def test_each_next_head_is_judged(name: str, kept: Kept | None, head: Head, mine: int, judgement: Judgement,
                                  reason: str) -> None:
    verdict = judge(kept, head, mine)
    assert verdict.judgement is judgement, verdict
    assert reason in verdict.reason
    assert verdict.keep is (judgement is not Judgement.STALE)
