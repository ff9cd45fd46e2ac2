"""Supervision commands: ``govnet alarms``, ``govnet complaint …`` and the case commands
``evaluate``, ``suspend``, ``resume``, ``rectify``, ``appeal``, ``appeal-decide``.

``register`` adds them to the main command group (``node.cli`` calls it). The ``format_*``
functions are pure: messages in, text out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

from govnet.node.cli.commands import case
from govnet.node.cli.common import actor_option, friendly, json_option, node_option
from govnet.node.cli.format import format_fields, format_table, to_json
from govnet.node.domain.calendar import CHINA_TZ
from govnet.node.domain.lifecycle import RATINGS, SUSPEND_KINDS
from govnet.node.rpc.client import GovnetClient
from govnet.v1 import supervision_pb2 as sv


def _what(a: sv.Alarm) -> str:
    detail = json.loads(a.detail_json or "{}")
    if a.kind == "warn" and detail.get("step") == "acceptance":
        return f"not accepted: {detail.get('working_days_left', '?')} working day(s) left, by {detail.get('due', '')}"
    if a.kind == "deem_accept":
        return f"deemed accepted as of its arrival {detail.get('accepted_on', '')} (art. 32)"
    if a.kind == "warn":
        return f"{detail.get('working_days_left', '?')} working day(s) left"
    if a.kind == "overdue":
        return f"past due {detail.get('due', '')}"
    if a.kind == "audit_chain_broken":  # about a node (the owner column), not a case
        return f"audit chain: {detail.get('reason', '')}"
    if a.kind == "rectification":  # opened by a dissatisfied rating, at the node in the owner column
        return f"整改 {detail.get('department', '')}：评价 {detail.get('rating', '')}，限 {a.due} 前完成"
    return f"{detail.get('step', 'joint_opinion')}: {detail.get('department', '')} past {detail.get('due', '')}"


CARDS = {"red": "红牌", "yellow": "黄牌", "note": "提示"}


def _beijing(instant: str) -> str:
    """An RFC 3339 instant as people read it here: Beijing time, to the minute ("" stays "-")."""
    if not instant:
        return "-"
    return datetime.fromisoformat(instant).astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def format_alarms(listing: sv.ListAlarmsResponse) -> str:
    """Alarms of this node and of its whole subtree: the 涉及节点 column names the node each concerns."""
    if not listing.alarms:
        return f"节点 {listing.node_id}：无预警"
    rows = [(CARDS.get(a.card, a.card), a.kind, a.receipt or "-", a.item_code or "-", a.owner,
             (a.due + "（暂定）" if a.provisional else a.due) or "-",
             _beijing(a.since), "办理中" if a.open else "已结", _what(a) + (" [back-filled]" if a.backfilled else ""))
            for a in listing.alarms]
    reds = sum(1 for a in listing.alarms if a.open and a.card == "red")
    yellows = sum(1 for a in listing.alarms if a.open and a.card == "yellow")
    table = format_table(["牌", "类别", "受理编号", "事项", "涉及节点", "期限", "发出时间（北京）", "状态", "说明"], rows)
    return f"节点 {listing.node_id}：未结红牌 {reds} 张，黄牌 {yellows} 张\n\n{table}"


COMPLAINT_STATUS = {"open": "待处理", "resolved": "已办结"}


def format_complaints(complaints: Sequence[sv.Complaint]) -> str:
    """Complaints this node keeps, its whole subtree's included: 被投诉节点 names the node each is about."""
    if not complaints:
        return "无投诉"
    rows = [(c.complaint_id, COMPLAINT_STATUS.get(c.status, c.status) + ("（已超期）" if c.overdue else ""),
             c.receipt or "-", c.about_node, c.department, c.supervisor, c.filed_on, c.due, c.resolved_on or "-")
            for c in complaints]
    return format_table(["编号", "状态", "受理编号", "被投诉节点", "窗口（部门）", "督办节点", "投诉日期", "办结期限",
                         "办结日期"], rows)


