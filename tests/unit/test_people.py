"""The role table (node.domain.people), pure: who may do what, where, and what a refusal says."""

from __future__ import annotations

import pytest

from govnet.node.domain.lifecycle import Action
from govnet.node.domain.people import (
    ALL_DEPARTMENTS,
    PERMISSIONS,
    Facts,
    Op,
    Person,
    Role,
    StandIn,
    authorize,
    check_account,
    parse_roles,
)

W, C, B, V, SUP, OPS, T = (Role.WINDOW_CLERK, Role.CHIEF_REPRESENTATIVE, Role.BACKUP_CLERK, Role.VILLAGE_AGENT,
                           Role.SUPERVISOR, Role.OPS, Role.TERMINAL)
MZ, GA = "民政局", "公安局"
COUNTY, TOWN, VILLAGE, CITY = "371102", "371102001", "371102001201", "371100"


def person(*roles: Role, departments: tuple[str, ...] = (), node: str = COUNTY, stands_in: StandIn | None = None,
           login: str = "p") -> Person:
    return Person(login, "某人", node, frozenset(roles), departments, stands_in)


def clerk_of(*departments: str) -> Person:
    return person(W, departments=departments)


# (who, operation, facts, allowed?) — one row per rule.
CASES = [
    # window work: the clerk of the case's department, or a comprehensive window
    ("clerk-own-department-accepts", clerk_of(MZ), "accept", Facts(MZ), True),
    ("clerk-other-department-refused", clerk_of(GA), "accept", Facts(MZ), False),
    ("comprehensive-window-any-department", clerk_of(ALL_DEPARTMENTS), "review", Facts(MZ), True),
    ("clerk-two-departments", clerk_of(GA, MZ), "deliver", Facts(MZ), True),
    ("clerk-submits-for-own-department", clerk_of(MZ), Op.SUBMIT, Facts(MZ), True),
    ("clerk-submit-other-department-refused", clerk_of(GA), Op.SUBMIT, Facts(MZ), False),
    # decisions: the department's chief representative only
    ("clerk-cannot-approve", clerk_of(MZ), "approve", Facts(MZ), False),
    ("clerk-cannot-reject", clerk_of(MZ), "reject", Facts(MZ), False),
    ("clerk-cannot-extend", clerk_of(MZ), "extend", Facts(MZ), False),
    ("chief-approves-own-department", person(C, departments=(MZ,)), "approve", Facts(MZ), True),
    ("chief-other-department-refused", person(C, departments=(GA,)), "approve", Facts(MZ), False),
    ("chief-does-clerk-work", person(C, departments=(MZ,)), "accept", Facts(MZ), True),
    ("chief-rectifies", person(C, departments=(MZ,)), Op.RECTIFY, Facts(MZ), True),
    ("chief-appeals", person(C, departments=(MZ,)), Op.APPEAL, Facts(MZ), True),
    ("clerk-cannot-appeal", clerk_of(MZ), Op.APPEAL, Facts(MZ), False),
    # village agents carry cases (代办): intake, supplements, withdrawals — not decisions
    ("agent-submits-any-item", person(V, node=VILLAGE), Op.SUBMIT, Facts(MZ), True),
    ("agent-supplements", person(V, node=VILLAGE), "supplement", Facts(MZ), True),
    ("agent-withdraws", person(V, node=VILLAGE), "withdraw", Facts(MZ), True),
    ("agent-cannot-accept", person(V, node=VILLAGE), "accept", Facts(MZ), False),
    ("agent-cannot-approve", person(V, node=VILLAGE), "approve", Facts(MZ), False),
    # ratings: only the terminal (the code is checked elsewhere); never staff
    ("terminal-rates", person(T), Op.RATE, Facts(), True),
    ("clerk-cannot-rate", clerk_of(ALL_DEPARTMENTS), Op.RATE, Facts(), False),
    ("chief-cannot-rate", person(C, departments=(MZ,)), Op.RATE, Facts(), False),
    ("supervisor-cannot-rate", person(SUP), Op.RATE, Facts(), False),
    ("terminal-cannot-read-cases", person(T), Op.READ_CASES, Facts(), False),
    ("terminal-cannot-accept", person(T), "accept", Facts(MZ), False),
    ("terminal-files-complaint", person(T), Op.FILE_COMPLAINT, Facts(), True),
    # supervision: reads and complaints; appeals only about a node below its own
    ("supervisor-reads", person(SUP), Op.READ_SUPERVISION, Facts(), True),
    ("supervisor-resolves-complaint", person(SUP), Op.RESOLVE_COMPLAINT, Facts(), True),
    ("clerk-cannot-resolve-complaint", clerk_of(MZ), Op.RESOLVE_COMPLAINT, Facts(), False),
    ("supervisor-decides-appeal-about-child", person(SUP, node=COUNTY), Op.DECIDE_APPEAL, Facts(node=TOWN), True),
    ("supervisor-decides-appeal-about-grandchild", person(SUP, node=CITY), Op.DECIDE_APPEAL, Facts(node=TOWN), True),
    ("supervisor-never-about-own-node", person(SUP, node=TOWN), Op.DECIDE_APPEAL, Facts(node=TOWN), False),
    ("supervisor-never-about-parent", person(SUP, node=TOWN), Op.DECIDE_APPEAL, Facts(node=COUNTY), False),
    ("supervisor-not-about-other-subtree", person(SUP, node="371103"), Op.DECIDE_APPEAL, Facts(node=TOWN), False),
    ("supervisor-cannot-act-on-cases", person(SUP), "approve", Facts(MZ), False),
    ("chief-cannot-decide-appeal", person(C, departments=(MZ,), node=CITY), Op.DECIDE_APPEAL, Facts(node=TOWN),
     False),
    # ops: node administration, no case work
    ("ops-manages-users", person(OPS), Op.MANAGE_USERS, Facts(), True),
    ("ops-publishes-catalog", person(OPS), Op.PUBLISH_CATALOG, Facts(), True),
    ("ops-cannot-accept", person(OPS), "accept", Facts(MZ), False),
    ("ops-cannot-read-cases", person(OPS), Op.READ_CASES, Facts(), False),
    ("clerk-cannot-manage-users", clerk_of(ALL_DEPARTMENTS), Op.MANAGE_USERS, Facts(), False),
    ("clerk-cannot-publish-catalog", clerk_of(ALL_DEPARTMENTS), Op.PUBLISH_CATALOG, Facts(), False),
    # AB角: a backup acts for its clerk only while that clerk is absent
    ("backup-while-clerk-absent", person(B, stands_in=StandIn("wf", "王芳", frozenset({W}), (MZ,), True)), "accept",
     Facts(MZ), True),
    ("backup-while-clerk-present", person(B, stands_in=StandIn("wf", "王芳", frozenset({W}), (MZ,), False)),
     "accept", Facts(MZ), False),
    ("backup-only-the-clerks-departments", person(B, stands_in=StandIn("wf", "王芳", frozenset({W}), (MZ,), True)),
     "accept", Facts(GA), False),
    ("backup-of-a-chief-signs-while-absent",
     person(B, stands_in=StandIn("zq", "赵强", frozenset({C}), (MZ,), True)), "approve", Facts(MZ), True),
    ("backup-takes-no-supervision", person(B, stands_in=StandIn("s", "监察", frozenset({SUP}), (), True)),
     Op.RESOLVE_COMPLAINT, Facts(), False),
    ("backup-reads-cases", person(B), Op.READ_CASES, Facts(), True),
]


