"""Who is calling: the one place that turns a call's metadata into a ``Person``.

A client sends its token as ``authorization: Bearer <token>`` (``govnet login`` gets one).
Every servicer method that acts for a person asks ``Auth`` first:

- ``person(context)``: the caller, or UNAUTHENTICATED (no token, or one that is unknown,
  expired or revoked) — nothing has been read or written yet;
- ``require(context, op, facts)``: the caller, if their roles allow ``op``
  (``node.domain.people``), else PERMISSION_DENIED naming the role it needs. Checks that need
  the case (its department) are made by the desk inside the unit of work, with the person.

Errors are the desk's ``DeskError`` (kinds UNAUTHENTICATED and DENIED) so the servicers' ``rpc``
wrapper maps them like every other refusal. Tokens work the same over plaintext and TLS
(node-to-node authentication is the certificates' business, not this module's). Public
calls (tracking a receipt, reading the catalog, health) ask nothing.
"""

from __future__ import annotations

import asyncio

import grpc

from govnet.node.app.accounts import Accounts
from govnet.node.app.desk import DeskError, ErrorKind, check_allowed
from govnet.node.domain.people import NO_FACTS, Facts, Person

HEADER = "authorization"
SCHEME = "bearer "


def bearer(context: grpc.aio.ServicerContext) -> str:
    """The token the call carries ("" if none)."""
    for key, value in context.invocation_metadata() or ():
        if key.lower() == HEADER and isinstance(value, str) and value.lower().startswith(SCHEME):
            return value[len(SCHEME):].strip()
    return ""


class Auth:
    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    async def optional(self, context: grpc.aio.ServicerContext) -> Person | None:
        """The caller if the call carries a token (a bad token is still refused), else None."""
        token = bearer(context)
        if not token:
            return None
        return self.accounts.cached(token) or await asyncio.to_thread(self.accounts.person, token)

    async def person(self, context: grpc.aio.ServicerContext) -> Person:
        person = await self.optional(context)
        if person is None:
            raise DeskError(ErrorKind.UNAUTHENTICATED, f"this call needs a login at node {self.accounts.here}: run "
                            "'govnet login --node ADDRESS' (the token goes as 'authorization: Bearer TOKEN')")
        return person

    async def require(self, context: grpc.aio.ServicerContext, op: str, facts: Facts = NO_FACTS) -> Person:
        person = await self.person(context)
        check_allowed(person, op, facts)
        return person
