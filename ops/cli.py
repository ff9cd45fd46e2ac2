"""The ``govnet`` command: the node's command groups (``govnet.node.cli``) and the commands
that operate nodes from outside — ``up``, ``status``, ``backup``, ``restore``, ``topology``,
``deploy``, ``demo`` and ``bench`` (the work itself is in ``ops/``; these are thin commands
over it).

Exit codes: 0 done; 1 refused (bad input, illegal action, bad configuration); 2 usage
error; 3 the node could not be reached. Every error is one line on stderr, never a trace.
"""

from __future__ import annotations

import os

# gRPC's core library logs to stderr on its own (e.g. a failed bind); the CLI reports such
# failures itself in one line, so the core stays quiet unless an operator asks for it.
# Set before anything imports grpc.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import signal  # noqa: E402
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from govnet.node.cli import add_commands
from govnet.node.cli.common import EXIT_UNREACHABLE, Failure, OneLineErrors, friendly, json_option
from govnet.node.cli.format import to_json


def _fail(message: str) -> click.ClickException:
    """The CLI's one-line error with exit code 1."""
    return Failure(message)


def _topology(path: Path) -> Any:
    from govnet.ops.topology import TopologyError, load_topology

    try:
        return load_topology(path)
    except TopologyError as exc:
        raise _fail(str(exc)) from None


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="govnet")
def main() -> None:
    """govnet: one node service for the city, county, township and village levels
    of a government-service network.

    Start a node with 'govnet node init' and 'govnet node serve' (or a whole tree with
    'govnet up TOPOLOGY.toml'), load the service catalog with 'govnet catalog load', then
    submit and act on cases with 'govnet case'. 'govnet demo' shows it all in a minute.
    """


add_commands(main)


@main.command("up")
@click.argument("topology_file", metavar="TOPOLOGY.toml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--start-timeout", default=60.0, show_default=True, help="Seconds a level of nodes has to start.")
def up(topology_file: Path, start_timeout: float) -> None:
    """Start every node TOPOLOGY.toml lists (one process each, parents first) and run them
    until Ctrl-C or SIGTERM, then stop them cleanly: SIGTERM to every node, in-flight
    batches finish, outboxes persist; SIGKILL after a bounded wait.

    Missing data directories are created. Each node's log is DATA_DIR/node.log."""
    from govnet.ops.launcher import Federation, LaunchError

    topology = _topology(topology_file)
    federation = Federation(topology)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        created = federation.prepare()
        for node_id in created:
            click.echo(f"initialised {node_id} in {topology.get(node_id).data_dir}")
        if created:
            click.echo("new nodes have no accounts yet: add the first with "
                       "'govnet user add LOGIN --role ops --data-dir DATA_DIR', then 'govnet login'")
        federation.start(start_timeout, on_started=lambda m: click.echo(
            f"{m.spec.node_id} ({m.spec.level}) serving on {m.spec.listen}, http {m.spec.http}, pid {m.proc.pid}"))
    except LaunchError as exc:
        raise _fail(str(exc)) from None
    click.echo(f"{len(federation.members)} nodes up; Ctrl-C or SIGTERM stops them")
    while not stop.wait(0.5):
        for member in federation.exited():
            click.echo(f"node {member.spec.node_id} exited with code {member.proc.returncode} "
                       f"(log: {member.log_path})", err=True)
    click.echo("stopping …")
    codes = federation.stop()
    killed = sorted(node_id for node_id, code in codes.items() if code == -signal.SIGKILL)
    click.echo(f"{len(codes)} nodes stopped" + (f"; killed after the wait: {', '.join(killed)}" if killed else ""))


@main.command("status")
@click.argument("topology_file", metavar="TOPOLOGY.toml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--timeout", default=2.0, show_default=True, help="Seconds to wait for each node's answer.")
@json_option
def status(topology_file: Path, timeout: float, as_json: bool) -> None:
    """The federation's tree: each node's health, sync lag and open alarms, read from its
    HTTP /status. A node that does not answer is shown as DOWN (exit code 3)."""
    from govnet.ops.launcher import down_nodes, format_status, read_statuses

    topology = _topology(topology_file)
    statuses = read_statuses(topology, timeout)
    click.echo(to_json(statuses) if as_json else format_status(topology, statuses))
    if down_nodes(statuses):
        sys.exit(EXIT_UNREACHABLE)


@main.command("backup")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.argument("out", metavar="OUT", type=click.Path(file_okay=False, path_type=Path))
@json_option
def backup(directory: Path, out: Path, as_json: bool) -> None:
    """Copy node DIR's store (a consistent snapshot, while it serves) and its govnet.toml into
    the new or empty directory OUT."""
    from dataclasses import asdict

    from govnet.ops.backup import BackupError
    from govnet.ops.backup import backup as take

    try:
        done = take(directory, out, datetime.now(UTC))
    except BackupError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        click.echo(to_json(asdict(done)))
    else:
        click.echo(f"backup of node {done.node_id} (incarnation {done.incarnation}, schema {done.schema_revision}, "
                   f"{done.cases} cases) in {out}")


@main.command("restore")
@click.argument("backup_dir", metavar="BACKUP", type=click.Path(file_okay=False, path_type=Path))
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the store and configuration DIR holds (stop its node first).")
@click.option("--incarnation", type=click.IntRange(min=2), default=None,
              help="The new incarnation (default: one more than the highest the backup or DIR has seen).")