@pytest.mark.parametrize(("who", "op", "facts", "allowed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_role_table(who: Person, op: str, facts: Facts, allowed: bool) -> None:
    refusal = authorize(who, op, facts)
    assert (refusal is None) == allowed, str(refusal)
    if refusal is not None:
        text = str(refusal)
        assert text.startswith(f"{op} needs role ") and "\n" not in text


def test_every_operation_has_a_row_naming_who_may() -> None:
    assert {a.value for a in Action} <= set(PERMISSIONS)
    assert {o.value for o in Op} <= set(PERMISSIONS)
    assert all(p.roles for p in PERMISSIONS.values())


@pytest.mark.parametrize(("who", "op", "facts", "says"), [
    (clerk_of(GA), "accept", Facts(MZ), "accept needs role 窗口人员 for 民政局 (p is 窗口人员 for 公安局)"),
    (clerk_of(MZ), "approve", Facts(MZ), "approve needs role 首席代表 for 民政局 (p is 窗口人员 for 民政局)"),
    (clerk_of(MZ), Op.RATE, Facts(), "rate needs role 自助终端 (p is 窗口人员 for 民政局)"),
    (person(SUP, node=TOWN), Op.DECIDE_APPEAL, Facts(node=TOWN),
     "decide_appeal needs role 监察员 at a node above 371102001 (a supervisor at 371102001 never decides about its own "
     "node)"),
    (person(B, stands_in=StandIn("wf", "王芳", frozenset({W}), (MZ,), False)), "accept", Facts(MZ),
     "accept needs role 窗口人员 for 民政局 (p is AB角, backup for wf only while wf is marked absent)"),
], ids=["other-department", "clerk-approves", "clerk-rates", "own-node-appeal", "backup-clerk-present"])
def test_a_refusal_names_the_role_it_needs_and_what_the_person_holds(who: Person, op: str, facts: Facts,
                                                                     says: str) -> None:
    assert str(authorize(who, op, facts)) == says


def test_the_actor_an_event_records_is_login_and_display_name() -> None:
    assert Person("wangfang", "王芳", COUNTY, frozenset({W}), (MZ,)).actor == "wangfang (王芳)"
    assert Person("kiosk", "kiosk", COUNTY, frozenset({T})).actor == "kiosk"


@pytest.mark.parametrize(("login", "roles", "departments", "backup_for", "problem"), [
    ("", {W}, (MZ,), "", "login"),
    ("wang fang", {W}, (MZ,), "", "login"),
    ("wf", set(), (), "", "at least one role"),
    ("wf", {W}, (), "", "department"),
    ("wf", {C}, (), "", "department"),
    ("bk", {B}, (), "", "backup_for"),
    ("wf", {W}, (MZ,), "other", "only for a backup clerk"),
    ("kiosk", {T, W}, (MZ,), "", "no other role"),
])
def test_an_account_of_the_wrong_shape_is_refused(login: str, roles: set[Role], departments: tuple[str, ...],
                                                   backup_for: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_account(login, frozenset(roles), departments, backup_for)


def test_roles_are_given_by_name_or_label() -> None:
    assert parse_roles(["window_clerk,首席代表", "AB角"]) == {W, C, B}
    with pytest.raises(ValueError, match="roles are: window_clerk"):
        parse_roles(["mayor"])
