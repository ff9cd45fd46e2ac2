"""`govnet bench rollup`: a small real run over four node processes. No timed assertions:
what must hold anywhere is that every change was seen at the city, the figures are the
measured delays, and the city's store really holds the village's and township's rows."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from click.testing import CliRunner

from govnet.node.store import statistics as stat_rows
from govnet.ops.bench_rollup import run_rollup_bench
from govnet.ops.cli import main

from support.helpers import store_of


def test_small_bench_sees_every_change_at_the_city(tmp_path: Path) -> None:
    result = run_rollup_bench(changes=3, flush_interval_s=0.1, stats_interval_s=0.1, work_dir=tmp_path)
    assert result.changes == 3 and len(result.delays_s) == 3 and all(d > 0 for d in result.delays_s)
    assert result.where == ("village", "township", "township")
    assert (result.min_s, result.median_s, result.max_s) == (
        min(result.delays_s), statistics.median(result.delays_s), max(result.delays_s))
    assert result.nodes_reported == 4 and result.city_total == 3
    assert result.flush_interval_s == 0.1 and result.stats_interval_s == 0.1

    # The bench's nodes are gone: the city's statistics are read back through its store.
    with store_of(tmp_path / "city") as city, city.reading() as s:
        rows = {node: sum(r.counters["received"] + r.counters["accepted"] for r in stat_rows.rows_of(s, node))
                for node in stat_rows.nodes_with_rows(s)}
        reports = {report.node for report in stat_rows.reports(s)}
    assert rows == {"371102001201": 1, "371102001": 2}
    assert reports == {"371100", "371102", "371102001", "371102001201"}

    text = result.format()
    assert "sync.flush_interval_s 0.1 s" in text and "statistics.flush_interval_s 0.1 s" in text
    assert "median" in text and "4 of 4 nodes reported" in text


def test_cli_prints_json() -> None:
    run = CliRunner().invoke(main, ["bench", "rollup", "--changes", "2", "--flush-interval", "0.1",
                                    "--stats-interval", "0.1", "--json"])
    assert run.exit_code == 0, run.output
    out = json.loads(run.output)
    assert out["changes"] == 2 and len(out["delays_s"]) == 2 and out["city_total"] == 2
    assert out["data_dir"] == ""  # the temporary directory is gone


def test_cli_refuses_no_changes() -> None:
    run = CliRunner().invoke(main, ["bench", "rollup", "--changes", "0"])
    assert run.exit_code == 2 and "--changes" in run.output
