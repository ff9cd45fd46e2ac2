"""The console's session cookie and its CSRF field.

The session cookie holds the token ``Accounts.login`` gave (256 random bits; the store keeps
only its hash, with its expiry): HttpOnly (no script reads it), SameSite=Strict (no other site
sends it along), Secure when the console is served over HTTPS. Signing out deletes the token.

CSRF: every form a signed-in page shows carries ``csrf``, a hash of the session token under
its own label; a POST whose field does not match is refused and changes nothing. Only this
node can compute it (the token never leaves the cookie), it survives a node restart as the
session does, and SameSite=Strict is a second fence. The login form, before any session, is
fenced the same way with a random value in a short-lived cookie of its own (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SESSION_COOKIE = "govnet_session"
LOGIN_COOKIE = "govnet_login"  # the login form's own CSRF value
LANG_COOKIE = "govnet_lang"


def csrf_for(token: str) -> str:
    return hashlib.sha256(b"govnet-console-csrf\0" + token.encode()).hexdigest()


def csrf_ok(token: str, sent: str) -> bool:
    return bool(token) and hmac.compare_digest(csrf_for(token), sent)


def login_nonce() -> str:
    return secrets.token_urlsafe(24)


def same(expected: str, sent: str) -> bool:
    return bool(expected) and hmac.compare_digest(expected.encode(), sent.encode())


def safe_next(path: str) -> str:
    """A path on this console to go back to (never another site: no scheme, no '//')."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path
