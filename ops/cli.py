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
from govnet.ops.simulation.faults import PROFILES as FAULT_PROFILES


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
@click.option("--certs", type=click.Path(file_okay=False, path_type=Path), envvar="GOVNET_CERTS", default=None,
              help="Client certificate folder (client.crt, client.key, ca.crt) presented to nodes over mutual TLS "
                   "[env GOVNET_CERTS]; without it the CLI speaks plaintext, which only a tls.plaintext node accepts.")
def main(certs: Path | None) -> None:
    """govnet: one node service for the city, county, township and village levels
    of a government-service network.

    Start a node with 'govnet node init' and 'govnet node serve' (or a whole tree with
    'govnet up TOPOLOGY.toml'), load the service catalog with 'govnet catalog load', then
    submit and act on cases with 'govnet case'. 'govnet demo' shows it all in a minute.
    Nodes speak mutual TLS: 'govnet pki' makes the certificates.

    Everything govnet creates (stores, backups, keys, configuration, logs) is readable by its
    owner only.
    """
    os.umask(0o077)  # stores, keys, backups and logs hold personal data or secrets: never world-readable
    if certs is not None:
        os.environ["GOVNET_CERTS"] = str(certs)  # what the node client reads (govnet.node.rpc.client)


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
        assert federation.pki is not None
        click.echo(f"certificates: CA {federation.pki.ca}; for the CLI: govnet --certs {federation.pki.client} …")
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
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Encrypt the store with the key in this file (make one with 'govnet backup-key F').")
@json_option
def backup(directory: Path, out: Path, key_file: Path | None, as_json: bool) -> None:
    """Copy node DIR's store (a consistent snapshot, while it serves) and its govnet.toml into
    the new or empty directory OUT (files readable by their owner only)."""
    from dataclasses import asdict

    from govnet.ops.backup import BackupError
    from govnet.ops.backup import backup as take

    try:
        done = take(directory, out, datetime.now(UTC), key_file=key_file)
    except BackupError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        click.echo(to_json(asdict(done)))
    else:
        click.echo(f"backup of node {done.node_id} (incarnation {done.incarnation}, schema {done.schema_revision}, "
                   f"{done.cases} cases{', encrypted' if done.encrypted else ''}) in {out}")


@main.command("backup-key")
@click.argument("key_file", metavar="F", type=click.Path(dir_okay=False, path_type=Path))
def backup_key(key_file: Path) -> None:
    """Make a new backup key in F (readable by its owner only; never overwrites). Keep it apart
    from the backups: without it an encrypted backup cannot be restored."""
    from govnet.ops.backup import BackupError, new_key_file

    try:
        new_key_file(key_file)
    except BackupError as exc:
        raise _fail(str(exc)) from None
    click.echo(f"backup key written to {key_file}")


@main.command("restore")
@click.argument("backup_dir", metavar="BACKUP", type=click.Path(file_okay=False, path_type=Path))
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the store and configuration DIR holds (stop its node first).")
@click.option("--incarnation", type=click.IntRange(min=2), default=None,
              help="The new incarnation (default: one more than the highest the backup or DIR has seen).")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The key file an encrypted backup was made with.")
@json_option
def restore(backup_dir: Path, directory: Path, force: bool, incarnation: int | None, key_file: Path | None,
            as_json: bool) -> None:
    """Bring BACKUP back into DIR as a NEW incarnation of its node; on its next start the
    node syncs with its neighbours again."""
    from dataclasses import asdict

    from govnet.ops.backup import BackupError
    from govnet.ops.backup import restore as bring_back

    try:
        done = bring_back(backup_dir, directory, force=force, incarnation=incarnation, key_file=key_file)
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
@click.option("--real", "real", type=click.Choice(["rizhao"]), default=None,
              help="A real city's tree instead: its statistical division codes and names (rizhao: 1,741 nodes); "
                   "--city, --counties, --townships and --villages are then not used.")
def topology_city(out: Path, city: str, counties: int, townships: int, villages: int, host: str, first_port: int,
                  data_root: str, real: str | None) -> None:
    """Write a topology for a whole city to OUT (defaults: a uniform 1,911-node tree; --real rizhao:
    Rizhao's real tree, with names that 'govnet status' shows)."""
    from govnet.ops.topology import TopologyError, city_topology, dump_topology, parse_topology, real_city_topology

    try:
        if real is not None:
            document = real_city_topology(real, host, first_port, data_root)
        else:
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



