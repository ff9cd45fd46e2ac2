"""People on the command line: ``govnet login|logout|whoami`` and ``govnet user …``.

``govnet login`` asks for the password without echo and keeps the token for that node's
address in the token file (``$GOVNET_TOKEN_FILE``, default ``~/.config/govnet/tokens.json``,
mode 0600); every other command sends it. A token lasts one window shift (8 h).

The first account of a node: ``govnet user add LOGIN --role ops --data-dir DIR`` on the
node's machine writes it straight into the node's store (whoever can write the data
directory runs the node anyway); no network, no token. Every later change goes through the
node (``--node``) with an ops login. Passwords come from the prompt (hidden, asked twice) or
``$GOVNET_PASSWORD`` for scripts; never from an argument, which other users could read.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from govnet.node.cli.common import Failure, friendly, json_option, node_option
from govnet.node.cli.format import to_json
from govnet.node.domain.people import Role, parse_roles
from govnet.node.rpc.client import GovnetClient, save_token

ROLE_HELP = "Role (repeat or comma-separate): " + ", ".join(f"{r.value} ({r.label})" for r in Role) + "."


def _password(prompt: str, confirm: bool) -> str:
    given = os.environ.get("GOVNET_PASSWORD")
    if given:
        return given
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def format_account(a: Any) -> str:
    """One line per account: login, name, roles, departments, standing."""
    roles = ", ".join(Role(r).label if r in {x.value for x in Role} else r for r in a.roles)
    parts = [f"{a.login:<16} {a.name:<10} {roles}"]
    if a.departments:
        parts.append("for " + "/".join(a.departments))
    if a.backup_for:
        parts.append(f"backup for {a.backup_for}")
    if a.absent:
        parts.append("ABSENT")
    if a.disabled:
        parts.append("DISABLED")
    return "  ".join(parts)


def _account_dict(a: Any) -> dict[str, Any]:
    return {"login": a.login, "name": a.name, "roles": list(a.roles), "departments": list(a.departments),
            "backup_for": a.backup_for, "absent": a.absent, "disabled": a.disabled}


@click.command("login")
@click.option("--user", "login", prompt="login", help="Your login at this node.")
@node_option
@friendly
def login(login: str, node: str) -> None:
    """Sign in at a node: asks for the password (not echoed) and keeps the token (8 h)."""
    password = _password("password", confirm=False)
    with GovnetClient(node, token="") as client:
        done = client.login(login, password)
    path = save_token(node, {"token": done.token, "login": done.account.login, "node_id": done.node_id,
                             "expires_at": done.expires_at})
    until = datetime.fromisoformat(done.expires_at).astimezone().strftime("%H:%M")
    click.echo(f"logged in at node {done.node_id} as {done.account.login} ({done.account.name}) until {until}; "
               f"token kept in {path}")


@click.command("logout")
@node_option
@friendly
def logout(node: str) -> None:
    """Sign out: the token stops working and is forgotten."""
    with GovnetClient(node) as client:
        if client.token:
            try:
                client.logout()
            finally:
                save_token(node, None)
    click.echo(f"logged out of {node}")


@click.command("whoami")
@node_option
@json_option
@friendly
def whoami(node: str, as_json: bool) -> None:
    """Who the kept token signs in as at this node."""
    with GovnetClient(node) as client:
        me = client.whoami()
    click.echo(to_json(_account_dict(me)) if as_json else format_account(me))


@click.group("user")
def user() -> None:
    """Accounts at a node: add, disable, enable, reset, absent, list (an ops login; the first
    account with --data-dir on the node's machine)."""


@user.command("add")
@click.argument("login")
@click.option("--name", default="", help="Display name (default: the login).")
@click.option("--role", "roles", multiple=True, required=True, help=ROLE_HELP)
@click.option("--department", "departments", multiple=True,
              help="A department a window clerk or chief representative works for (repeat; '*': every one).")
@click.option("--backup-for", default="", help="backup_clerk (AB角): the clerk it acts for while that clerk is absent.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write into this node's store directly (the first account; no network, no login).")
@node_option
@json_option
@friendly
def user_add(login: str, name: str, roles: tuple[str, ...], departments: tuple[str, ...], backup_for: str,
             data_dir: Path | None, node: str, as_json: bool) -> None:
    """Add an account; asks for its password twice (or $GOVNET_PASSWORD)."""
    try:
        parsed = sorted(parse_roles(roles))
    except ValueError as exc:
        raise Failure(str(exc)) from None
    password = _password(f"password for {login}", confirm=True)
    if data_dir is not None:
        from govnet.node.app.accounts import Accounts
        from govnet.node.app.desk import DeskError
        from govnet.node.domain.clock import SystemClock
        from govnet.node.store.engine import Store

        store = Store.open(data_dir)
        try:
            added: Any = Accounts(store, SystemClock()).add(login, name, parsed, password, departments, backup_for)
        except DeskError as exc:
            raise Failure(str(exc)) from None
        finally:
            store.close()
        where = f"the store in {data_dir}"
    else:
        with GovnetClient(node) as client:
            added = client.add_user(login, roles=[r.value for r in parsed], password=password, name=name,
                                    departments=departments, backup_for=backup_for)
        where = f"node {node}"
    if as_json:
        click.echo(to_json(_account_dict(added)))
    else:
        click.echo(f"added to {where}: {format_account(added)}")


def _change(node: str, as_json: bool, what: str, call: Any) -> None:
    with GovnetClient(node) as client:
        done = call(client)
    click.echo(to_json(_account_dict(done)) if as_json else f"{what}: {format_account(done)}")


@user.command("disable")
@click.argument("login")
@node_option
@json_option
@friendly
def user_disable(login: str, node: str, as_json: bool) -> None:
    """Disable an account: no more logins, its tokens stop working at once."""
    _change(node, as_json, "disabled", lambda c: c.disable_user(login))


@user.command("enable")
@click.argument("login")
@node_option
@json_option
@friendly
def user_enable(login: str, node: str, as_json: bool) -> None:
    """Enable a disabled account again."""
    _change(node, as_json, "enabled", lambda c: c.enable_user(login))


@user.command("reset")
@click.argument("login")
@node_option
@json_option
@friendly
def user_reset(login: str, node: str, as_json: bool) -> None:
    """Set a new password (asked twice, or $GOVNET_PASSWORD); its old tokens stop working."""
    password = _password(f"new password for {login}", confirm=True)
    _change(node, as_json, "password reset", lambda c: c.reset_password(login, password))


@user.command("absent")
@click.argument("login")
@click.option("--back", is_flag=True, help="The clerk is back: its backup no longer acts for it.")
@node_option
@json_option
@friendly
def user_absent(login: str, back: bool, node: str, as_json: bool) -> None:
    """Mark a clerk absent, so its backup (AB角) acts for it (ops or a chief representative)."""
    _change(node, as_json, "back" if back else "absent", lambda c: c.set_absent(login, not back))


@user.command("list")
@node_option
@json_option
@friendly
def user_list(node: str, as_json: bool) -> None:
    """Every account at the node (never a password or a hash)."""
    with GovnetClient(node) as client:
        found = client.users().accounts
    if as_json:
        click.echo(to_json({"accounts": [_account_dict(a) for a in found]}))
    else:
        for a in found:
            click.echo(format_account(a))
