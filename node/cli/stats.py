"""``govnet stats``: the statistics of a subtree.

The table is for people (Chinese headings, Beijing time): one line per group with the counts
and rates, then a coverage footer that says which nodes the totals include, how old the oldest report is and when
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
from govnet.node.domain.fees import yuan
from govnet.node.domain.statistics import RANKINGS
from govnet.node.rpc.client import GovnetClient
from govnet.v1 import stats_pb2

COLUMNS = (  # (header, counter)
    ("received", "received"), ("accepted", "accepted"), ("immediate", "immediate"), ("completed", "completed"),
    ("on time", "on_time"), ("overdue", "overdue"), ("warned", "warnings"), ("returned", "returned"),
    ("escalated", "escalated"), ("suppl.", "supplement_requests"), ("complaints", "complaints"),
    ("carried", "carried"), ("green", "green_channel"),
)
MONEY = (  # (header, counter in fen): fees due on completed cases, collected at the window, waived
    ("应收", "fees_fen"), ("实收", "fees_collected_fen"), ("减免", "fees_waived_fen"),
)
RATINGS = ("eval_very_satisfied", "eval_satisfied", "eval_basically_satisfied", "eval_dissatisfied",
           "eval_very_dissatisfied")


# The table is read by supervisors: Chinese headings, by counter (a counter without one shows its
# COLUMNS header), and the groupings' names.
HEADINGS = {
    "received": "收件", "accepted": "受理", "immediate": "即办", "completed": "办结", "on_time": "按期办结",
    "overdue": "红牌", "warnings": "黄牌", "returned": "退件", "escalated": "上报", "supplement_requests": "补正",
    "complaints": "投诉", "carried": "代办", "green_channel": "绿色通道",
}
GROUP_NAMES = {"level": "层级", "child": "下级", "node": "节点", "item": "事项", "department": "部门（窗口）",
               "day": "日期"}


def _percent(msg: stats_pb2.Rates, field: str) -> str:
    return f"{getattr(msg, field) * 100:.1f}%" if msg.HasField(field) else "-"


def _row(g: stats_pb2.StatsGroup) -> list[Any]:
    c = g.counters
    evaluations = sum(getattr(c, r) for r in RATINGS)
    days = f"{g.rates.average_processing_days:.1f}" if g.rates.HasField("average_processing_days") else "-"
    return [g.key, *(getattr(c, name) for _, name in COLUMNS), evaluations, *(yuan(getattr(c, n)) for _, n in MONEY),
            _percent(g.rates, "on_time"), _percent(g.rates, "immediate"), _percent(g.rates, "satisfaction"), days]


def _when(text: str, now: datetime | None) -> str:
    """An instant as people read it, with its age against the node's own clock."""
    if not text:
        return "从未"
    at = datetime.fromisoformat(text)
    shown = at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S") + " 北京时间"
    if now is None:
        return shown
    age = max(0.0, (now - at).total_seconds())
    if age < 120:
        ago = f"{age:.0f} 秒前"
    elif age < 7200:
        ago = f"{age / 60:.0f} 分钟前"
    elif age < 172_800:
        ago = f"{age / 3600:.1f} 小时前"
    else:
        ago = f"{age / 86_400:.1f} 天前"
    return f"{shown}（{ago}）"


def format_stats(a: stats_pb2.StatsAnswer) -> str:
    """The answer as a table with its coverage footer."""
    now = datetime.fromisoformat(a.answered_at) if a.answered_at else None
    span = (f"{a.from_day} 至 {a.to_day}" if a.from_day and a.to_day else f"自 {a.from_day} 起" if a.from_day
            else f"至 {a.to_day} 止" if a.to_day else "全部日期")
    head = f"节点 {a.node} 及其下级的办件统计（by {a.by}：按{GROUP_NAMES.get(a.by, a.by)}），{span}"
    if a.answered_by and a.answered_by != a.node:
        head += f"，由节点 {a.answered_by} 下钻"
    if a.rank_by:
        head += f"，按 {a.rank_by} 排名（{'从低到高' if a.ascending else '从高到低'}；无法计算者排最后）"
    headers = [GROUP_NAMES.get(a.by, a.by), *(HEADINGS.get(name, h) for h, name in COLUMNS), "评价", *(f"{h}（元）" for h, _ in MONEY),
               "按期率", "即办率", "满意率", "平均工作日"]
    body = [_row(g) for g in a.groups] + [_row(a.total)]
    if a.rank_by:  # 名次: the place of each group; the total has none
        headers = ["名次", *headers]
        body = [[str(n), *row] for n, row in enumerate(body[:-1], 1)] + [["", *body[-1]]]
    lines = [head, "", format_table(headers, body) if a.groups else "（本期无办件）"]
    cov = a.coverage
    lines += ["", f"覆盖：已知 {cov.nodes_known} 个节点，{cov.nodes_reported} 个已上报"]
    if cov.missing:
        lines.append("  从未上报（不在合计内）：" + "、".join(cov.missing))
    if cov.HasField("oldest") and cov.oldest.node:
        lines.append(f"  最早的上报：节点 {cov.oldest.node}，数据完整至 {_when(cov.oldest.as_of, now)}")
    for child in cov.children:
        lines.append(f"  下级 {child.child}：最近联系 {_when(child.last_heard, now)}")
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