@main.command("simulate")
@click.option("--topology", "topology_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Simulate the nodes of this topology file.")
@click.option("--city", "city", type=click.Choice(["rizhao"]), default=None,
              help="A real city's tree (the default: rizhao, 1,741 nodes).")
@click.option("--counties", type=click.IntRange(1, 99), default=None, help="A uniform tree: counties under the city.")
@click.option("--townships", type=click.IntRange(1, 999), default=2, show_default=True, help="Per county (uniform tree).")
@click.option("--villages", type=click.IntRange(0, 999), default=3, show_default=True, help="Per township (uniform tree).")
@click.option("--days", type=click.IntRange(1, 365), default=365, show_default=True, help="Simulated days from 2026-01-01.")
@click.option("--cases", type=click.IntRange(0, 10_000_000), default=600_000, show_default=True,
              help="Applications over the whole run.")
@click.option("--seed", type=int, default=1, show_default=True, help="The same seed gives the same run.")
@click.option("--faults", type=click.Choice(list(FAULT_PROFILES)), default="default", show_default=True,
              help="Fault profile: outages, crashes, restores, clock skew, dropped/duplicated/late batches "
                   "(chaos: harsh with frequent restores, for short runs).")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write PNG plots here (needs matplotlib: pip install 'govnet[plots]').")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the nodes' stores here (default: a temporary directory in /dev/shm, removed after).")
@json_option
def simulate(topology_file: Path | None, city: str | None, counties: int | None, townships: int, villages: int,
             days: int, cases: int, seed: int, faults: str, plots_dir: Path | None, work_dir: Path | None,
             as_json: bool) -> None:
    """Simulate a whole federation in this process: every node built as a real one, a caseload
    over simulated days with the calendar's rhythm, faults from a seeded schedule; then check
    that nothing was lost, doubled or left behind and print the figures and the state's digest.

    Exit 1 when the self-check fails (the seed and the first divergent case are printed:
    replay with 'govnet simulate --seed N' and the same options)."""
    from govnet.ops.simulation.run import Setup
    from govnet.ops.simulation.run import simulate as run_simulation
    from govnet.ops.topology import TopologyError, city_topology, real_city

    chosen = sum(x is not None for x in (topology_file, city, counties))
    if chosen > 1:
        raise click.UsageError("give one of --topology, --city, --counties")
    names: dict[str, str] = {}
    try:
        if topology_file is not None:
            nodes = [n.node_id for n in _topology(topology_file).nodes]
            names = {n.node_id: n.name for n in _topology(topology_file).nodes if n.name}
        elif counties is not None:
            nodes = [n["id"] for n in city_topology("371100", counties, townships, villages)["node"]]
        else:
            tree = real_city(city or "rizhao")
            nodes, names = [d.node_id for d in tree], {d.node_id: d.name for d in tree}
    except TopologyError as exc:
        raise _fail(str(exc)) from None
    report = run_simulation(Setup(tuple(nodes), days=days, cases=cases, seed=seed, faults=faults, names=names,
                                  offline_week=True), work_dir)
    if plots_dir is not None:
        from govnet.ops.simulation.plots import PlotsUnavailable, write_plots

        try:
            written = write_plots(report, plots_dir)
        except PlotsUnavailable as exc:
            raise _fail(str(exc)) from None
        if not as_json:
            click.echo(f"plots: {', '.join(str(p) for p in written)}")
    click.echo(to_json(report.as_dict()) if as_json else report.format())
    if not report.ok:
        click.echo(f"self-check failed: seed {seed}: {report.check['first']}", err=True)
        sys.exit(1)


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


# --- certificates ---

@main.group()
def pki() -> None:
    """The city's certificates: root CA, county intermediate CAs, node and client certificates,
    renewal and revocation (mutual TLS between nodes and for every client)."""


def _pki(call: Any) -> Any:
    from govnet.ops.pki import PkiError

    try:
        return call()
    except PkiError as exc:
        raise _fail(str(exc)) from None