def format_complaint(c: sv.Complaint) -> str:
    return format_fields([
        ("complaint", c.complaint_id), ("status", c.status), ("case", c.receipt), ("about node", c.about_node),
        ("department", c.department), ("filed at", f"{c.filed_at_node} on {c.filed_on}"),
        ("tracked by", c.supervisor), ("due", c.due), ("text", c.text), ("resolved", c.resolved_on),
        ("resolution", c.resolution), ("resolved by", c.resolved_by),
    ])


def show(as_json: bool, msg: Any, text: str) -> None:
    click.echo(to_json(msg) if as_json else text)

@click.command("alarms")
@click.option("--open", "open_only", is_flag=True, help="Only alarms on cases still running.")
@click.option("--scan", is_flag=True, help="Look for new alarms first (the node also does it every "
                                           "supervision.scan_interval_s).")
@click.option("--about", "about_node", default="", metavar="NODE_ID",
              help="Only alarms about this node or a node below it.")
@node_option
@json_option
@friendly
def alarms(open_only: bool, scan: bool, about_node: str, node: str, as_json: bool) -> None:
    """Warnings (yellow cards), overdue and step alarms (red cards) and open rectifications, of
    this node and its whole subtree, open ones first: receipt, item, the node concerned, due
    date, since when (Beijing time)."""
    with GovnetClient(node) as client:
        if scan:
            client.scan()
        listing = client.alarms(open_only=open_only, about_node=about_node)
    show(as_json, listing, format_alarms(listing))

@case.command("evaluate")
@click.argument("receipt")
@click.option("--rating", required=True, type=click.Choice(RATINGS), help="The applicant's rating.")
@click.option("--comment", default="", help="The applicant's comment, if any.")
@click.option("--code", default="", help="The one-time rating code printed on the receipt (the applicant's own).")
@node_option
@json_option
@friendly
def evaluate(receipt: str, rating: str, comment: str, code: str, node: str, as_json: bool) -> None:
    """The applicant rates a delivered case, at the node where they applied (once per case).

    Only the applicant's own channel: the one-time code printed on the receipt (--code), or a
    self-service terminal's login. A clerk's login cannot rate."""
    with GovnetClient(node, token="" if code else None) as client:  # the code needs (and sends) no login
        done = client.evaluate(receipt, rating, comment, rating_code=code)
    text = f"{done.receipt}: rated {done.rating}"
    if done.forwarded_to:
        text += f"; sent to node {done.forwarded_to}, which handled the case"
    if done.rectification_due:
        text += f"; rectification opened, due {done.rectification_due}"
    show(as_json, done, text)

@case.command("suspend")
@click.argument("receipt")
@click.option("--kind", required=True, type=click.Choice(SUSPEND_KINDS), help="What the clock stops for.")
@click.option("--days", required=True, type=int, help="Planned duration in working days.")
@click.option("--reason", required=True, help="Why, as told to the applicant.")
@actor_option()
@node_option
@json_option
@friendly
def suspend(receipt: str, kind: str, days: int, reason: str, actor: str, node: str, as_json: bool) -> None:
    """Stop a case's clock for a hearing, testing, inspection or expert review."""
    with GovnetClient(node) as client:
        done = client.suspend(receipt, kind=kind, days=days, reason=reason, actor=actor)
    show(as_json, done, f"{done.receipt}: clock stopped for {kind} (planned {days} working days)")

@case.command("resume")
@click.argument("receipt")
@click.option("--reason", default="")
@actor_option()
@node_option
@json_option
@friendly
def resume(receipt: str, reason: str, actor: str, node: str, as_json: bool) -> None:
    """Restart a suspended case's clock; the due date moves by the working days it stood."""
    with GovnetClient(node) as client:
        done = client.resume(receipt, actor=actor, reason=reason)
    show(as_json, done, f"{done.receipt}: clock running again, due {done.due} ({done.paused_days} working days paused in all)")

