"""``govnet audit verify DIR``: recompute a node's audit chain from its data directory.

Works on the file, not through the node: it opens the store read-only (the node may be
running, or dead, or the directory a copy handed to an inspector), recomputes every link
(``node.domain.audit.verify``) and prints one line: the chain intact with its length and
head, or the first event that breaks it — edited, missing, out of order or unchained —
by receipt and seq. Exit code 0 when intact, 4 when the chain is damaged, 1 when the
directory cannot be read as a store.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from govnet.node.cli.common import friendly, json_option
from govnet.node.cli.format import to_json
from govnet.node.domain.audit import Verified, verify
from govnet.node.store.audit_file import read_chain_file

EXIT_DAMAGED = 4


def format_verified(result: Verified) -> str:
    """One line for people: intact with its length and head, or what is wrong and where."""
    if result.divergence is None:
        return f"chain intact: {result.count} events, head {result.head} ({result.algorithm})"
    return f"chain broken: {result.divergence.line()}"


def verified_json(result: Verified) -> dict[str, Any]:
    out: dict[str, Any] = {"intact": result.intact, "algorithm": result.algorithm, "count": result.count,
                           "head": result.head}
    if result.divergence is not None:
        out["divergence"] = {**asdict(result.divergence), "problem": result.divergence.problem.value}
    return out


@click.group("audit")
def audit() -> None:
    """The tamper-evident trail: each node's events form a hash chain."""


@audit.command("verify")
@click.argument("data_dir", type=click.Path(path_type=Path, file_okay=False))
@json_option
@friendly
def verify_command(data_dir: Path, as_json: bool) -> None:
    """Recompute the audit chain of the node whose data directory is DATA_DIR (read-only).

    Prints "chain intact: N events, head …" or the first edited, missing, out-of-order or
    unchained event by receipt and seq. Exit code 0 intact, 4 damaged, 1 not readable."""
    rows, recorded, counts = read_chain_file(data_dir)
    result = verify(rows, recorded, counts)
    click.echo(to_json(verified_json(result)) if as_json else format_verified(result))
    if not result.intact:
        sys.exit(EXIT_DAMAGED)