CA_OPTION = click.option("--ca", "ca_dir", type=click.Path(file_okay=False, path_type=Path), envvar="GOVNET_CA_DIR",
                         required=True, help="The CA directory that signs [env GOVNET_CA_DIR].")
DAYS_OPTION = click.option("--days", type=click.IntRange(1, 36_500), default=365, show_default=True,
                           help="Days the certificate is valid.")


@pki.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--city", required=True, help="The city's node id (e.g. 371100): the root CA speaks for its tree.")
@click.option("--days", type=click.IntRange(1, 36_500), default=3650, show_default=True)
def pki_init(directory: Path, city: str, days: int) -> None:
    """Create the city's root CA in DIRECTORY (ca.key mode 0600, ca.crt, root.crt)."""
    from govnet.ops.pki import init_ca

    ca = _pki(lambda: init_ca(directory, city, days))
    click.echo(f"root CA of {ca.subtree} in {directory} (serial {ca.cert.serial_number:x}, "
               f"valid until {ca.cert.not_valid_after_utc.date()})")


@pki.command("intermediate")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--county", required=True, help="The county's node id: the CA issues only for its subtree.")
@CA_OPTION
@click.option("--days", type=click.IntRange(1, 36_500), default=1825, show_default=True)
def pki_intermediate(directory: Path, county: str, ca_dir: Path, days: int) -> None:
    """Create a county's intermediate CA in DIRECTORY, signed by the root CA (--ca): it can enrol
    the county's townships and villages while the city is unreachable, and nobody else."""
    from govnet.ops.pki import create_intermediate

    ca = _pki(lambda: create_intermediate(directory, ca_dir, county, days))
    click.echo(f"intermediate CA of {ca.subtree} in {directory} (serial {ca.cert.serial_number:x})")


