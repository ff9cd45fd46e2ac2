"""Complaints (投诉) about a case or a window, filed at any node, tracked by the supervising level.

Who supervises: the parent of the node complained about (for a case, its owner; for a
window, the node the window belongs to); the city supervises itself. The filing node
writes the complaint with its deadline (``supervision.complaint_days`` working days) and
sends a copy, as a ``complaint`` envelope, to the supervisor, to the node complained
about and to every ancestor of that node (so the city sees the complaints of the whole
tree), in the same transaction. The supervisor resolves it and sends the new version to
the others. Each copy keeps the highest ``version`` it has seen, so repeats and late
copies change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from govnet.federation.routing import root_of
from govnet.federation.tree import NodeIdError, ancestors, check_node_id, in_subtree, is_ancestor, level_of, parent_id
from govnet.node.app.desk import DeskError, ErrorKind, checked
from govnet.node.app.replication import URGENT
from govnet.node.app.wakeup import Wakeup
from govnet.node.domain import limits
from govnet.node.domain.calendar import WorkCalendar, local_date
from govnet.node.domain.clock import Clock
from govnet.node.domain.deadlines import SupervisionSettings, complaint_due
from govnet.node.domain.limits import excerpt
from govnet.node.domain.messages import ComplaintCopy, ComplaintMessage
from govnet.node.domain.receipt import Receipt, ReceiptError
from govnet.node.store import complaints as complaint_rows
from govnet.node.store.engine import Store
from govnet.node.store.models import Complaint
from govnet.node.store.outbox import send
from govnet.node.store.unit import StoreMeta, Unit, next_value, utc_text

KIND = ComplaintMessage.KIND
MAX_TEXT = limits.COMPLAINT


@dataclass(frozen=True)
class FileCommand:
    text: str
    receipt: str = ""  # a complaint about a case ...
    about_node: str = ""  # ... or about a window: the node and its department
    department: str = ""


@dataclass(frozen=True)
class ComplaintView:
    row: Complaint
    overdue: bool


def supervisor_of(node_id: str) -> str:
    """The level that supervises ``node_id``: its parent; the city supervises itself."""
    return parent_id(node_id) or node_id


class ComplaintDesk:
    def __init__(self, store: Store, calendar: WorkCalendar, clock: Clock, settings: SupervisionSettings,
                 outbox_filled: Wakeup | None = None) -> None:
        self.store = store
        self.calendar = calendar
        self.clock = clock
        self.settings = settings
        self.after_commit = (outbox_filled or Wakeup()).ring  # a complaint's copies wait to be sent

    @property
    def meta(self) -> StoreMeta:
        return self.store.meta

    def file(self, cmd: FileCommand) -> Complaint:
        m = "FileComplaintRequest"
        text = checked(m, "text", cmd.text, what="say what the complaint is about (--text)")
        cmd = replace(cmd, receipt=checked(m, "receipt", cmd.receipt), about_node=checked(m, "about_node", cmd.about_node),
                      department=checked(m, "department", cmd.department))
        if bool(cmd.receipt.strip()) == bool(cmd.about_node.strip()):
            raise DeskError(ErrorKind.INVALID, "a complaint is about a case (--receipt) or a window (--about NODE "
                                               "--department D): give exactly one", "receipt")
        receipt = ""
        if cmd.receipt.strip():
            try:
                receipt = str(Receipt.parse(cmd.receipt))
            except ReceiptError as exc:
                raise DeskError(ErrorKind.INVALID, str(exc), "receipt") from None
        else:
            about = cmd.about_node.strip()
            try:
                check_node_id(about, level_of(about))
            except (NodeIdError, ValueError) as exc:
                raise DeskError(ErrorKind.INVALID, f"--about {excerpt(about)}: {exc}", "about_node") from None
            if root_of(about) != root_of(self.meta.node_id):
                raise DeskError(ErrorKind.INVALID, f"node {about} is not in this network (city "
                                                   f"{root_of(self.meta.node_id)})", "about_node")
            if not cmd.department.strip():
                raise DeskError(ErrorKind.INVALID, "which window? give the department (--department)", "department")
        now = self.clock.now()
        with self.store.transaction() as s:
            row = self._file(s, cmd, receipt, text, now)
        self.after_commit()
        return row

    def _file(self, s: Unit, cmd: FileCommand, receipt: str, text: str, now: datetime) -> Complaint:
        here = self.meta.node_id
        item_code: str | None = None
        if receipt:
            known = complaint_rows.case_subject(s, receipt)
            if known is None:
                raise DeskError(ErrorKind.NOT_FOUND, f"node {here} does not know case {receipt}: file the complaint "
                                                     "where it was applied for, or at the city", "receipt")
            about, item_code, department = known
        else:
            about, department = cmd.about_node.strip(), cmd.department.strip()
        today = local_date(now)
        row = Complaint(
            # Like a receipt: the store's incarnation keeps ids unique after a restore from backup.
            complaint_id=f"{here}-{self.meta.incarnation}-{next_value(s, 'complaint_seq')}", receipt=receipt or None, about_node=about,
            item_code=item_code, department=department, filed_at_node=here, supervisor=supervisor_of(about),
            text=text, filed_at=utc_text(now), filed_on=today.isoformat(),
            due=complaint_due(self.calendar, today, self.settings).isoformat(), status="open",
            updated_at=utc_text(now),
        )
        self._store_and_send(s, row, now)
        return row

    def resolve(self, complaint_id: str, resolution: str, actor: str) -> Complaint:
        m = "ResolveComplaintRequest"
        key = checked(m, "complaint_id", complaint_id, what="which complaint?")
        resolution = checked(m, "resolution", resolution, what="say how the complaint was resolved (--resolution)")
        actor = checked(m, "actor", actor, what="who resolves it?")
        now = self.clock.now()

        def work(s: Unit) -> Complaint:
            row = complaint_rows.find(s, key)
            if row is None:
                raise DeskError(ErrorKind.NOT_FOUND, f"no complaint {key} on node {self.meta.node_id}",
                                "complaint_id")
            if row.supervisor != self.meta.node_id:
                raise DeskError(ErrorKind.PRECONDITION, f"complaint {key} is tracked by node {row.supervisor}: "
                                                        "resolve it there")
            if row.status != "open":
                raise DeskError(ErrorKind.PRECONDITION, f"complaint {key} was already resolved on {row.resolved_on}")
            updated = Complaint(**{**row.model_dump(), "status": "resolved", "resolved_on": local_date(now).isoformat(),
                                   "resolution": resolution.strip(), "resolved_by": actor.strip(),
                                   "version": row.version + 1, "updated_at": utc_text(now)})
            self._store_and_send(s, updated, now)
            return updated

        with self.store.transaction() as s:
            done = work(s)
        self.after_commit()
        return done

    def _store_and_send(self, s: Unit, row: Complaint, now: datetime) -> None:
        values = row.model_dump()
        complaint_rows.keep(s, values)
        here = self.meta.node_id
        # Every ancestor of the node complained about keeps a copy: the city watches the whole tree.
        for target in dict.fromkeys((row.supervisor, row.about_node, row.filed_at_node, *ancestors(row.about_node))):
            if target != here:
                send(s, self.meta, target=target, message=ComplaintMessage(ComplaintCopy.from_dict(values)),
                     case_key=f"complaint:{row.complaint_id}", priority=URGENT, now=now)

    def list(self, status: str = "", about_node: str = "", today: date | None = None) -> list[ComplaintView]:
        """The complaints held here (this node's whole subtree: every ancestor keeps a copy),
        ``about_node``: only those about that node or a node below it (the drill-down)."""
        if status not in ("", "open", "resolved"):
            raise DeskError(ErrorKind.INVALID, f"status {excerpt(status)} is not open or resolved", "status")
        if about_node:
            try:
                level_of(about_node)
            except ValueError as exc:
                raise DeskError(ErrorKind.INVALID, f"about_node {excerpt(about_node)}: {exc}", "about_node") from None
        today = today or local_date(self.clock.now())
        with self.store.reading() as s:
            rows = [r for r in complaint_rows.listed(s, status) if not about_node or in_subtree(r.about_node, about_node)]
        views = [ComplaintView(r, r.status == "open" and today.isoformat() > r.due) for r in rows]
        return sorted(views, key=lambda v: (v.row.status != "open", not v.overdue, v.row.filed_at))


def apply_complaint(s: Unit, meta: StoreMeta, message: ComplaintMessage) -> None:
    """A complaint's copy arriving at one of the nodes that keep it (newest version wins)."""
    values = message.complaint.to_dict()
    here = meta.node_id
    if here not in (values["supervisor"], values["about_node"], values["filed_at_node"]) and \
            not is_ancestor(here, str(values["about_node"])):
        raise ValueError(f"complaint {values['complaint_id']} does not concern node {here}")
    complaint_rows.keep(s, values)

