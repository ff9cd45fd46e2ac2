"""The node's command groups: ``node`` (init, serve), ``catalog``, ``case`` and ``sync``.

Thin commands over the typed client and the node process; the ``govnet`` entry point
(``govnet.ops.cli``) gathers them. Exit codes and one-line errors: ``govnet.node.cli.common``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import click

from govnet.node.cli.common import (
    Failure,
    actor_option,
    friendly,
    json_option,
    node_option,
)
from govnet.node.cli.format import (
    format_case,
    format_case_list,
    format_fees,
    format_item,
    format_items,
    format_quarantine,
    format_sync_status,
    format_track,
    to_json,
)
from govnet.node.domain.catalog import load_catalog_file
from govnet.node.process.config import CONFIG_FILE, build_config, load_config, write_config
from govnet.node.rpc.client import GovnetClient
from govnet.node.store.engine import Store

SWITCH_INTERVAL_S = 0.0005  # how long a thread keeps the GIL while another wants it (see node_serve)

# --- node ---


@click.group()
def node() -> None:
    """Create and run a node."""


@node.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--id", "node_id", required=True, help="Administrative division code: city/county 6 digits, township 9, village 12.")
@click.option("--level", required=True, help="city, county, township or village.")
@click.option("--listen", required=True, metavar="HOST:PORT", help="Where the node serves gRPC (port 0: any free port).")
@click.option("--parent", metavar="HOST:PORT", help="The parent node's address (every level but the city).")
@click.option("--duplicate-window-days", default=30, show_default=True, help="Flag a case as a likely duplicate when the same applicant applied for the same item this many days before.")
@click.option("--http", "http_listen", metavar="HOST:PORT", help="Serve /metrics, /healthz, /readyz and /status here (port 0: any free port).")
@click.option("--console", "console_listen", metavar="HOST:PORT", help="Serve the console (web pages for the windows) here, over HTTPS with the node's certificate (port 0: any free port).")
@friendly
@click.option("--plaintext", is_flag=True, help="Serve without TLS (tls.plaintext = true): a local test only.")
def node_init(directory: Path, node_id: str, level: str, listen: str, parent: str | None, duplicate_window_days: int,
              http_listen: str | None, plaintext: bool, console_listen: str | None = None) -> None:
    """Write a validated configuration and an empty store into DIRECTORY. The node speaks mutual
    TLS: enrol it next with 'govnet pki request --data-dir DIRECTORY' and 'govnet pki issue'."""
    config = build_config(directory, node_id=node_id, level=level, listen=listen, parent=parent,
                          duplicate_window_days=duplicate_window_days, http_listen=http_listen,
                          tls={"plaintext": True} if plaintext else None,
                          console={"listen": console_listen} if console_listen else None)
    if (directory / CONFIG_FILE).exists():
        raise Failure(f"{directory / CONFIG_FILE} already exists: this directory already holds a node")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".govnet-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise Failure(f"{directory}: cannot write here ({exc.strerror}); choose a directory you can write to") from None
    store = Store.create(directory, config.node_id, config.level, datetime.now(UTC))
    store.close()
    path = write_config(config)
    click.echo(f"node {config.node_id} ({config.level}) initialised: {path}")
    click.echo(f"no accounts yet: add the first with 'govnet user add LOGIN --role ops --data-dir {directory}'")


@node.command("serve")
@click.argument("directory", type=click.Path(path_type=Path))
@friendly
def node_serve(directory: Path) -> None:
    """Run the node whose configuration and store are in DIRECTORY (until SIGTERM or Ctrl-C).

    Calls over a peer's or an account's rate are refused RESOURCE_EXHAUSTED with a retry
    hint; the limits are [rate] in DIRECTORY/govnet.toml (README: "Rate limits").
    """
    from govnet.node.process.logs import setup_logging
    from govnet.node.process.server import StartError, serve

    if not directory.is_dir():
        raise Failure(f"{directory}: no such directory; create the node with 'govnet node init {directory} …'")
    if not os.access(directory, os.R_OK | os.W_OK | os.X_OK):
        raise Failure(f"{directory}: not readable and writable by this user; fix its permissions")
    config = load_config(directory)
    setup_logging(config.node_id, config.log_level)
    # Worker threads run store calls written in Python (reading a batch's rows, say) while
    # the event loop waits for a peer's answer; with the default 5 ms switch interval an
    # answer that arrives then waits up to 5 ms for the loop to get the GIL back.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        asyncio.run(serve(config))
    except StartError as exc:
        raise Failure(str(exc)) from None
    except KeyboardInterrupt:
        pass


# --- catalog ---


@click.group()
def catalog() -> None:
    """Load and read the service catalog."""


@catalog.command("load")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--expect-version", type=int, default=0, help="Refuse unless the node is at this catalog version (0: any).")
@node_option
@json_option
@friendly
def catalog_load(file: Path, expect_version: int, node: str, as_json: bool) -> None:
    """Publish FILE (TOML or JSON) as the next release of its issuer's catalog.

    The issuer (the file's 'issuer') is this node or an ancestor: the city publishes the
    catalog, a county its own items; releases flow down to every descendant."""
    cat = load_catalog_file(file)
    with GovnetClient(node) as client:
        done = client.put_catalog(cat, expect_version)
    if as_json:
        click.echo(to_json(done))
    else:
        click.echo(f"catalog version {done.version} of {cat.issuer} published: {done.item_count} items")


@catalog.command("list")
@click.option("--department", default="", help="Only this department's items.")
@click.option("--level", "level", default="", help="Only items decided at this level.")
@node_option
@json_option
@friendly
def catalog_list(department: str, level: str, node: str, as_json: bool) -> None:
    """List the catalog's items."""
    with GovnetClient(node) as client:
        listing = client.list_items(department=department, authority_level=level)
    if as_json:
        click.echo(to_json(listing))
    elif not listing.releases:
        click.echo("no catalog loaded yet: run 'govnet catalog load FILE'")
    else:
        click.echo(format_items(listing.items))
        releases = ", ".join(f"{r.issuer} version {r.version}" for r in listing.releases)
        click.echo(f"\n{len(listing.items)} items; catalog releases in force: {releases}")


@catalog.command("show")
@click.argument("code")
@node_option
@json_option
@friendly
def catalog_show(code: str, node: str, as_json: bool) -> None:
    """Show one item with its ten publics."""
    with GovnetClient(node) as client:
        got = client.get_item(code)
    click.echo(to_json(got) if as_json else format_item(got.item, got.version, got.issuer))


# --- cases ---


@click.group()
def case() -> None:
    """Submit, read and act on cases."""


@case.command("submit")
@click.option("--item", "item_code", required=True, help="Catalog item code.")
@click.option("--name", required=True, help="Applicant's name.")
@click.option("--id-number", required=True, help="Applicant's 18-character resident ID.")
@click.option("--phone", required=True, help="Applicant's phone number.")
@click.option("--material", "materials", multiple=True, help="A material handed in (repeat for each).")
@click.option("--agent", default="", help="The village agent carrying the case (代办), if any.")
@click.option("--note", default="")
@actor_option("Clerk at the window.")
@click.option("--key", "key", default="", help="Idempotency key; resending with the same key returns the same case. Default: a new random key.")
@click.option("--happened-at", default="", metavar="TIME", help="For an entry made later (a paper application): when it really happened, RFC 3339 with its zone.")
@node_option
@json_option
@friendly
def case_submit(item_code: str, name: str, id_number: str, phone: str, materials: tuple[str, ...], agent: str,
                note: str, actor: str, key: str, happened_at: str, node: str, as_json: bool) -> None:
    """Submit an application; prints its receipt number."""
    with GovnetClient(node) as client:
        done = client.submit(idempotency_key=key or uuid.uuid4().hex, item_code=item_code, name=name,
                             id_number=id_number, phone=phone, materials=materials, agent=agent,
                             note=note, actor=actor, happened_at=happened_at)
    c = done.case
    if as_json:
        click.echo(to_json({"receipt": c.receipt, "status": c.status, "case_type": c.case_type,
                            "owner": c.owner, "replayed": done.replayed,
                            "possible_duplicate": c.possible_duplicate, "duplicate_of": c.duplicate_of,
                            "missing_core": list(c.missing_core), "received_by": c.received_by,
                            "rating_code": done.rating_code}))
        return
    click.echo(f"receipt {c.receipt}  ({c.case_type}, {c.status}{', already submitted' if done.replayed else ''})")
    if done.rating_code:
        # Printed on the receipt, for the applicant only: shown this once.
        click.echo(f"rating code {done.rating_code}  (for the applicant's rating; print it on the receipt)")
    if c.missing_core:
        click.echo("missing core materials: " + ", ".join(c.missing_core))
    if c.possible_duplicate:
        click.echo(f"note: possible duplicate of {c.duplicate_of} (same applicant and item)")


@case.command("show")
@click.argument("receipt")
@node_option
@json_option
@friendly
def case_show(receipt: str, node: str, as_json: bool) -> None:
    """Show a case with its history."""
    with GovnetClient(node) as client:
        c = client.get(receipt)
    click.echo(to_json(c) if as_json else format_case(c))


@case.command("notice")
@click.argument("receipt")
@click.option("--html", "as_html", is_flag=True, help="A self-contained printable HTML page instead of plain text.")
@node_option
@json_option
@friendly
def case_notice(receipt: str, as_html: bool, node: str, as_json: bool) -> None:
    """Print the case's one-time notice (一次性告知书): every missing material with the legal basis."""
    with GovnetClient(node) as client:
        n = client.notice(receipt)
    click.echo(to_json(n) if as_json else n.html if as_html else n.text, nl=not as_html)


@case.command("track")
@click.argument("receipt")
@node_option
@json_option
@friendly
def case_track(receipt: str, node: str, as_json: bool) -> None:
    """Public progress of a case by its receipt number, as the applicant reads it (Chinese, Beijing
    time, no personal data). Any node answers: one that does not hold the case asks up the tree."""
    with GovnetClient(node) as client:
        t = client.track(receipt)
    click.echo(to_json(t) if as_json else format_track(t))


@case.command("list")
@click.option("--status", "statuses", multiple=True, metavar="STATUS[,STATUS…]",
              help="Cases in any of these statuses (repeat it, or a comma list).")
@click.option("--open", "open_only", is_flag=True, help="Only cases not finished yet.")
@click.option("--item", "item_code", default="")
@click.option("--department", default="")
@click.option("--due-before", default="", metavar="YYYY-MM-DD", help="Unfinished cases due on or before this day.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@click.option("--page-token", default="")
@node_option
@json_option
@friendly
def case_list(statuses: tuple[str, ...], open_only: bool, item_code: str, department: str, due_before: str,
              limit: int, page_token: str, node: str, as_json: bool) -> None:
    """List cases, filtered by status (several), open only, item, department, due date; each row
    with the item's name and the applicant's masked name."""
    with GovnetClient(node) as client:
        page = client.list(statuses=statuses, open_only=open_only, item_code=item_code, department=department,
                           due_before=due_before, limit=limit, page_token=page_token)
    if as_json:
        click.echo(to_json(page))
        return
    click.echo(format_case_list(page.cases))
    if page.next_page_token:
        click.echo(f"\nmore: --page-token {page.next_page_token}")


@case.command("act")
@click.argument("receipt")
@click.argument("action")
@actor_option()
@click.option("--reason", default="")
@click.option("--material", "materials", multiple=True, help="accept / supplement / request_supplement: a material (repeat).")
@click.option("--with-department", "departments", multiple=True, help="start_joint: a reviewing department (repeat; default: the item's).")
@click.option("--department", default="", help="opinion: the department giving it.")
@click.option("--agree/--disagree", default=False, help="opinion: the department's verdict.")
@click.option("--approver", default="", help="extend: who approved the extension.")
@click.option("--happened-at", default="", metavar="TIME", help="For an entry made later (a paper application): when it really happened, RFC 3339 with its zone; not before the case's last event nor the step it follows.")
@click.option("--changed-application", is_flag=True, help="request_supplement: the applicant changed what they apply for, so the one-time notice is given again (--reason: what changed).")
@node_option
@json_option
@friendly
def case_act(receipt: str, action: str, actor: str, reason: str, materials: tuple[str, ...],
             departments: tuple[str, ...], department: str, agree: bool, approver: str, happened_at: str,
             changed_application: bool, node: str, as_json: bool) -> None:
    """Apply ACTION to a case: accept, return, review, request_supplement, supplement,
    start_joint, opinion, approve, reject, escalate, extend, complete, deliver, withdraw
    (fees: case pay / case waive-fee; the green channel: case green-channel).
    A case decided at another node is delivered at the window where it was applied for."""
    with GovnetClient(node) as client:
        done = client.act_response(receipt, action, actor=actor, reason=reason, materials=materials,
                                   departments=departments, department=department, agree=agree,
                                   approver=approver, happened_at=happened_at,
                                   changed_application=changed_application)
    c = done.case
    if as_json:
        click.echo(to_json(done))
    elif done.forwarded_to and action == "deliver":
        # One window receives, one window delivers: recorded here at once, the owner records it after.
        click.echo(f"{c.receipt}: deliver → {c.status} at this window; node {done.forwarded_to}, which handled the "
                   "case, records it when the request reaches it")
    elif done.forwarded_to:
        click.echo(f"{c.receipt}: {action} requested from node {done.forwarded_to}, which handles the case")
    else:
        click.echo(f"{c.receipt}: {action} → {c.status}" + (f", due {c.due}" if c.due else ""))


@case.command("pay")
@click.argument("receipt")
@click.option("--amount", required=True, metavar="YUAN", help="The amount paid, in yuan with at most two decimals (80.00).")
@click.option("--method", required=True, help="cash, card, wechat, alipay or bank.")
@click.option("--number", required=True, help="The collection point's receipt or the payment's transaction number.")
@click.option("--happened-at", default="", metavar="TIME", help="For a payment entered later: when it was paid, RFC 3339 with its zone.")
@node_option
@json_option
@friendly
def case_pay(receipt: str, amount: str, method: str, number: str, happened_at: str, node: str, as_json: bool) -> None:
    """Record a payment of a case's fees at the collection point (统一收费)."""
    with GovnetClient(node) as client:
        c = client.pay_fee(receipt, amount, method, number, happened_at)
    click.echo(to_json(c) if as_json else f"{c.receipt}: {format_fees(c)}")


@case.command("waive-fee")
@click.argument("receipt")
@click.option("--reason", required=True, help="The exemption and its basis (减免), on the record.")
@node_option
@json_option
@friendly
def case_waive_fee(receipt: str, reason: str, node: str, as_json: bool) -> None:
    """Waive what a case still owes (the department's chief representative)."""
    with GovnetClient(node) as client:
        c = client.waive_fee(receipt, reason)
    click.echo(to_json(c) if as_json else f"{c.receipt}: {format_fees(c)}")


@case.command("green-channel")
@click.argument("receipt")
@click.option("--reason", required=True, help="The major project the case serves, on the record.")
@node_option
@json_option
@friendly
def case_green_channel(receipt: str, reason: str, node: str, as_json: bool) -> None:
    """Flag a case for the green channel (绿色通道): handled and synced first, with the item's
    shorter limit if it publishes one (a chief representative or a supervisor)."""
    with GovnetClient(node) as client:
        c = client.green_channel(receipt, reason)
    click.echo(to_json(c) if as_json else f"{c.receipt}: green channel" + (f", due {c.due}" if c.due else ""))


# --- sync ---


@click.group()
def sync() -> None:
    """Watch store-and-forward links and their quarantine."""


@sync.command("status")
@node_option
@json_option
@friendly
def sync_status(node: str, as_json: bool) -> None:
    """Per link: connected / retrying / offline since when, outbox depth, oldest item's age,
    inbox depth (received, not yet applied), last success, quarantined items on each side
    (received and not applied; withheld here, not sent), last error."""
    with GovnetClient(node) as client:
        status = client.sync_status()
    click.echo(to_json(status) if as_json else format_sync_status(status))


@sync.group("quarantine")
def quarantine() -> None:
    """Envelopes set aside so they do not block their queue: received ones that could not be
    applied (side receiver), and ones this node could not send (side sender: larger than a
    batch may be, or refused by the receiver; a small marker went in their place)."""


@quarantine.command("list")
@node_option
@json_option
@friendly
def quarantine_list(node: str, as_json: bool) -> None:
    """List quarantined envelopes: link, side, position, kind, case, size, when (Beijing
    time; ISO 8601 with --json) and reason."""
    with GovnetClient(node) as client:
        listing = client.quarantine()
    click.echo(to_json(listing) if as_json else format_quarantine(listing))


@quarantine.command("replay")
@click.argument("item_id", type=int)
@node_option
@json_option
@friendly
def quarantine_replay(item_id: int, node: str, as_json: bool) -> None:
    """Try quarantined envelope ITEM_ID again, after fixing its cause.

    A receiver entry is applied again here. A sender entry is queued again on its link (same
    identity, a new position) once it fits the batch limit: raise sync.batch_max_bytes (and the
    receiver's message limit) and restart the node first; the receiver then applies it. The
    marker of an envelope another node withheld is replayed at that node."""
    with GovnetClient(node) as client:
        done = client.replay(item_id)
    if as_json:
        click.echo(to_json(done))
    elif done.requeued:
        click.echo(f"quarantined item {item_id} queued again: it goes with the next batch")
    elif done.applied:
        click.echo(f"quarantined item {item_id} applied")
    else:
        raise Failure(f"quarantined item {item_id} still fails: {done.error}")


if __name__ == "__main__":
    raise SystemExit("run the govnet command (govnet.ops.cli)")
