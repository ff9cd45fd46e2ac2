"""``govnet calendar``: publish a year's official holiday schedule at the city."""

from __future__ import annotations

from pathlib import Path

import click

from govnet.node.cli.common import Failure, friendly, json_option, node_option
from govnet.node.cli.format import to_json
from govnet.node.domain.calendar import CalendarError, YearSchedule
from govnet.node.rpc.client import GovnetClient
from govnet.v1 import catalog_pb2


@click.group()
def calendar() -> None:
    """The working-day calendar's years (the State Council's holiday notices)."""


def format_published(done: catalog_pb2.PublishCalendarResponse) -> str:
    if not done.published:
        return f"calendar {done.year} was already published with this schedule: nothing changed"
    return (f"calendar {done.year} published: it travels down the tree; "
            f"{done.recounted} case(s) owned here had their due dates counted again")


@calendar.command("publish")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@node_option
@json_option
@friendly
def calendar_publish(file: Path, node: str, as_json: bool) -> None:
    """Publish a year's holiday schedule at the city (once).

    FILE has the format of node/domain/data/holidays/YYYY.toml. The year travels down the tree;
    every node keeps it and counts the due dates of its open cases again. The same schedule
    again changes nothing; another one for a year already published is refused."""
    try:
        YearSchedule.from_toml(file)  # the node checks it again; this catches a wrong file before any call
    except CalendarError as exc:
        raise Failure(str(exc)) from None
    text = file.read_text(encoding="utf-8")
    with GovnetClient(node) as client:
        done = client.publish_calendar(text)
    click.echo(to_json(done) if as_json else format_published(done))
