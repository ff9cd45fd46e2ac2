"""``govnet simulate``: the same seed gives the same run (the digest of the final state), the
self-check passes on a run with every kind of fault, and it fails when deduplication is off."""

from __future__ import annotations

import json
from pathlib import Path

from govnet.ops.simulation.caseload import Rates
from govnet.ops.simulation.run import Setup, simulate

from support.helpers import govnet

NODES = ("371100", "371102", "371102001", "371102001201", "371102001202", "371102002", "371102002201")


def test_the_same_seed_gives_the_same_digest_and_another_seed_another(tmp_path: Path) -> None:
    setup = Setup(NODES, days=9, cases=60, seed=11, faults="harsh", rates=Rates(resent=0.1))
    first = simulate(setup, tmp_path / "a")
    again = simulate(setup, tmp_path / "b")
    other = simulate(Setup(NODES, days=9, cases=60, seed=12, faults="harsh"), tmp_path / "c")
    assert first.ok and again.ok and other.ok, (first.check, other.check)
    assert first.cases_submitted > 40 and first.steps_taken > 40
    assert first.digest == again.digest
    assert (first.cases_submitted, first.steps_taken, first.exchanges, first.faults) == (
        again.cases_submitted, again.steps_taken, again.exchanges, again.faults)
    assert other.digest != first.digest


def test_with_deduplication_off_the_check_fails_and_names_the_case(tmp_path: Path) -> None:
    rates = Rates(resent=0.3)  # windows resend applications: only the idempotency key keeps them one case
    healthy = simulate(Setup(NODES, days=7, cases=30, seed=3, faults="default", rates=rates), tmp_path / "a")
    assert healthy.ok, healthy.check
    broken = simulate(Setup(NODES, days=7, cases=30, seed=3, faults="default", rates=rates, forgetful=True),
                      tmp_path / "b")
    assert not broken.ok
    assert "became 2 cases" in broken.check["first"]
    assert f"self-check FAILED (seed 3): {broken.check['first']}" in broken.format()


def test_the_command_prints_a_report_with_its_digest_and_checks_its_options(tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    done = govnet("simulate", "--counties", "1", "--townships", "1", "--villages", "2", "--days", "6",
                  "--cases", "12", "--seed", "4", "--faults", "default", "--json", "--plots", str(plots), timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["check"]["ok"] and report["nodes"] == 5 and len(report["digest"]) == 64
    assert report["cases_submitted"] > 0 and report["peak_memory_mb"] > 0
    for png in ("outbox.png", "catch_up.png"):  # the planners' figures, as PNG files
        assert (plots / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    refused = govnet("simulate", "--city", "rizhao", "--counties", "2")
    assert refused.returncode == 2 and "give one of --topology, --city, --counties" in refused.stderr
    bad = govnet("simulate", "--faults", "storm")
    assert bad.returncode == 2 and "storm" in bad.stderr
