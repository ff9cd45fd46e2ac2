"""`govnet bench console`: a small real run (a city node process with its console on HTTPS). No
timed assertions: what must hold anywhere is that every page answered, the figures are ordered
as percentiles are, and each page stays under the console's size budget."""

from __future__ import annotations

import json

from support.browser import PAGE_BUDGET
from support.helpers import govnet


def test_a_small_console_bench_measures_the_three_pages() -> None:
    # Its own process, as a user runs it (the browser tests' playwright keeps an event loop in this one).
    done = govnet("bench", "console", "--cases", "12", "--rounds", "3", "--json", timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["cases"] == 12 and result["rounds"] == 3
    assert [p["path"] for p in result["pages"]] == ["/intake", "/queue", "/dashboard"]
    for page in result["pages"]:
        assert 0 < page["p50_ms"] <= page["p95_ms"] <= page["max_ms"]
        assert 1000 < page["bytes"] < PAGE_BUDGET