@pki.command("request")
@click.option("--data-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="The node's data directory.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="The node's govnet.toml (its folder is the data directory).")
def pki_request(data_dir: Path | None, config_file: Path | None) -> None:
    """On the node: make its key (DATA_DIR/tls/node.key, 0600; it never leaves) and a signing
    request naming the node (DATA_DIR/tls/node.csr) to take to the CA."""
    from govnet.node.process.config import ConfigError, load_config
    from govnet.ops.pki import request_node

    directory = data_dir or (config_file.parent if config_file else None)
    if directory is None:
        raise click.UsageError("give --data-dir or --config")
    try:
        config = load_config(directory, {})
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    path = _pki(lambda: request_node(directory, config.node_id, config.level.value))
    click.echo(f"signing request for node {config.node_id}: {path}")


@pki.command("issue")
@click.argument("csr", type=click.Path(dir_okay=False, path_type=Path))
@CA_OPTION
@DAYS_OPTION
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the certificate (default: beside the request, .crt; ca.crt goes beside it).")
def pki_issue(csr: Path, ca_dir: Path, days: int, out: Path | None) -> None:
    """Sign a node's or client's request. Refused for a node outside the CA's subtree."""
    from govnet.ops.pki import describe, issue, load_cert

    path = _pki(lambda: issue(csr, ca_dir, days, out))
    info = describe(load_cert(path))
    click.echo(f"issued {info['name']}: {path} (serial {info['serial']}, valid until {info['not_after']})")


@pki.command("client")
@click.argument("name")
@click.option("--role", type=click.Choice(["ops", "client"]), default="ops", show_default=True)
@CA_OPTION
@DAYS_OPTION
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The folder to make (client.key, client.crt, ca.crt): what --certs names.")
def pki_client(name: str, role: str, ca_dir: Path, days: int, out: Path) -> None:
    """A certificate for an API client (the CLI, the console, a script), key made in --out."""
    from govnet.ops.pki import enrol_client

    path = _pki(lambda: enrol_client(out, name, role, ca_dir, days))
    click.echo(f"client certificate for {name} ({role}): {path}; use it with 'govnet --certs {out} …'")


@pki.command("renew")
@click.argument("cert", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@CA_OPTION
@DAYS_OPTION
def pki_renew(cert: Path, ca_dir: Path, days: int) -> None:
    """A new certificate for the same key and names, before the old one expires (the node
    reads it at its next start; the old one is kept as .old)."""
    from govnet.ops.pki import describe, load_cert, renew

    path = _pki(lambda: renew(cert, ca_dir, days))
    info = describe(load_cert(path))
    click.echo(f"renewed {info['name']}: {path} (serial {info['serial']}, valid until {info['not_after']})")


@pki.command("revoke")
@click.argument("serials", nargs=-1)
@click.option("--node", default=None, help="Revoke every certificate this CA issued for the node.")
@CA_OPTION
def pki_revoke(serials: tuple[str, ...], node: str | None, ca_dir: Path) -> None:
    """Revoke certificates (SERIAL in hexadecimal, or --node ID) and write the CA's signed list,
    CA_DIR/revocations.crl. Copy it into DATA_DIR/tls/revocations/ of the node the CA speaks for
    (the city's for the root CA): that node takes it in within seconds and sync carries it to
    every node below, each of which then refuses the revoked certificates."""
    from govnet.ops.pki import revoke

    try:
        numbers = [int(s, 16) for s in serials]
    except ValueError:
        raise _fail(f"serials are hexadecimal: {' '.join(serials)}") from None
    path, added = _pki(lambda: revoke(ca_dir, numbers, node))
    click.echo(f"revoked {len(added)} certificate(s) ({', '.join(f'{s:x}' for s in added) or 'none new'}); "
               f"list: {path}")


@pki.command("show")
@click.argument("cert", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@json_option
def pki_show(cert: Path, as_json: bool) -> None:
    """What a certificate names, its serial, issuer and validity."""
    from govnet.ops.pki import describe, load_cert

    info = describe(_pki(lambda: load_cert(cert)))
    click.echo(to_json(info) if as_json else "\n".join(f"{k}: {v}" for k, v in info.items()))



@main.group()
def bench() -> None:
    """Measure speed against the raw limit of this machine."""


@bench.command("intake")
@click.option("--cases", default=3000, show_default=True, help="Cases to submit in each measurement.")
@click.option("--concurrency", default=16, show_default=True)
@click.option("--tls/--plaintext", default=True, show_default=True,
              help="Mutual TLS to the node and to the raw server (as in production), or plaintext to both.")
@json_option
@friendly
def bench_intake(cases: int, concurrency: int, tls: bool, as_json: bool) -> None:
    """Submit cases over gRPC to a real node and compare with a bare gRPC + SQLite insert."""
    from govnet.ops.bench_intake import run_intake_bench

    result = run_intake_bench(cases=cases, concurrency=concurrency, tls=tls)
    click.echo(to_json(result.as_dict()) if as_json else result.format())


@bench.command("sync")
@click.option("--cases", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Cases queued at the village before its township starts.")
@click.option("--batch-max", type=click.IntRange(1, 10_000), default=200, show_default=True,
              help="sync.batch_max of both nodes: envelopes per batch.")
@click.option("--flush-interval", type=click.FloatRange(0.01, 60.0), default=0.5, show_default=True,
              help="sync.flush_interval_s of both nodes, in seconds.")
@click.option("--tls/--plaintext", default=True, show_default=True,
              help="Mutual TLS between the nodes and to the raw server (as in production), or plaintext.")
@json_option
@friendly
def bench_sync(cases: int, batch_max: int, flush_interval: float, tls: bool, as_json: bool) -> None:
    """Drain a village's backlog to its township over gRPC and compare with a bare gRPC call
    into one SQLite transaction per batch (and, for comparison, the same over a bare stream
    with the node's two batches in flight)."""
    from govnet.ops.bench_sync import run_sync_bench

    result = run_sync_bench(cases=cases, batch_max=batch_max, flush_interval_s=flush_interval, tls=tls)
    click.echo(to_json(result.as_dict()) if as_json else result.format())




@bench.command("console")
@click.option("--cases", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Cases the city holds (every other one accepted) when its pages are measured.")
@click.option("--rounds", type=click.IntRange(1, 10_000), default=40, show_default=True,
              help="Requests per page.")
@json_option
@friendly
def bench_console(cases: int, rounds: int, as_json: bool) -> None:
    """Server time (p50/p95/max) of the console's intake, work-queue and dashboard pages at a city
    node process holding CASES cases, over HTTPS (target: p95 under 300 ms at 100,000 cases)."""
    from govnet.ops.bench_console import run_console_bench

    result = run_console_bench(cases=cases, rounds=rounds)
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
