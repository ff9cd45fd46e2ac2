"""The node's command groups (``node``, ``catalog``, ``case``, supervision, statistics and
``audit`` commands, ``login`` and ``user``) over the typed client, with pure ``format_*`` functions apart from printing.
The ``govnet`` entry point that gathers them lives in ``govnet.ops.cli``."""

from __future__ import annotations

import click


def add_commands(main: click.Group) -> None:
    """Add the node's commands to the entry point's top-level group."""
    from govnet.node.cli import accounts, audit, calendar, commands, stats, supervision

    for command in (commands.node, commands.catalog, commands.case, commands.sync, supervision.alarms,
                    supervision.complaint, stats.stats, audit.audit, accounts.login, accounts.logout,
                    accounts.whoami, accounts.user, calendar.calendar):
        main.add_command(command)
