"""The deployment files in ops/deploy: valid for the tools that read them, and about metrics
the nodes really export.

promtool (Debian's ``prometheus`` package; ``make test`` installs it) checks the alert
rules, runs their unit tests, checks the generated scrape configuration and the syntax
of every dashboard query. Every metric name in the rules and the dashboard is looked up
in the /metrics of two real node processes (a city and its county) that have done some
work. systemd-analyze checks the unit template.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from govnet.node.process.metrics import EXPORTED
from govnet.node.rpc.client import GovnetClient
from govnet.ops.processes import free_port, govnet_command, init_node

from support.accounts import spawn_node
from support.helpers import CLERK, SAMPLE, submit

DEPLOY = Path(__file__).resolve().parents[2] / "ops" / "deploy"
RULES = DEPLOY / "govnet-alerts.yml"
DASHBOARD = DEPLOY / "grafana-dashboard.json"
UNIT = DEPLOY / "govnet@.service"
PROMETHEUS_OWN = {"up"}  # recorded by Prometheus for every target, not exported by nodes


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed: run 'make test' (it installs Debian's prometheus package) " \
                  f"or 'apt-get install prometheus'"
    return found


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def rule_exprs() -> list[str]:
    """Each alert's expression (the rule file is simple YAML: one ``expr:`` line per rule)."""
    return [line.split("expr:", 1)[1].strip() for line in RULES.read_text().splitlines() if "expr:" in line]


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


def names_in(expr: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"\b(govnet_[a-z_]+|up)\b", expr) if not _is_label(expr, m.end())}


def _is_label(expr: str, end: int) -> bool:
    """A word followed by ``=``/``=~``/``!=`` inside braces is a label name, not a metric."""
    return bool(re.match(r"\s*(=~|!~|!=|=(?!=))", expr[end:]))


# --- promtool ---


def test_the_alert_rules_are_valid_and_their_unit_tests_pass() -> None:
    promtool = tool("promtool")
    checked = run(promtool, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(re.findall(r'- alert: ', RULES.read_text()))} rules found" in checked.stdout
    tested = run(promtool, "test", "rules", "govnet-alerts.test.yml", cwd=DEPLOY)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_alerts_cover_sync_lag_outbox_growth_node_down_and_overdue_cases() -> None:
    alerts = re.findall(r"alert: (\w+)", RULES.read_text())
    assert {"GovnetNodeDown", "GovnetSyncLagging", "GovnetOutboxGrowing", "GovnetOverdueRising"} <= set(alerts)


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = tool("promtool")
    # Grafana's variables are replaced by what they expand to; promtool then parses each query.
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, expr in enumerate(dashboard_exprs()):
        concrete = expr.replace("$node", ".*").replace("$level", ".*")
        lines += [f"      - record: dashboard:query_{i}", f"        expr: {json.dumps(concrete)}"]
    rules = tmp_path / "dashboard-queries.yml"
    rules.write_text("\n".join(lines) + "\n")
    checked = run(promtool, "check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_generated_scrape_config_is_valid_and_lists_every_node(tmp_path: Path) -> None:
    promtool = tool("promtool")
    made = subprocess.run([*govnet_command(), "topology", "city", str(tmp_path / "city.toml"), "--counties", "2",
                           "--townships", "2", "--villages", "3"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert made.returncode == 0 and "19 nodes written" in made.stdout, made.stderr
    generated = subprocess.run([*govnet_command(), "deploy", "prometheus", str(tmp_path / "city.toml")],
                               capture_output=True, text=True, timeout=60, check=False)
    assert generated.returncode == 0, generated.stderr
    config = tmp_path / "prometheus.yml"
    config.write_text(generated.stdout)
    shutil.copy(RULES, tmp_path / "govnet-alerts.yml")
    checked = run(promtool, "check", "config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(re.findall(r"- targets: ", generated.stdout)) == 19
    assert 'node: "371102001201"' in generated.stdout and 'level: "village"' in generated.stdout


# --- the metric names are real ---


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every metric name two busy real nodes (a city, its county) serve on /metrics."""
    base = tmp_path_factory.mktemp("deploy")
    port = free_port()
    city_dir = init_node(base / "city", "371100", "city", listen=f"127.0.0.1:{port}", http_listen="127.0.0.1:0")
    county_dir = init_node(base / "county", "371102", "county", parent=f"127.0.0.1:{port}",
                           http_listen="127.0.0.1:0", sync={"flush_interval_s": 0.1})
    city, county = spawn_node(city_dir), spawn_node(county_dir)
    try:
        with GovnetClient(city.address) as c:
            c.put_catalog(SAMPLE)
        with GovnetClient(county.address) as c:
            deadline = time.monotonic() + 30
            while not c.list_items().releases and time.monotonic() < deadline:
                time.sleep(0.1)
            receipt = submit(c, "SJ-0003").case.receipt
            c.act(receipt, "accept", actor=CLERK)
            c.sync_status()
        names: set[str] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            names = set()
            for proc in (city, county):
                assert proc.http is not None
                text = httpx.get(f"http://{proc.http}/metrics", timeout=10).text
                for family in text_string_to_metric_families(text):
                    names.update(sample.name for sample in family.samples)
            if {"govnet_case_summaries", "govnet_sync_last_success_timestamp_seconds"} <= names:
                break
            time.sleep(0.2)
        return names
    finally:
        city.terminate()
        county.terminate()


def test_the_nodes_export_every_metric_they_declare(exported: set[str]) -> None:
    histogram_parts = {n.removesuffix(s) for n in exported for s in ("_bucket", "_count", "_sum") if n.endswith(s)}
    assert set(EXPORTED) - exported - histogram_parts == set()


@pytest.mark.parametrize("source", ["alert rules", "dashboard"])
def test_every_metric_named_in_the_deployment_files_is_exported(source: str, exported: set[str]) -> None:
    exprs = rule_exprs() if source == "alert rules" else dashboard_exprs()
    named = set().union(*(names_in(e) for e in exprs))
    assert named, f"no metric names found in the {source}"
    assert named - exported - PROMETHEUS_OWN == set()


def test_names_in_reads_metrics_not_labels() -> None:
    assert names_in('sum by (node) (rate(govnet_rpc_requests_total{code=~"INTERNAL"}[5m])) > 0') == {
        "govnet_rpc_requests_total"}
    assert names_in('up{job="govnet"} == 0') == {"up"}
    assert names_in("govnet_no_such_metric > 1") == {"govnet_no_such_metric"}


# --- systemd ---


def test_the_systemd_unit_template_verifies_and_runs_the_node(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    text = UNIT.read_text()
    assert "ExecStart=/opt/govnet/bin/govnet node serve /var/lib/govnet/%i" in text
    assert "KillSignal=SIGTERM" in text
    stop_wait = int(re.search(r"TimeoutStopSec=(\d+)", text).group(1))  # type: ignore[union-attr]
    assert stop_wait >= 20  # the node's own graceful stop takes up to 5 s per phase
    # systemd-analyze checks the command exists: point it at this installation's govnet.
    govnet = Path(sys.executable).parent / "govnet"
    unit = tmp_path / "govnet@.service"
    unit.write_text(text.replace("/opt/govnet/bin/govnet", str(govnet)))
    checked = run(analyze, "verify", str(tmp_path / "govnet@371102.service"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stderr.strip() == ""
    served = run(str(govnet), "node", "serve", "--help")
    assert served.returncode == 0 and "DIRECTORY" in served.stdout
