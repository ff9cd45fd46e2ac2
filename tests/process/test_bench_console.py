"""`govnet bench console`: a small real run (a city node process with its console on HTTPS). No
timed assertions: what must hold anywhere is that every page answered, the figures are ordered
as percentiles are, and each page stays under the console's size budget."""

from __future__ import annotations

import json

from click.testing import CliRunner

from govnet.ops.cli import main

from support.browser import PAGE_BUDGET


def test_a_small_console_bench_measures_the_three_pages() -> None:
    done = CliRunner().invoke(main, ["bench", "console", "--cases", "12", "--rounds", "3", "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["cases"] == 12 and result["rounds"] == 3
    assert [p["path"] for p in result["pages"]] == ["/intake", "/queue", "/dashboard"]
    for page in result["pages"]:
        assert 0 < page["p50_ms"] <= page["p95_ms"] <= page["max_ms"]
        assert 1000 < page["bytes"] < PAGE_BUDGET
