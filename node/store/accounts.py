"""Accounts, login tokens and rating codes in the store (functions take the caller's
session and never commit).

What is kept is never a secret itself: a password as its argon2id hash (computed by
``node.app.accounts``, checked there), a token and a rating code as their SHA-256 (each is
long and random, so a fast hash is enough: nothing to guess from it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from govnet.node.store.models import RatingCode, SessionToken
from govnet.node.store.unit import Unit, execute, query


@dataclass(frozen=True)
class AccountRecord:
    login: str
    name: str
    roles: tuple[str, ...]
    departments: tuple[str, ...]
    backup_for: str
    absent: bool
    disabled: bool
    password_hash: str
    created_at: str
    changed_at: str


_COLUMNS = "login, name, roles, departments, backup_for, absent, disabled, password_hash, created_at, changed_at"


def _record(row: tuple) -> AccountRecord:
    login, name, roles, departments, backup_for, absent, disabled, password_hash, created, changed = row
    return AccountRecord(login, name, tuple(json.loads(roles)), tuple(json.loads(departments)), backup_for,
                         bool(absent), bool(disabled), password_hash, created, changed)


def find(s: Unit, login: str) -> AccountRecord | None:
    rows = query(s, f"SELECT {_COLUMNS} FROM account WHERE login = ?", (login,))
    return _record(rows[0]) if rows else None


def all_accounts(s: Unit) -> list[AccountRecord]:
    return [_record(r) for r in query(s, f"SELECT {_COLUMNS} FROM account ORDER BY login")]


def count(s: Unit) -> int:
    return int(query(s, "SELECT count(*) FROM account")[0][0])


def insert(s: Unit, a: AccountRecord) -> bool:
    """Add the account; False if the login is taken. It writes before it reads, so a second
    process beside a running node (``govnet user add --data-dir``) waits for the write lock
    instead of failing on a stale read snapshot."""
    return bool(execute(
        s, f"INSERT INTO account ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (login) DO NOTHING",
        (a.login, a.name, json.dumps(list(a.roles)), json.dumps(list(a.departments), ensure_ascii=False), a.backup_for,
         a.absent, a.disabled, a.password_hash, a.created_at, a.changed_at)))


def update(s: Unit, login: str, changed_at: str, *, password_hash: str | None = None, disabled: bool | None = None,
           absent: bool | None = None) -> bool:
    """Change the account (a write first, as ``insert``); False if there is no such login."""
    changes: dict[str, object] = {"changed_at": changed_at}
    if password_hash is not None:
        changes["password_hash"] = password_hash
    if disabled is not None:
        changes["disabled"] = disabled
    if absent is not None:
        changes["absent"] = absent
    sets = ", ".join(f"{k} = ?" for k in changes)
    return bool(execute(s, f"UPDATE account SET {sets} WHERE login = ?", (*changes.values(), login)))


def add_token(s: Unit, token_hash: str, login: str, issued_at: str, expires_at: str) -> None:
    s.add(SessionToken(token_hash=token_hash, login=login, issued_at=issued_at, expires_at=expires_at))
    s.flush()


def token_owner(s: Unit, token_hash: str, now: str) -> str | None:
    """The login a live token belongs to (None: unknown, expired or revoked)."""
    rows = query(s, "SELECT login FROM session_token WHERE token_hash = ? AND expires_at > ?", (token_hash, now))
    return str(rows[0][0]) if rows else None


def token_expiry(s: Unit, token_hash: str) -> str | None:
    rows = query(s, "SELECT expires_at FROM session_token WHERE token_hash = ?", (token_hash,))
    return str(rows[0][0]) if rows else None


def drop_token(s: Unit, token_hash: str) -> int:
    return execute(s, "DELETE FROM session_token WHERE token_hash = ?", (token_hash,))


def revoke_tokens(s: Unit, login: str) -> int:
    return execute(s, "DELETE FROM session_token WHERE login = ?", (login,))


def drop_expired(s: Unit, now: str) -> int:
    return execute(s, "DELETE FROM session_token WHERE expires_at <= ?", (now,))


def set_rating_code(s: Unit, receipt: str, code_hash: str, issued_at: str) -> bool:
    """Keep a new code for ``receipt`` (replacing one not used yet); False once one was used."""
    if query(s, "SELECT 1 FROM rating_code WHERE receipt = ? AND used_at IS NOT NULL", (receipt,)):
        return False
    execute(s, "INSERT INTO rating_code (receipt, code_hash, issued_at, used_at, failures) VALUES (?, ?, ?, NULL, 0) "
               "ON CONFLICT (receipt) DO UPDATE SET code_hash = excluded.code_hash, issued_at = excluded.issued_at, "
               "failures = 0", (receipt, code_hash, issued_at))
    return True


def rating_code(s: Unit, receipt: str) -> RatingCode | None:
    row = s.get(RatingCode, receipt, populate_existing=True)
    if row is not None:
        s.expunge(row)
    return row


def rating_code_failed(s: Unit, receipt: str) -> None:
    execute(s, "UPDATE rating_code SET failures = failures + 1 WHERE receipt = ?", (receipt,))


def rating_code_used(s: Unit, receipt: str, used_at: str) -> bool:
    """Mark the code used; False if it already was (two ratings racing: only one wins)."""
    return bool(execute(s, "UPDATE rating_code SET used_at = ? WHERE receipt = ? AND used_at IS NULL",
                        (used_at, receipt)))
