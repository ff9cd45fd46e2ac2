"""People at this node: accounts, login, tokens, and the applicant's one-time rating code.

Accounts belong to one node and stay there (they never travel with sync). Who may do what is
``node.domain.people``; this module keeps the accounts and tells who is calling.

Passwords: argon2id (``argon2-cffi``) at OWASP's minimum cost (19 MiB, 2 passes, 1 lane:
about 50 ms here), so a stolen store file does not give the passwords away; only the hash is
stored (each hash carries its own parameters, so raising the cost later keeps old hashes valid).

Tokens: ``login`` gives a random 256-bit token, valid ``token_hours`` (8 by default: a window
shift). The store keeps only its SHA-256 with the expiry; disabling an account or resetting its
password deletes its tokens. A token resolves to a ``Person`` through a small cache (at most
``CACHE_S`` seconds old, emptied at once by any account change made through this object), so
a call costs no store read on the hot path. A change made beside a running node (the local
``govnet user … --data-dir``) takes effect within ``CACHE_S``.

The first account. A new node has none; ``govnet user add --data-dir DIR`` run on the node's
machine writes the first (ops) account straight into the store (whoever can write the data
directory runs the node anyway): no network, no token. After that, accounts are managed over
the API by an ops account (``govnet login``, then ``govnet user add|disable|reset|list``).

Rating codes: each new case gets an 8-digit code, printed on the receipt and shown once (in the
answer to Submit; a replayed Submit writes nothing and shows none). The applicant enters it with
the rating: it works once, and five wrong tries lock it (a self-service terminal still works).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from govnet.node.app.desk import DeskError, ErrorKind, checked, checked_list
from govnet.node.domain.clock import Clock
from govnet.node.domain.people import Person, Role, StandIn, check_account
from govnet.node.domain.receipt import Receipt, ReceiptError
from govnet.node.store import accounts as repo
from govnet.node.store.accounts import AccountRecord
from govnet.node.store.engine import Store
from govnet.node.store.unit import Unit, utc_text

TOKEN_HOURS = 8
CACHE_S = 10.0
CACHE_MAX = 10_000
MIN_PASSWORD = 8
CODE_DIGITS = 8
CODE_TRIES = 5
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Checked when the login is unknown, so an unknown login takes as long as a wrong password.
_DUMMY = HASHER.hash("not a password of anyone")


@dataclass(frozen=True)
class LoggedIn:
    token: str
    expires_at: datetime
    person: Person


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise DeskError(ErrorKind.INVALID, f"the password needs at least {MIN_PASSWORD} characters", "password")


class Accounts:
    def __init__(self, store: Store, clock: Clock, token_hours: float = TOKEN_HOURS) -> None:
        self.store = store
        self.clock = clock
        self.token_life = timedelta(hours=token_hours)
        self._cache: dict[str, tuple[float, Person, datetime]] = {}  # token hash -> (cached at, person, expiry)
        self._lock = Lock()

    @property
    def here(self) -> str:
        return self.store.meta.node_id

    # --- administration (blocking: run in a worker thread) ---

    def add(self, login: str, name: str, roles: Sequence[Role], password: str, departments: Sequence[str] = (),
            backup_for: str = "") -> AccountRecord:
        m = "AddUserRequest"
        login = checked(m, "login", login, what="the account's login, like wangfang")
        name = checked(m, "name", name) or login
        depts = tuple(dict.fromkeys(d for d in checked_list(m, "departments", tuple(departments)) if d))
        backup_for = checked(m, "backup_for", backup_for)
        password = checked(m, "password", password)
        try:
            check_account(login, frozenset(roles), depts, backup_for.strip(), name)
        except ValueError as exc:
            raise DeskError(ErrorKind.INVALID, str(exc)) from None
        check_password(password)
        now = utc_text(self.clock.now())
        record = AccountRecord(login, name, tuple(sorted(r.value for r in roles)), depts, backup_for.strip(),
                               False, False, HASHER.hash(password), now, now)
        with self.store.transaction() as s:
            if not repo.insert(s, record):
                raise DeskError(ErrorKind.CONFLICT, f"account {login} already exists at node {self.here}", "login")
            if record.backup_for and repo.find(s, record.backup_for) is None:
                raise DeskError(ErrorKind.NOT_FOUND, f"no account {record.backup_for} to stand in for", "backup_for")
        self._forget()
        return record

    def disable(self, login: str) -> AccountRecord:
        """No more logins; its tokens stop working at once."""
        return self._change(checked("LoginName", "login", login), disabled=True)

    def enable(self, login: str) -> AccountRecord:
        return self._change(checked("LoginName", "login", login), disabled=False)

    def reset(self, login: str, password: str) -> AccountRecord:
        """A new password; every token given out before stops working."""
        login = checked("ResetPasswordRequest", "login", login)
        password = checked("ResetPasswordRequest", "password", password)
        check_password(password)
        return self._change(login, password_hash=HASHER.hash(password))

    def set_absent(self, login: str, absent: bool) -> AccountRecord:
        """Mark a clerk absent (its backup, AB角, acts for it) or back."""
        return self._change(checked("SetAbsentRequest", "login", login), absent=absent)

    def _change(self, login: str, **changes: object) -> AccountRecord:
        with self.store.transaction() as s:
            if not repo.update(s, login.strip(), utc_text(self.clock.now()), **changes):  # type: ignore[arg-type]
                raise DeskError(ErrorKind.NOT_FOUND, f"no account {login.strip()} at node {self.here}", "login")
            if "password_hash" in changes or changes.get("disabled"):
                repo.revoke_tokens(s, login.strip())
            found = repo.find(s, login.strip())
        self._forget()
        assert found is not None
        return found

    def get(self, login: str) -> AccountRecord:
        with self.store.reading() as s:
            found = repo.find(s, login.strip())
        if found is None:
            raise DeskError(ErrorKind.NOT_FOUND, f"no account {login.strip()} at node {self.here}", "login")
        return found

    def list(self) -> list[AccountRecord]:
        with self.store.reading() as s:
            return repo.all_accounts(s)

    def count(self) -> int:
        with self.store.reading() as s:
            return repo.count(s)

    # --- who is calling ---

    def login(self, login: str, password: str) -> LoggedIn:
        """A token for ``login`` if the password is right and the account is enabled; the refusal
        does not say which of the two was wrong."""
        login = checked("LoginRequest", "login", login, what="your login")
        password = checked("LoginRequest", "password", password, what="your password")
        with self.store.reading() as s:
            account = repo.find(s, login)
        try:
            HASHER.verify(account.password_hash if account else _DUMMY, password)
            ok = account is not None and not account.disabled
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or account is None:
            raise DeskError(ErrorKind.UNAUTHENTICATED, f"login refused at node {self.here}: wrong login or password, "
                            "or the account is disabled")
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        expires = now + self.token_life
        with self.store.transaction() as s:
            repo.drop_expired(s, utc_text(now))
            repo.add_token(s, _sha(token), account.login, utc_text(now), utc_text(expires))
            person = self._person(s, account)
        return LoggedIn(token, expires, person)

    def logout(self, token: str) -> None:
        with self.store.transaction() as s:
            repo.drop_token(s, _sha(token))
        self._forget()

    def cached(self, token: str) -> Person | None:
        """Who holds ``token`` if the cache knows (no store read: safe on the event loop)."""
        with self._lock:
            hit = self._cache.get(_sha(token))
        if hit is not None and time.monotonic() - hit[0] < CACHE_S and hit[2] > self.clock.now():
            return hit[1]
        return None

    def person(self, token: str) -> Person:
        """Who holds ``token`` (``DeskError`` UNAUTHENTICATED when it is unknown, expired or revoked)."""
        hit = self.cached(token)
        if hit is not None:
            return hit
        key = _sha(token)
        now = self.clock.now()
        with self.store.reading() as s:
            login = repo.token_owner(s, key, utc_text(now))
            account = repo.find(s, login) if login else None
            person = self._person(s, account) if account is not None and not account.disabled else None
            expiry = repo.token_expiry(s, key) or utc_text(now)
        if person is None:
            raise DeskError(ErrorKind.UNAUTHENTICATED, f"the token is not valid at node {self.here} (expired, "
                            "revoked or from another node): run 'govnet login' again")
        with self._lock:
            if len(self._cache) >= CACHE_MAX:  # entries older than CACHE_S are useless anyway
                self._cache.clear()
            self._cache[key] = (time.monotonic(), person, datetime.fromisoformat(expiry))
        return person

    def _person(self, s: Unit, account: AccountRecord) -> Person:
        stands_in = None
        if account.backup_for:
            other = repo.find(s, account.backup_for)
            if other is not None and not other.disabled:
                stands_in = StandIn(other.login, other.name, frozenset(Role(r) for r in other.roles),
                                    other.departments, other.absent)
        return Person(account.login, account.name, self.here, frozenset(Role(r) for r in account.roles),
                      account.departments, stands_in)

    def _forget(self) -> None:
        with self._lock:
            self._cache.clear()

    # --- the applicant's one-time rating code ---

    def issue_rating_code(self, s: Unit, receipt: str) -> str:
        """A fresh code for ``receipt`` within the caller's unit of work ("" once the case was rated by code)."""
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        fresh = repo.set_rating_code(s, receipt, _sha(f"{receipt}:{code}"), utc_text(self.clock.now()))
        return code if fresh else ""

    def check_rating_code(self, receipt: str, code: str) -> Callable[[Unit], None]:
        """Check the code now (a wrong one counts as a try, committed); returns the step that
        uses it up, to run inside the rating's own unit of work (so a refused rating keeps it)."""
        try:
            receipt = str(Receipt.parse(receipt))
        except ReceiptError as exc:
            raise DeskError(ErrorKind.INVALID, str(exc), "receipt") from None
        with self.store.transaction() as s:
            held = repo.rating_code(s, receipt)
            if held is None:
                raise DeskError(ErrorKind.DENIED, f"case {receipt} has no rating code here: rate where you applied",
                                "rating_code")
            if held.used_at:
                raise DeskError(ErrorKind.DENIED, f"the rating code of case {receipt} was already used", "rating_code")
            if held.failures >= CODE_TRIES:
                raise DeskError(ErrorKind.DENIED, f"the rating code of case {receipt} is locked after {CODE_TRIES} "
                                "wrong tries: rate at a self-service terminal", "rating_code")
            good = secrets.compare_digest(held.code_hash, _sha(f"{receipt}:{code.strip()}"))
            if not good:
                repo.rating_code_failed(s, receipt)
        if not good:
            raise DeskError(ErrorKind.DENIED, f"wrong rating code for case {receipt}", "rating_code")

        def use(s: Unit) -> None:
            if not repo.rating_code_used(s, receipt, utc_text(self.clock.now())):
                raise DeskError(ErrorKind.DENIED, f"the rating code of case {receipt} was already used", "rating_code")

        return use

