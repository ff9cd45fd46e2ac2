"""People for the tests: accounts written into a node's store the way an operator writes the
first one (``govnet user add --data-dir``), and clients signed in as them.

Every node a test starts gets ``TESTER``: a comprehensive window (every department) with the
chief representative's signing power, supervision and ops — so tests written before accounts
act as one signed-in person. Its token is kept in the token file (``$GOVNET_TOKEN_FILE``, set
per test session by conftest.py), so every ``GovnetClient(address)`` and every ``govnet …``
command a test runs sends it. Tests of the roles themselves add narrower accounts.

The tester costs no argon2 work per node: its hash is computed once per session and written,
with a token for it, straight into the node's store through the store's own account functions
(what ``govnet login`` would have written there). Logging in for real, and every refusal, is
tested in tests/rpc/test_accounts.py.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from govnet.node.app.accounts import HASHER, TOKEN_HOURS, Accounts
from govnet.node.app.desk import DeskError, ErrorKind
from govnet.node.domain.clock import SystemClock
from govnet.node.domain.people import ALL_DEPARTMENTS, Role
from govnet.node.rpc.client import GovnetClient, save_token
from govnet.node.store import accounts as repo
from govnet.node.store.accounts import AccountRecord
from govnet.node.store.engine import Store
from govnet.node.store.unit import utc_text
from govnet.ops import processes

PASSWORD = "窗口密码-2026"
TESTER = "tester"
TESTER_NAME = "测试员"
TESTER_ACTOR = f"{TESTER} ({TESTER_NAME})"
TESTER_ROLES = (Role.WINDOW_CLERK, Role.CHIEF_REPRESENTATIVE, Role.SUPERVISOR, Role.OPS)


def add_account(data_dir: Path, login: str, roles: Sequence[Role], departments: Sequence[str] = (),
                backup_for: str = "", name: str = "", password: str = PASSWORD) -> None:
    """Write an account into the node's store (beside a running node, or before it starts)."""
    store = Store.open(data_dir)
    try:
        with store.reading() as s:  # a node started again on its data: nothing to hash
            if repo.find(s, login) is not None:
                return
        Accounts(store, SystemClock()).add(login, name or login, list(roles), password, departments, backup_for)
    except DeskError as exc:
        if exc.kind is not ErrorKind.CONFLICT:  # already there: a node started again on its data
            raise
    finally:
        store.close()


_HASH: list[str] = []  # the tester's argon2id hash, computed once per session


def add_tester(data_dir: Path) -> dict[str, str]:
    """The tester's account in the node's store (if it has none yet), and a fresh token for it
    (as the token file keeps it). Written before the node serves, or beside it."""
    if not _HASH:
        _HASH.append(HASHER.hash(PASSWORD))
    now = datetime.now(UTC)
    stamp = utc_text(now)
    token = secrets.token_urlsafe(32)
    store = Store.open(data_dir)
    try:
        with store.transaction() as s:
            repo.insert(s, AccountRecord(TESTER, TESTER_NAME, tuple(sorted(r.value for r in TESTER_ROLES)),
                                         (ALL_DEPARTMENTS,), "", False, False, _HASH[0], stamp, stamp))
            repo.add_token(s, hashlib.sha256(token.encode()).hexdigest(), TESTER, stamp,
                           utc_text(now + timedelta(hours=TOKEN_HOURS)))
    finally:
        store.close()
    return {"token": token, "login": TESTER}


def signed_in(address: str, login: str = TESTER, password: str = PASSWORD, keep: bool = False,
              timeout: float = 10.0) -> GovnetClient:
    """A client of ``address`` signed in as ``login`` (``keep``: its token becomes the one every
    other client and command of this test session sends to that address)."""
    client = GovnetClient(address, timeout=timeout, token="")
    done = client.login(login, password)
    if keep:
        save_token(address, {"token": done.token, "login": login, "node_id": done.node_id,
                             "expires_at": done.expires_at})
    return client


def sign_in_tester(data_dir: Path, address: str) -> None:
    """Give the node its tester account (if it has none yet) and keep the tester's token for ``address``."""
    save_token(address, add_tester(data_dir))


def spawn_node(data_dir: Path, *args: Any, **kwargs: Any) -> processes.NodeProcess:
    """``govnet.ops.processes.spawn_node``, then signed in as the tester (tests import this one)."""
    key = data_dir.resolve()
    if key not in _TOKENS:  # the same store again (a restart) keeps its tokens
        _TOKENS[key] = add_tester(data_dir)  # before the node serves: one writer at a time
    proc = processes.spawn_node(data_dir, *args, **kwargs)
    save_token(proc.address, _TOKENS[key])
    return proc


# The tester's token per data directory this session started: a node restarted on its store
# (a crash test's many kills) keeps its tokens, so the restart costs no login.
_TOKENS: dict[Path, dict[str, str]] = {}


def staff(node: Any, login: str, roles: Role | Sequence[Role], departments: Sequence[str] = (), name: str = "",
          backup_for: str = "") -> GovnetClient:
    """A client of a running node (anything with ``data_dir`` and ``address``) signed in as a new
    account with ``roles``; its events record ``login (name)``."""
    add_account(node.data_dir, login, [roles] if isinstance(roles, Role) else list(roles), departments,
                backup_for, name)
    return signed_in(node.address, login)


def start_in_process(loop: Any, data_dir: Path, clock: Any = None) -> Any:
    """``support.inprocess.start_in_process``, then signed in as the tester (tests import this one)."""
    from support.inprocess import start_in_process as start

    token = add_tester(data_dir)
    node = start(loop, data_dir, clock)
    save_token(node.address, token)
    return node
