"""A seeded campaign: many short runs of the whole simulation on a small tree, with the chaos
fault profile (harsh, and restores from older backups often enough to meet them in a week),
each checking itself. A failing seed is printed with the command that replays it."""

from __future__ import annotations

import time
from pathlib import Path

from govnet.ops.simulation.run import Setup, simulate
from govnet.ops.topology import city_topology

SEEDS = range(1, 7)
OPTIONS = {"counties": 1, "townships": 1, "villages": 2}
DAYS, CASES, FAULTS = 8, 16, "chaos"
NODES = tuple(n["id"] for n in city_topology("371100", **OPTIONS)["node"])


def replay(seed: int) -> str:
    return (f"govnet simulate --counties {OPTIONS['counties']} --townships {OPTIONS['townships']} "
            f"--villages {OPTIONS['villages']} --days {DAYS} --cases {CASES} --faults {FAULTS} --seed {seed}")


def test_a_campaign_of_seeds_each_checks_itself(tmp_path: Path) -> None:
    started = time.monotonic()
    failed = []
    faults: dict[str, int] = {}
    for seed in SEEDS:
        report = simulate(Setup(NODES, days=DAYS, cases=CASES, seed=seed, faults=FAULTS), tmp_path / str(seed))
        for kind, n in report.faults.items():
            faults[kind] = faults.get(kind, 0) + n
        if not report.ok:
            failed.append(f"seed {seed}: {report.check['first']}\n  replay: {replay(seed)}")
            print(failed[-1])
    assert not failed, "\n".join(failed)
    # The faults really happened, restores from older backups among them.
    assert faults.get("outage", 0) > 0 and faults.get("crash", 0) > 0 and faults.get("restore", 0) > 0
    # About 30 s on a quiet two-core machine; printed rather than asserted (a busy machine is no bug).
    print(f"{len(SEEDS)} seeds in {time.monotonic() - started:.0f} s")