@json_option
def restore(backup_dir: Path, directory: Path, force: bool, incarnation: int | None, as_json: bool) -> None:
    """Bring BACKUP back into DIR as a NEW incarnation of its node; on its next start the
    node syncs with its neighbours again."""
    from dataclasses import asdict

    from govnet.ops.backup import BackupError
    from govnet.ops.backup import restore as bring_back

    try:
        done = bring_back(backup_dir, directory, force=force, incarnation=incarnation)
    except BackupError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        click.echo(to_json(asdict(done)))
    else:
        waiting = sum(done.renumbered.values())
        click.echo(f"node {done.node_id} restored into {directory} as incarnation {done.incarnation} "
                   f"(backup was {done.backup_incarnation}); {waiting} envelopes wait to be sent; "
                   f"start it with 'govnet node serve {directory}'")


@main.group("topology")
def topology() -> None:
    """Write topology files for 'govnet up' and 'govnet status'."""


@topology.command("city")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--city", default="371100", show_default=True, help="The city's id.")
@click.option("--counties", default=10, show_default=True, type=click.IntRange(0, 99))
@click.option("--townships", default=10, show_default=True, type=click.IntRange(0, 999), help="Per county.")
@click.option("--villages", default=18, show_default=True, type=click.IntRange(0, 999), help="Per township.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--first-port", default=40000, show_default=True, type=click.IntRange(1, 65534))
@click.option("--data-root", default="data", show_default=True, help="Data dirs go under it (relative: to OUT's folder).")
def topology_city(out: Path, city: str, counties: int, townships: int, villages: int, host: str, first_port: int,
                  data_root: str) -> None:
    """Write a topology for a whole city to OUT (defaults: 1,911 nodes)."""
    from govnet.ops.topology import TopologyError, city_topology, dump_topology, parse_topology

    try:
        document = city_topology(city, counties, townships, villages, host, first_port, data_root)
        text = dump_topology(document)
        parse_topology(text, out.resolve())  # what we write must load
    except TopologyError as exc:
        raise _fail(str(exc)) from None
    if out.exists():
        raise _fail(f"{out} already exists; choose another file name")
    out.write_text(text, encoding="utf-8")
    click.echo(f"{len(document['node'])} nodes written to {out}")


@main.group("deploy")
def deploy() -> None:
    """Generate deployment files from a topology."""


@deploy.command("prometheus")
@click.argument("topology_file", metavar="TOPOLOGY.toml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--rules", default="govnet-alerts.yml", show_default=True, help="Rule file the config refers to.")
def deploy_prometheus(topology_file: Path, rules: str) -> None:
    """Print a Prometheus configuration scraping every node of TOPOLOGY.toml."""
    from govnet.ops.deploy.prometheus import scrape_config

    click.echo(scrape_config(_topology(topology_file), rule_files=(rules,)), nl=False)


# --- demo and bench (their own modules; imported lazily to keep the CLI quick) ---



@main.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the demo keeps its node data (default: a new temporary directory).")
@friendly
def demo(directory: Path | None) -> None:
    """Start a federation of 15 real nodes (city, 2 counties, 4 townships, 8 villages) and
    drive a working day through it: intake, decisions at every level, a township cut off and
    back, escalations, overdue cases, ratings and a complaint; then the city's rollup."""
    from govnet.ops.demo import run_demo

    sys.exit(run_demo(directory))


@main.group()
def bench() -> None:
    """Measure speed against the raw limit of this machine."""


@bench.command("intake")
@click.option("--cases", default=3000, show_default=True, help="Cases to submit in each measurement.")
@click.option("--concurrency", default=16, show_default=True)
@json_option
@friendly
def bench_intake(cases: int, concurrency: int, as_json: bool) -> None:
    """Submit cases over gRPC to a real node and compare with a bare gRPC + SQLite insert."""
    from govnet.ops.bench_intake import run_intake_bench

    result = run_intake_bench(cases=cases, concurrency=concurrency)
    click.echo(to_json(result.as_dict()) if as_json else result.format())


@bench.command("sync")
@click.option("--cases", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Cases queued at the village before its township starts.")
@click.option("--batch-max", type=click.IntRange(1, 10_000), default=200, show_default=True,
              help="sync.batch_max of both nodes: envelopes per batch.")
@click.option("--flush-interval", type=click.FloatRange(0.01, 60.0), default=0.5, show_default=True,
              help="sync.flush_interval_s of both nodes, in seconds.")
@json_option
@friendly
def bench_sync(cases: int, batch_max: int, flush_interval: float, as_json: bool) -> None:
    """Drain a village's backlog to its township over gRPC and compare with a bare gRPC call
    into one SQLite transaction per batch (and, for comparison, the same over a bare stream
    with the node's two batches in flight)."""
    from govnet.ops.bench_sync import run_sync_bench

    result = run_sync_bench(cases=cases, batch_max=batch_max, flush_interval_s=flush_interval)
    click.echo(to_json(result.as_dict()) if as_json else result.format())




@bench.command("rollup")
@click.option("--changes", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="Changes made at the village and the township, one at a time.")
@click.option("--flush-interval", type=click.FloatRange(0.01, 60.0), default=0.5, show_default=True,
              help="sync.flush_interval_s of every node, in seconds.")
@click.option("--stats-interval", type=click.FloatRange(0.01, 60.0), default=0.5, show_default=True,
              help="statistics.flush_interval_s of every node, in seconds.")
@json_option
@friendly
def bench_rollup(changes: int, flush_interval: float, stats_interval: float, as_json: bool) -> None:
    """Over a chain of real node processes (city, county, township, village), measure how long
    a change takes to show in the city's totals."""
    from govnet.ops.bench_rollup import run_rollup_bench

    result = run_rollup_bench(changes=changes, flush_interval_s=flush_interval, stats_interval_s=stats_interval)
    click.echo(to_json(result.as_dict()) if as_json else result.format())


if __name__ == "__main__":
    main()
