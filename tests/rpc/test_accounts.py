"""People over real gRPC: login, tokens, roles refused with the role they need, AB角, the
applicant's own rating channel, and appeals decided above the rated node.

The rules themselves are tested row by row in tests/unit/test_people.py; these check the
contract: status codes, what is recorded, what the store keeps.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

import grpc
import pytest

from govnet.node.app.accounts import Accounts
from govnet.node.app.desk import DeskError
from govnet.node.domain.clock import ManualClock
from govnet.node.domain.people import Role
from govnet.node.rpc.client import ClientError, GovnetClient

from support.accounts import PASSWORD, TESTER, TESTER_ACTOR, add_account, signed_in, staff
from support.helpers import MORNING, govnet, item, store_of, store_snapshot, submit, wait_for

S = grpc.StatusCode
CODE = "SJ-0001"  # immediate, decided at the county
DEPT = item(CODE).department  # 市场监督管理局
OTHER = item("HB-0005").department  # 生态环境局


def refused(node, call, code: grpc.StatusCode, *fragments: str) -> str:
    before = store_snapshot(node.data_dir)
    with pytest.raises(ClientError) as info:
        call()
    text = str(info.value)
    assert info.value.code == code, f"{info.value.code.name}: {text}"
    assert all(f in text for f in fragments), text
    assert "\n" not in text and "Traceback" not in text
    assert store_snapshot(node.data_dir) == before, "a refused call changed the store"
    return text


def test_login_tokens_and_the_store_keeps_only_argon2_hashes(make_node) -> None:
    node, admin = make_node("371102", "county")
    admin.add_user("wangfang", roles=["window_clerk"], departments=[DEPT], name="王芳", password="王芳的密码-1234")
    with GovnetClient(node.address, token="") as c:
        for login, password in (("wangfang", "wrong-password"), ("nobody", "王芳的密码-1234")):
            with pytest.raises(ClientError) as info:
                c.login(login, password)
            assert info.value.code is S.UNAUTHENTICATED and "wrong login or password" in str(info.value)
        done = c.login("wangfang", "王芳的密码-1234")
        assert (done.account.login, done.node_id, list(done.account.departments)) == ("wangfang", "371102", [DEPT])
        assert c.whoami().name == "王芳"
        token = done.token

    # Never the password, nor the token: an argon2id hash and a SHA-256.
    raw = (node.data_dir / "govnet.db").read_bytes() + b"".join(
        p.read_bytes() for p in node.data_dir.glob("govnet.db-wal"))
    assert "王芳的密码-1234".encode() not in raw and token.encode() not in raw and PASSWORD.encode() not in raw
    assert b"$argon2id$v=19$m=19456,t=2,p=1$" in raw

    # Disabling revokes at once; resetting the password revokes every earlier token.
    admin.disable_user("wangfang")
    with GovnetClient(node.address, token=token) as c:
        refused(node, lambda: c.whoami(), S.UNAUTHENTICATED, "run 'govnet login' again")
        refused(node, lambda: GovnetClient(node.address, token="").login("wangfang", "王芳的密码-1234"),
                S.UNAUTHENTICATED)
    admin.enable_user("wangfang")
    again = signed_in(node.address, "wangfang", "王芳的密码-1234")
    admin.reset_password("wangfang", "新密码-5678-abcd")
    refused(node, lambda: again.whoami(), S.UNAUTHENTICATED)
    assert signed_in(node.address, "wangfang", "新密码-5678-abcd").whoami().login == "wangfang"

    # Administration is for ops; a clerk is told which role it needs.
    again.login("wangfang", "新密码-5678-abcd")
    refused(node, lambda: again.users(), S.PERMISSION_DENIED, "manage_users needs role 运维")
    refused(node, lambda: admin.add_user("x y", roles=["window_clerk"], departments=[DEPT], password="long-enough"),
            S.INVALID_ARGUMENT, "login")
    refused(node, lambda: admin.add_user("short", roles=["ops"], password="1234"), S.INVALID_ARGUMENT, "8 characters")
    assert [a.login for a in admin.users().accounts] == [TESTER, "wangfang"]


def test_tokens_expire_after_a_shift(tmp_path) -> None:
    from govnet.node.domain.people import ALL_DEPARTMENTS
    from govnet.ops.processes import init_node

    data_dir = init_node(tmp_path / "n", "371102", "county", "127.0.0.1:1")
    add_account(data_dir, "wf", [Role.WINDOW_CLERK], [ALL_DEPARTMENTS])
    clock = ManualClock(MORNING)
    with store_of(data_dir) as store:
        accounts = Accounts(store, clock)
        token = accounts.login("wf", PASSWORD).token
        assert accounts.person(token).login == "wf"
        clock.advance(timedelta(hours=8, seconds=1))
        with pytest.raises(DeskError, match="expired"):
            accounts.person(token)


def test_a_clerk_works_only_the_cases_of_their_department_and_the_chief_decides(make_node) -> None:
    node, admin = make_node("371102", "county")
    clerk = staff(node, "wangfang", Role.WINDOW_CLERK, [DEPT], name="王芳")
    other = staff(node, "liuyang", Role.WINDOW_CLERK, [OTHER], name="刘洋")
    chief = staff(node, "zhaoqiang", Role.CHIEF_REPRESENTATIVE, [DEPT], name="赵强")
    refused(node, lambda: submit(other, CODE), S.PERMISSION_DENIED, f"submit needs role 窗口人员 for {DEPT}")
    receipt = submit(clerk, CODE).case.receipt
    refused(node, lambda: other.act(receipt, "accept"), S.PERMISSION_DENIED,
            f"accept needs role 窗口人员 for {DEPT}", f"liuyang is 窗口人员 for {OTHER}")
    clerk.act(receipt, "accept")
    refused(node, lambda: clerk.act(receipt, "approve"), S.PERMISSION_DENIED, f"approve needs role 首席代表 for {DEPT}")
    # The free-text actor is ignored: the event records who signed in, whatever the request says.
    decided = chief.act(receipt, "approve", actor="首席代表")
    assert [(e.action, e.actor) for e in decided.events] == [
        ("submit", "wangfang (王芳)"), ("accept", "wangfang (王芳)"), ("approve", "zhaoqiang (赵强)")]
    assert decided.received_by == "wangfang (王芳)"  # 首问负责
    assert admin.get(receipt).received_by == "wangfang (王芳)"
    # Anyone with the receipt can follow it; nobody reads the applicant's data without a login.
    with GovnetClient(node.address, token="") as anonymous:
        assert anonymous.track(receipt).status == "approved"
        refused(node, lambda: anonymous.list(), S.UNAUTHENTICATED)


def test_a_backup_clerk_acts_only_while_the_clerk_is_absent(make_node) -> None:
    node, admin = make_node("371102", "county")
    staff(node, "wangfang", Role.WINDOW_CLERK, [DEPT], name="王芳")
    backup = staff(node, "lisi", Role.BACKUP_CLERK, name="李四", backup_for="wangfang")
    receipt = submit(admin, CODE).case.receipt
    refused(node, lambda: backup.act(receipt, "accept"), S.PERMISSION_DENIED,
            f"accept needs role 窗口人员 for {DEPT}", "only while wangfang is marked absent")
    assert admin.set_absent("wangfang").absent  # `govnet user absent wangfang`
    accepted = backup.act(receipt, "accept")
    assert accepted.events[-1].actor == "lisi (李四)"
    refused(node, lambda: backup.act(receipt, "approve"), S.PERMISSION_DENIED, "首席代表")  # a clerk's powers only
    admin.set_absent("wangfang", False)
    refused(node, lambda: backup.act(receipt, "reject", reason="材料不实"), S.PERMISSION_DENIED, "marked absent")


def test_ratings_come_only_from_the_applicants_channel(make_node) -> None:
    node, clerk = make_node("371102", "county")
    done = submit(clerk, CODE)
    receipt, code = done.case.receipt, done.rating_code
    assert len(code) == 8 and code.isdigit()
    for action in ("accept", "approve", "complete", "deliver"):
        clerk.act(receipt, action)
    # A clerk's login cannot rate, not even with the applicant's code.
    refused(node, lambda: clerk.evaluate(receipt, "very_satisfied"), S.PERMISSION_DENIED, "needs role 自助终端")
    refused(node, lambda: clerk.evaluate(receipt, "very_satisfied", rating_code=code), S.PERMISSION_DENIED,
            "cannot enter a rating")
    with GovnetClient(node.address, token="") as applicant:
        refused(node, lambda: applicant.evaluate(receipt, "satisfied"), S.UNAUTHENTICATED, "code printed on the receipt")
        wrong = "0" * 8 if code != "0" * 8 else "1" * 8
        with pytest.raises(ClientError) as info:
            applicant.evaluate(receipt, "satisfied", rating_code=wrong)
        assert info.value.code is S.PERMISSION_DENIED and "wrong rating code" in str(info.value)
        rated = applicant.evaluate(receipt, "satisfied", "很快", rating_code=code)
        assert rated.rating == "satisfied"
        refused(node, lambda: applicant.evaluate(receipt, "very_dissatisfied", rating_code=code),
                S.PERMISSION_DENIED, "already used")
    (event,) = [e for e in clerk.get(receipt).events if e.action == "evaluate"]
    assert event.actor == "applicant (rating code)"
    # The store keeps the code hashed only.
    raw = b"".join(p.read_bytes() for p in node.data_dir.glob("govnet.db*"))
    assert f"{receipt}:{code}".encode() not in raw and code.encode() not in raw.replace(receipt.encode(), b"")


def test_an_appeal_is_decided_by_the_supervisor_above_never_by_the_rated_node(make_node) -> None:
    fast = {"sync": {"flush_interval_s": 0.1, "digest_interval_s": 5.0}}
    city, city_client = make_node("371100", "city", **fast)
    county, county_client = make_node("371102", "county", parent=city.address, catalog=False, **fast)
    wait_for(lambda: bool(county_client.list_items().items), 20, lambda: "no catalog at the county")
    done = submit(county_client, CODE)
    receipt = done.case.receipt
    for action in ("accept", "approve", "complete", "deliver"):
        county_client.act(receipt, action)
    with GovnetClient(county.address, token="") as applicant:
        applicant.evaluate(receipt, "very_dissatisfied", "态度差", rating_code=done.rating_code)
    county_client.appeal(receipt, reason="申请人材料不全却给差评")
    # The county's own supervisor (the tester holds that role there) cannot judge its own rating.
    refused(county, lambda: county_client.decide_appeal(receipt, upheld=True, reason="自己说了算"),
            S.PERMISSION_DENIED, "decide_appeal needs role 监察员 at a node above 371102",
            "never decides about its own node")
    # The city's supervisor can: it holds the case's summary; the decision goes down to the owner.
    supervisor = staff(city, "jiancha", Role.SUPERVISOR, name="市监察室")
    answers = []

    def decided() -> bool:  # NOT_FOUND (nothing written) until the case's summary reaches the city
        try:
            answers.append(supervisor.decide_appeal(receipt, upheld=True, reason="查实恶意差评"))
        except ClientError as exc:
            assert exc.code is S.NOT_FOUND, str(exc)
            return False
        return True

    wait_for(decided, 20, lambda: "the case's summary never reached the city")
    assert answers[0].forwarded_to == "371102"
    wait_for(lambda: county_client.get(receipt).events[-1].action == "appeal_decided", 20,
             lambda: str([e.action for e in county_client.get(receipt).events]))
    last = county_client.get(receipt).events[-1]
    assert last.actor == "jiancha (市监察室)@371100"
    assert json.loads(last.detail_json) == {"upheld": True, "reason": "查实恶意差评"}


def test_cli_first_account_login_and_user_admin(make_node, tmp_path) -> None:
    node, _ = make_node("371102", "county")
    env_file = tmp_path / "cli-tokens.json"

    env = {"GOVNET_TOKEN_FILE": str(env_file), "GOVNET_PASSWORD": "运维密码-abcd-1234"}
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        # The first account: written into the store on the node's machine, no network.
        out = govnet("user", "add", "admin", "--name", "运维-周", "--role", "ops", "--data-dir", str(node.data_dir))
        assert out.returncode == 0 and "added to the store" in out.stdout, out.stderr
        out = govnet("login", "--user", "admin", "--node", node.address)
        assert out.returncode == 0 and "as admin (运维-周)" in out.stdout, out.stderr
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"
        out = govnet("user", "add", "wangfang", "--name", "王芳", "--role", "窗口人员", "--department", DEPT,
                     "--node", node.address)
        assert out.returncode == 0, out.stderr
        out = govnet("user", "list", "--node", node.address, "--json")
        assert out.returncode == 0, out.stderr
        assert [a["login"] for a in json.loads(out.stdout)["accounts"]] == ["admin", TESTER, "wangfang"]
        assert "argon2" not in out.stdout and "password" not in out.stdout
        with GovnetClient(node.address) as admin:  # the token 'govnet login' kept for this address
            assert admin.whoami().login == "admin"
            refused(node, lambda: admin.list(), S.PERMISSION_DENIED, "read_cases needs role 窗口人员")  # ops reads no cases
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert TESTER_ACTOR  # the session's own token file is untouched by this test
