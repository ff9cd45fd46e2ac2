"""People at a node, their roles, and what each role may do: one table, pure.

Every person who works a node signs in with an account of that node (accounts live in the
node's store; they do not travel). A person has one or more ``Role``s:

- 窗口人员 ``window_clerk``: receives applications and works cases (accept, return, review,
  supplements, joint opinions, escalate, complete, deliver, withdraw, suspend/resume) — only
  for the departments named on the account (``*``: a comprehensive window, 综合窗口, that
  receives for every department);
- 首席代表 ``chief_representative``: holds the department's delegated signing power: decides
  (approve, reject, extend) the department's cases, waives their fees, flags them for the
  green channel (绿色通道), and answers for its ratings (closes the
  rectification, appeals a rating made in bad faith); can also do a clerk's work;
- AB角 ``backup_clerk``: acts for the clerk named on the account (``backup_for``) with that
  clerk's window roles and departments, only while that clerk is marked absent;
- 村代办员 ``village_agent``: carries applications for villagers (代办): intake, supplements,
  withdrawals;
- 监察员 ``supervisor``: reads the subtree's alarms, complaints, rectifications and
  statistics, resolves complaints, flags any case for the green channel, and decides
  appeals against ratings about its children — never about its own node (a rated node cannot judge itself);
- 运维 ``ops``: node administration: accounts, catalog releases, scans — no case work;
- 自助终端 ``terminal``: a self-service terminal: tracks a receipt and takes the applicant's
  rating, nothing else.

``PERMISSIONS`` is the table: for every operation, the roles that may do it (in the order a
refusal names them) and the scope it is checked in (nothing more; the case's department; a
node above the one concerned). ``authorize(person, op, facts)`` returns ``None`` or a
``Refusal`` whose text says which role is needed, e.g. "approve needs role 首席代表 for
民政局". The operations are the lifecycle's clerk actions (``lifecycle.Action`` values) plus
intake, reads, supervision, catalog and account operations.

An applicant's rating never comes from a staff account: only a terminal account (or the
one-time rating code printed on the receipt, checked outside this table: it names no person)
may rate. The adapters record ``Person.actor`` (login and display name) on every event; the
free text a request carries is not trusted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum

from govnet.federation.tree import NodeIdError, is_ancestor
from govnet.node.domain.lifecycle import Action
from govnet.node.domain.limits import PERSON


class Role(StrEnum):
    WINDOW_CLERK = "window_clerk"
    CHIEF_REPRESENTATIVE = "chief_representative"
    BACKUP_CLERK = "backup_clerk"
    VILLAGE_AGENT = "village_agent"
    SUPERVISOR = "supervisor"
    OPS = "ops"
    TERMINAL = "terminal"

    @property
    def label(self) -> str:
        """How people call the role (refusals name it so)."""
        return _LABELS[self]

    @classmethod
    def parse(cls, text: str) -> Role:
        """A role by its name or its Chinese label; ValueError naming them all."""
        value = text.strip()
        for role in cls:
            if value in (role.value, role.label):
                return role
        names = ", ".join(f"{r.value} ({r.label})" for r in cls)
        raise ValueError(f"unknown role {text!r}; roles are: {names}")


_LABELS = {
    Role.WINDOW_CLERK: "窗口人员",
    Role.CHIEF_REPRESENTATIVE: "首席代表",
    Role.BACKUP_CLERK: "AB角",
    Role.VILLAGE_AGENT: "村代办员",
    Role.SUPERVISOR: "监察员",
    Role.OPS: "运维",
    Role.TERMINAL: "自助终端",
}

ALL_DEPARTMENTS = "*"  # a comprehensive window (综合窗口): receives for every department
WINDOW_ROLES = frozenset({Role.WINDOW_CLERK, Role.CHIEF_REPRESENTATIVE})  # what a backup takes over
_DEPARTMENT_SCOPED = WINDOW_ROLES  # their grants hold for the account's departments only


class Op(StrEnum):
    """Operations that are not a lifecycle action (those are named by ``lifecycle.Action``)."""

    SUBMIT = "submit"
    READ_CASES = "read_cases"  # Get / List: with the applicant's personal data
    RATE = "rate"
    RECTIFY = "rectify"
    APPEAL = "appeal"
    DECIDE_APPEAL = "decide_appeal"
    READ_SUPERVISION = "read_supervision"  # alarms, complaints, rectifications, statistics
    SCAN = "scan"
    FILE_COMPLAINT = "file_complaint"
    RESOLVE_COMPLAINT = "resolve_complaint"
    PUBLISH_CATALOG = "publish_catalog"
    MANAGE_USERS = "manage_users"


class Scope(Enum):
    NODE = "node"  # anyone holding one of the roles, at this node
    DEPARTMENT = "department"  # window roles: for the case's department only
    ABOVE = "above"  # a node strictly above the node concerned (never about its own node)


@dataclass(frozen=True)
class Permission:
    roles: tuple[Role, ...]  # who may; the first is the one a refusal names
    scope: Scope = Scope.NODE


W, C, B, V, SUP, OPS, T = (Role.WINDOW_CLERK, Role.CHIEF_REPRESENTATIVE, Role.BACKUP_CLERK, Role.VILLAGE_AGENT,
                           Role.SUPERVISOR, Role.OPS, Role.TERMINAL)
_CLERK_WORK = Permission((W, C), Scope.DEPARTMENT)
_DECISION = Permission((C,), Scope.DEPARTMENT)

# The table: every operation, who may do it and where it is checked.
PERMISSIONS: Mapping[str, Permission] = {
    Op.SUBMIT: Permission((W, C, V), Scope.DEPARTMENT),  # an agent carries any item (no departments)
    **{a.value: _CLERK_WORK for a in Action},
    Action.SUPPLEMENT.value: Permission((W, C, V), Scope.DEPARTMENT),  # an agent brings the material
    Action.WITHDRAW.value: Permission((W, C, V), Scope.DEPARTMENT),
    Action.DELIVER.value: Permission((W, C, V), Scope.DEPARTMENT),  # a village agent point hands results over too
    Action.APPROVE.value: _DECISION,
    Action.REJECT.value: _DECISION,
    Action.EXTEND.value: _DECISION,
    Action.WAIVE_FEE.value: _DECISION,  # waiving a fee is the signing officer's, with its reason
    # 绿色通道: the department's signing officer for its cases, or a supervisor for any.
    Action.GREEN_CHANNEL.value: Permission((C, SUP), Scope.DEPARTMENT),
    Op.READ_CASES: Permission((W, C, B, V)),
    Op.RATE: Permission((T,)),
    Op.RECTIFY: _DECISION,
    Op.APPEAL: _DECISION,
    Op.DECIDE_APPEAL: Permission((SUP,), Scope.ABOVE),
    Op.READ_SUPERVISION: Permission((SUP, C, OPS)),
    Op.SCAN: Permission((OPS, SUP)),
    Op.FILE_COMPLAINT: Permission((W, C, B, V, SUP, T)),
    Op.RESOLVE_COMPLAINT: Permission((SUP,)),
    Op.PUBLISH_CATALOG: Permission((OPS,)),
    Op.MANAGE_USERS: Permission((OPS,)),
}
assert {a.value for a in Action} | {o.value for o in Op} == set(PERMISSIONS), "every operation needs its row"


@dataclass(frozen=True)
class StandIn:
    """The clerk a backup (AB角) acts for, as the account store has them now."""

    login: str
    name: str
    roles: frozenset[Role]
    departments: tuple[str, ...]
    absent: bool


@dataclass(frozen=True)
class Person:
    """Who is calling: an authenticated account of this node."""

    login: str
    name: str
    node_id: str  # the node whose account it is
    roles: frozenset[Role]
    departments: tuple[str, ...] = ()
    stands_in: StandIn | None = None  # for a backup clerk: the clerk named on the account

    @property
    def actor(self) -> str:
        """What an event records as its actor: the login and the display name."""
        return recorded_actor(self.login, self.name)

    def grants(self) -> list[tuple[Role, tuple[str, ...], str]]:
        """(role, departments, on whose behalf: "" or the absent clerk's login) this person holds now."""
        out = [(r, self.departments, "") for r in sorted(self.roles)]
        s = self.stands_in
        if s is not None and Role.BACKUP_CLERK in self.roles and s.absent:
            out += [(r, s.departments, s.login) for r in sorted(s.roles & WINDOW_ROLES)]
        return out


@dataclass(frozen=True)
class Facts:
    """What a check needs to know about its subject: the case's department (or, for a joint
    opinion, the reviewing department), and the node concerned (for an appeal: the rated node)."""

    department: str = ""
    node: str = ""


NO_FACTS = Facts()


@dataclass(frozen=True)
class Refusal:
    """Why not, for the person asking: ``str()`` is one line naming the role needed."""

    op: str
    needs: Role
    department: str = ""
    above: str = ""
    detail: str = ""

    def __str__(self) -> str:
        where = f" for {self.department}" if self.department else ""
        if self.above:
            where = f" at a node above {self.above}"
        text = f"{self.op} needs role {self.needs.label}{where}"
        return f"{text} ({self.detail})" if self.detail else text


def covers(departments: Iterable[str], department: str) -> bool:
    held = tuple(departments)
    return ALL_DEPARTMENTS in held or department in held


def authorize(person: Person, op: str, facts: Facts = NO_FACTS) -> Refusal | None:
    """May ``person`` do ``op`` on what ``facts`` describe? None, or the refusal saying which role it needs."""
    permission = PERMISSIONS.get(op)
    if permission is None:
        raise ValueError(f"unknown operation {op!r}")
    grants = [g for g in person.grants() if g[0] in permission.roles]
    needs = permission.roles[0]
    if not grants:
        return Refusal(op, needs, facts.department if permission.scope is Scope.DEPARTMENT else "",
                       facts.node if permission.scope is Scope.ABOVE else "", detail=_who(person))
    if permission.scope is Scope.DEPARTMENT and facts.department:
        if any(r not in _DEPARTMENT_SCOPED or covers(depts, facts.department) for r, depts, _ in grants):
            return None
        needs = next(r for r in permission.roles if r in {g[0] for g in grants})
        return Refusal(op, needs, facts.department, detail=_who(person))
    if permission.scope is Scope.ABOVE:
        if _above(person.node_id, facts.node):
            return None
        own = "its own node" if person.node_id == facts.node else f"node {facts.node or '(unknown)'}"
        return Refusal(op, needs, above=facts.node or "?",
                       detail=f"a supervisor at {person.node_id} never decides about {own}")
    return None


def _above(node: str, concerned: str) -> bool:
    try:
        return bool(concerned) and is_ancestor(node, concerned)
    except NodeIdError:
        return False


def _who(person: Person) -> str:
    """What the person holds, said briefly (so a refusal shows the gap)."""
    held = []
    for role, depts, behalf in person.grants():
        text = role.label
        if role in _DEPARTMENT_SCOPED:
            text += " for " + ("every department" if ALL_DEPARTMENTS in depts else "/".join(depts) or "no department")
        if behalf:
            text += f" on behalf of {behalf}"
        held.append(text)
    s = person.stands_in
    if s is not None and not s.absent and Role.BACKUP_CLERK in person.roles:
        held.append(f"backup for {s.login} only while {s.login} is marked absent")
    return f"{person.login} is " + (", ".join(held) or "without a role")


def parse_roles(texts: Iterable[str]) -> frozenset[Role]:
    """Roles as given on the command line (names or labels, comma-separated allowed)."""
    out: set[Role] = set()
    for text in texts:
        for part in text.split(","):
            if part.strip():
                out.add(Role.parse(part))
    return frozenset(out)


def recorded_actor(login: str, name: str) -> str:
    """What every event a person makes records as its actor: the login and the display name."""
    return f"{login} ({name})" if name and name != login else login


def check_account(login: str, roles: frozenset[Role], departments: tuple[str, ...], backup_for: str,
                  name: str = "") -> None:
    """An account's shape, or ValueError saying what is wrong (before anything is stored)."""
    if not login or len(login) > 64 or not all(ch.isalnum() or ch in "-_." for ch in login):
        raise ValueError(f"login {login!r}: 1-64 letters, digits, '-', '_' or '.'")
    # The actor every event records must fit the actor's limit (node.domain.limits), or each of
    # this person's actions would be refused as too long.
    if len(recorded_actor(login, name)) > PERSON:
        raise ValueError(f"login and name are recorded on every event as 'login (name)': at most {PERSON} "
                         "characters together; shorten the login or the name")
    if not roles:
        raise ValueError("an account needs at least one role")
    if roles & WINDOW_ROLES and not departments:
        raise ValueError("a window clerk or chief representative needs the department(s) it works for "
                         f"(or {ALL_DEPARTMENTS!r} for a comprehensive window)")
    if Role.BACKUP_CLERK in roles and not backup_for:
        raise ValueError("a backup clerk (AB角) needs the clerk it stands in for (backup_for)")
    if backup_for and Role.BACKUP_CLERK not in roles:
        raise ValueError("backup_for is only for a backup clerk (AB角)")
    if Role.TERMINAL in roles and len(roles) > 1:
        raise ValueError("a self-service terminal account has no other role (it tracks and rates only)")
