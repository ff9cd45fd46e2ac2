"""`govnet bench sync`: a small real run must measure both sides and leave the data it claims.

No timed assertions: the figures depend on the machine. What must hold anywhere is that
the backlog really drained (the village's outbox is empty, the township owns exactly
the queued cases, each taken over once, nothing quarantined), both rates are real, the
ratio is node/raw, and the raw table holds every envelope of both raw runs.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from click.testing import CliRunner

from govnet.node.domain.applicant import Applicant
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.store import outbox
from govnet.ops.bench_sync import (
    TARGET_RATIO,
    TOWNSHIP,
    VILLAGE,
    applications,
    push_batches,
    township_items,
)
from govnet.ops.cli import main
from govnet.sync.envelope import Envelope

from support.helpers import every_case, store_of


def test_backlog_applications_are_valid_proxy_cases_for_the_township() -> None:
    catalog = load_catalog_file(sample_catalog_path())
    items = township_items(catalog)
    assert items and all(i.authority_level.value == "township" and i.proxy for i in items)
    commands = applications(200, items, random.Random(3), "t")
    assert len({c.idempotency_key for c in commands}) == 200
    assert len({c.item_code for c in commands}) == len(items)
    for c in commands:
        Applicant.create(c.applicant_name, c.applicant_id, c.applicant_phone)  # the node's own checks
        item = catalog.get(c.item_code)
        assert item is not None and set(item.core_materials) <= set(c.materials)
        assert c.agent and c.actor


def test_raw_batches_are_the_uplinks_batches() -> None:
    envelopes = [Envelope(seq, VILLAGE, 1, seq, "transfer", TOWNSHIP, f"case-{seq // 2}", 0, b"{}", "t")
                 for seq in range(1, 452)]
    batches = push_batches(envelopes, 200, incarnation=1)
    assert [len(b.envelopes) for b in batches] == [200, 200, 51]
    assert [e.seq for b in batches for e in b.envelopes] == list(range(1, 452))
    assert all(b.sender == VILLAGE and b.sender_incarnation == 1 for b in batches)


def test_small_bench_drains_the_backlog_and_measures_both_sides(tmp_path: Path) -> None:
    from govnet.ops.bench_sync import run_sync_bench

    result = run_sync_bench(cases=300, batch_max=100, flush_interval_s=0.2, work_dir=tmp_path)
    # a transfer and a summary per case, and the village's statistics report
    assert result.cases == 300 and result.envelopes == 601 and result.batch_max == 100
    assert result.batches == 7 and result.flush_interval_s == 0.2  # 601 envelopes, 100 a batch
    assert result.node_rate > 0 and result.raw_rate > 0
    assert result.node_rate == result.cases / result.node_seconds
    assert result.ratio == result.node_rate / result.raw_rate
    assert result.target == TARGET_RATIO and result.passed == (result.ratio >= TARGET_RATIO)
    assert result.startup_seconds > 0 and result.fill_seconds > 0
    assert result.township_cases == 300 and result.township_take_overs == 300
    assert result.township_quarantined == 0 and result.village_outbox_left == 0
    assert result.raw_stream_rate > 0 and result.stream_ratio == result.node_rate / result.raw_stream_rate
    assert result.raw_rows == 4 * 601  # unary and stream, before and after

    # Our own count of what reached the disk.
    assert result.data_dir == str(tmp_path)
    # The bench's nodes are gone: what reached each disk is read back through the stores.
    with store_of(tmp_path / "township") as township:
        cases = every_case(township)
        owned = {c.state.receipt for c in cases if c.state.owner == TOWNSHIP}
        assert len(owned) == 300 and len(cases) == 300
        take_overs = {c.state.receipt: sum(1 for e in township.events(c.state.receipt) if e.action == "take_over")
                      for c in cases}
        assert {r: n for r, n in take_overs.items() if n} == {r: 1 for r in owned}
    # The village took exactly these cases and handed each over (it keeps its copy).
    with store_of(tmp_path / "village") as village, village.reading() as s:
        assert {c.state.receipt: c.state.owner for c in every_case(village)} == {r: TOWNSHIP for r in owned}
        # Nothing of the backlog is left (the node's own periodic reports, and the applicants it
        # withheld before it knew the owner's certificate, may be queued at any moment: not the bench's).
        assert [e.kind for e in outbox.pending(s, TOWNSHIP) if e.kind not in ("stats", "audit", "applicant")] == []

    text = result.format()
    assert "node" in text and "raw" in text and "ratio" in text and "batch_max 100" in text
    as_json = json.loads(json.dumps(result.as_dict()))
    assert as_json["node_rate"] == result.node_rate and as_json["ratio"] == result.ratio


def test_cli_prints_json() -> None:
    run = CliRunner().invoke(main, ["bench", "sync", "--cases", "60", "--batch-max", "50", "--json"])
    assert run.exit_code == 0, run.output
    out = json.loads(run.output)
    assert out["cases"] == 60 and out["envelopes"] == 121 and out["batches"] == 3
    assert out["township_cases"] == 60 and out["village_outbox_left"] == 0
    assert out["node_rate"] > 0 and out["raw_rate"] > 0
    assert out["data_dir"] == ""  # the temporary directory is gone


def test_cli_refuses_a_batch_max_out_of_range() -> None:
    run = CliRunner().invoke(main, ["bench", "sync", "--batch-max", "0"])
    assert run.exit_code == 2 and "batch-max" in run.output