@case.command("rectify")
@click.argument("receipt")
@click.option("--note", required=True, help="What was put right.")
@actor_option()
@node_option
@json_option
@friendly
def rectify(receipt: str, note: str, actor: str, node: str, as_json: bool) -> None:
    """Close the rectification a dissatisfied rating opened."""
    with GovnetClient(node) as client:
        done = client.rectify(receipt, note=note, actor=actor)
    show(as_json, done, f"{done.receipt}: rectification closed ({'on time' if done.on_time else 'late'}; due {done.due})")

@case.command("appeal")
@click.argument("receipt")
@click.option("--reason", required=True, help="Why the rating was made in bad faith.")
@actor_option()
@node_option
@json_option
@friendly
def appeal(receipt: str, reason: str, actor: str, node: str, as_json: bool) -> None:
    """Appeal against a dissatisfied rating made in bad faith."""
    with GovnetClient(node) as client:
        done = client.appeal(receipt, reason=reason, actor=actor)
    show(as_json, done, f"{done.receipt}: appeal recorded")

@case.command("appeal-decide")
@click.argument("receipt")
@click.option("--outcome", required=True, type=click.Choice(["upheld", "rejected"]),
              help="upheld: the rating was made in bad faith.")
@click.option("--reason", required=True)
@actor_option()
@node_option
@json_option
@friendly
def appeal_decide(receipt: str, outcome: str, reason: str, actor: str, node: str, as_json: bool) -> None:
    """Decide an appeal against a rating (a supervisor, at a node above the rated one).

    A supervisor never decides an appeal about its own node: run this at an ancestor of the
    node that handled the case; the outcome is sent there and recorded in the case's history."""
    with GovnetClient(node) as client:
        done = client.decide_appeal(receipt, upheld=outcome == "upheld", reason=reason, actor=actor)
    sent = f"; sent to node {done.forwarded_to}, which records it" if done.forwarded_to else ""
    show(as_json, done, f"{done.receipt}: appeal {outcome}{sent}")

@click.group("complaint")
def complaint() -> None:
    """File, list and resolve complaints about a case or a window."""

@complaint.command("file")
@click.option("--text", required=True, help="What the complaint is.")
@click.option("--receipt", default="", help="The case complained about ...")
@click.option("--about", "about_node", default="", metavar="NODE_ID", help="... or the node of the window complained about")
@click.option("--department", default="", help="with the window's department.")
@node_option
@json_option
@friendly
def complaint_file(text: str, receipt: str, about_node: str, department: str, node: str, as_json: bool) -> None:
    """File a complaint here; it goes to the supervising level, which has complaint_days working days."""
    with GovnetClient(node) as client:
        c = client.file_complaint(text, receipt=receipt, about_node=about_node, department=department)
    show(as_json, c, f"complaint {c.complaint_id} filed: tracked by node {c.supervisor}, due {c.due}")

@complaint.command("list")
@click.option("--status", default="", type=click.Choice(["", "open", "resolved"]))
@click.option("--about", "about_node", default="", metavar="NODE_ID",
              help="Only complaints about this node or a node below it.")
@node_option
@json_option
@friendly
def complaint_list(status: str, about_node: str, node: str, as_json: bool) -> None:
    """Complaints about this node and its whole subtree (and those filed here): open (overdue
    first), then resolved, each with the node it is about."""
    with GovnetClient(node) as client:
        listing = client.complaints(status=status, about_node=about_node)
    show(as_json, listing, format_complaints(listing.complaints))

@complaint.command("resolve")
@click.argument("complaint_id")
@click.option("--resolution", required=True, help="How it was resolved.")
@actor_option()
@node_option
@json_option
@friendly
def complaint_resolve(complaint_id: str, resolution: str, actor: str, node: str, as_json: bool) -> None:
    """Resolve a complaint (at the node that tracks it)."""
    with GovnetClient(node) as client:
        c = client.resolve_complaint(complaint_id, resolution=resolution, actor=actor)
    show(as_json, c, format_complaint(c))
