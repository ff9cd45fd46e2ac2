"""`govnet bench intake`: a small real run must measure both sides and leave the data it claims.

No timed assertions: the figures depend on the machine. What must hold anywhere is
that every call was answered, both rates are real, the ratio is node/raw, and the
node's store and the raw table hold exactly the warm-up plus the measured calls.
"""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from govnet.node.domain.applicant import Applicant
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.ops.bench_intake import (
    TARGET_RATIO,
    count_cases,
    make_requests,
    receivable_items,
    run_intake_bench,
)
from govnet.ops.cli import main
from govnet.ops.rawlimit import count_rows


def test_generated_applications_are_valid_and_varied() -> None:
    catalog = load_catalog_file(sample_catalog_path())
    items = receivable_items(catalog)
    assert items and all(i.authority_level.rank <= 1 for i in items)
    requests = make_requests(300, items, random.Random(7), "k")
    assert len({r.idempotency_key for r in requests}) == 300
    assert len({r.item_code for r in requests}) > 10
    for r in requests:
        # Applicant.create runs the node's own checks, check character included.
        applicant = Applicant.create(r.applicant.name, r.applicant.id_number, r.applicant.phone)
        assert applicant.id_number == r.applicant.id_number
        item = catalog.get(r.item_code)
        assert item is not None and set(item.core_materials) <= set(r.materials)
        assert r.actor


def test_small_bench_measures_both_sides_and_stores_every_call(tmp_path: Path) -> None:
    result = run_intake_bench(cases=200, concurrency=4, work_dir=tmp_path)
    expected = 200 + result.warmup
    assert result.cases == 200 and result.concurrency == 4 and result.warmup > 0
    assert result.node.calls == 200 and result.raw.calls == 200
    assert result.node.rate > 0 and result.raw.rate > 0
    assert 0 < result.node.p50_ms <= result.node.p99_ms
    assert 0 < result.raw.p50_ms <= result.raw.p99_ms
    assert result.ratio == result.node.rate / result.raw.rate
    assert result.target == TARGET_RATIO and result.passed == (result.ratio >= TARGET_RATIO)
    assert result.machine["cores"] >= 1

    # The bench's own count, and ours, of what really reached the disk.
    assert result.data_dir == str(tmp_path)
    assert result.node_cases_stored == expected
    assert count_cases(tmp_path / "node") == expected
    assert result.raw_rows_stored == expected == count_rows(tmp_path / "raw" / "raw.db")
    # The bench's nodes are gone: what it claims to have stored is checked in the file itself.
    conn = sqlite3.connect(tmp_path / "node" / "govnet.db")
    try:
        assert conn.execute("SELECT count(*) FROM idempotency_key").fetchone()[0] == expected
        assert conn.execute("SELECT count(*) FROM case_event").fetchone()[0] == expected
        assert conn.execute("SELECT count(DISTINCT status) FROM case_record").fetchone()[0] == 1
    finally:
        conn.close()

    text = result.format()
    assert "node" in text and "raw" in text and "ratio" in text
    as_json = json.loads(json.dumps(result.as_dict()))
    assert as_json["node"]["rate"] == result.node.rate and as_json["ratio"] == result.ratio


def test_cli_prints_json() -> None:
    run = CliRunner().invoke(main, ["bench", "intake", "--cases", "40", "--concurrency", "2", "--json"])
    assert run.exit_code == 0, run.output
    out = json.loads(run.output)
    assert out["cases"] == 40 and out["node"]["calls"] == 40 and out["raw"]["calls"] == 40
    assert out["node_cases_stored"] == 40 + out["warmup"]
    assert out["data_dir"] == ""  # the temporary directory is gone
