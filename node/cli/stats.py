"""``govnet stats``: the statistics of a subtree.

The table is for people: one line per group with the counts and rates, then a coverage
footer that says which nodes the totals include, how old the oldest report is and when
each child was last heard from, so a stale total never passes for a fresh one.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import click

from govnet.federation.rollup import GROUPINGS
from govnet.node.cli.common import friendly, json_option, node_option
from govnet.node.cli.format import format_table, to_json
from govnet.node.domain.calendar import CHINA_TZ
from govnet.node.domain.statistics import RANKINGS
from govnet.node.rpc.client import GovnetClient
from govnet.v1 import stats_pb2

COLUMNS = (  # (header, counter)
    ("received", "received"), ("accepted", "accepted"), ("immediate", "immediate"), ("completed", "completed"),
    ("on time", "on_time"), ("overdue", "overdue"), ("warned", "warnings"), ("returned", "returned"),
    ("escalated", "escalated"), ("suppl.", "supplement_requests"), ("complaints", "complaints"),
)
RATINGS = ("eval_very_satisfied", "eval_satisfied", "eval_basically_satisfied", "eval_dissatisfied",
           "eval_very_dissatisfied")


def _percent(msg: stats_pb2.Rates, field: str) -> str:
    return f"{getattr(msg, field) * 100:.1f}%" if msg.HasField(field) else "-"


def _row(g: stats_pb2.StatsGroup) -> list[Any]:
    c = g.counters
    evaluations = sum(getattr(c, r) for r in RATINGS)
    days = f"{g.rates.average_processing_days:.1f}" if g.rates.HasField("average_processing_days") else "-"
    return [g.key, *(getattr(c, name) for _, name in COLUMNS), evaluations, f"{c.fees_fen / 100:.2f}",
            _percent(g.rates, "on_time"), _percent(g.rates, "immediate"), _percent(g.rates, "satisfaction"), days]


def _when(text: str, now: datetime | None) -> str:
    """An instant as people read it, with its age against the node's own clock."""
    if not text:
        return "never"
    at = datetime.fromisoformat(text)
    shown = at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S") + " Beijing time"
    if now is None:
        return shown
    age = max(0.0, (now - at).total_seconds())
    if age < 120:
        ago = f"{age:.0f} s ago"
    elif age < 7200:
        ago = f"{age / 60:.0f} min ago"
    elif age < 172_800:
        ago = f"{age / 3600:.1f} h ago"
    else:
        ago = f"{age / 86_400:.1f} days ago"
    return f"{shown} ({ago})"


def format_stats(a: stats_pb2.StatsAnswer) -> str:
    """The answer as a table with its coverage footer."""
    now = datetime.fromisoformat(a.answered_at) if a.answered_at else None
    span = (f"{a.from_day} to {a.to_day}" if a.from_day and a.to_day else f"from {a.from_day}" if a.from_day
            else f"up to {a.to_day}" if a.to_day else "all days")
    head = f"statistics of node {a.node} and its subtree, by {a.by}, {span}"
    if a.answered_by and a.answered_by != a.node:
        head += f" (drilled down from node {a.answered_by})"
    if a.rank_by:
        head += f", ranked by {a.rank_by} ({'lowest' if a.ascending else 'highest'} first; unknown rates last)"
    headers = [a.by, *(h for h, _ in COLUMNS), "evaluations", "fees (yuan)", "on-time", "immediate",
               "satisfied", "avg days"]
    body = [_row(g) for g in a.groups] + [_row(a.total)]
    if a.rank_by:  # 名次: the place of each group; the total has none
        headers = ["名次", *headers]
        body = [[str(n), *row] for n, row in enumerate(body[:-1], 1)] + [["", *body[-1]]]
    lines = [head, "", format_table(headers, body) if a.groups else "(no cases counted in this period)"]
    cov = a.coverage
    lines += ["", f"coverage: {cov.nodes_reported} of {cov.nodes_known} known nodes have reported"]
    if cov.missing:
        lines.append("  never reported (not in these totals): " + ", ".join(cov.missing))
    if cov.HasField("oldest") and cov.oldest.node:
        lines.append(f"  oldest report: node {cov.oldest.node}, complete up to {_when(cov.oldest.as_of, now)}")
    for child in cov.children:
        lines.append(f"  child {child.child}: last heard {_when(child.last_heard, now)}")
    return "\n".join(lines)


def _day(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value:
        return ""
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@click.command("stats")
@click.option("--by", type=click.Choice(GROUPINGS), default=None,
              help="Group the totals by level, child of this node, node, item, department (window) or day "
                   "[default: child with --subtree or --rank-by, else node].")
@click.option("--subtree", default="", metavar="NODE_ID",
              help="Drill down: the figures of this node's subtree (a node below the one asked), e.g. a county "
                   "asked at the city.")
@click.option("--rank-by", type=click.Choice(RANKINGS), default=None,
              help="Rank the groups by a rate (on_time, immediate, satisfaction, average_processing_days) or a "
                   "counter; ties keep their order, unknown rates come last.")
@click.option("--ascending", is_flag=True, help="With --rank-by: lowest first (default: highest first).")
@click.option("--from", "from_day", default="", metavar="YYYY-MM-DD", callback=_day, help="First day (inclusive).")
@click.option("--to", "to_day", default="", metavar="YYYY-MM-DD", callback=_day, help="Last day (inclusive).")
@node_option
@json_option
@friendly
def stats(by: str | None, subtree: str, rank_by: str | None, ascending: bool, from_day: str, to_day: str, node: str,
          as_json: bool) -> None:
    """Case statistics of a node's whole subtree (rolled up exactly), with their coverage:
    which nodes reported up to when, and when each child was last heard from. Ranks the groups
    (--rank-by), drills into a node below (--subtree), per department with --by department."""
    if from_day and to_day and from_day > to_day:
        raise click.BadParameter(f"--from {from_day} is after --to {to_day}", param_hint="'--to'")
    if by is None:
        by = "child" if subtree or rank_by else "node"
    with GovnetClient(node) as client:
        got = client.stats(by=by, from_day=from_day, to_day=to_day, subtree=subtree.strip(), rank_by=rank_by or "",
                           ascending=ascending)
    click.echo(to_json(got) if as_json else format_stats(got))
