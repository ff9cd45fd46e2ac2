"""gRPC adapter for accounts: login, who am I, and account administration (ops).

Login needs no token; every other call does (``node.rpc.auth``). Administration is for ops
accounts; marking a clerk absent (so its AB角 acts for it) also for a chief representative.
Passwords and tokens are never logged.
"""

from __future__ import annotations

import asyncio

import grpc

from govnet.node.app.accounts import Accounts
from govnet.node.app.desk import DeskError, ErrorKind, check_allowed, checked_list
from govnet.node.domain.people import Op, Person, Role, covers, parse_roles
from govnet.node.rpc.auth import Auth, bearer
from govnet.node.rpc.cases import rpc
from govnet.node.store.accounts import AccountRecord
from govnet.v1 import accounts_pb2, accounts_pb2_grpc

Ctx = grpc.aio.ServicerContext


def account_to_proto(a: AccountRecord) -> accounts_pb2.Account:
    return accounts_pb2.Account(login=a.login, name=a.name, roles=list(a.roles), departments=list(a.departments),
                                backup_for=a.backup_for, absent=a.absent, disabled=a.disabled,
                                created_at=a.created_at, changed_at=a.changed_at)


def person_to_proto(p: Person) -> accounts_pb2.Account:
    return accounts_pb2.Account(login=p.login, name=p.name, roles=sorted(r.value for r in p.roles),
                                departments=list(p.departments),
                                backup_for=p.stands_in.login if p.stands_in else "",
                                absent=False)


class AccountServicer(accounts_pb2_grpc.AccountServiceServicer):
    def __init__(self, accounts: Accounts, auth: Auth) -> None:
        self.accounts = accounts
        self.auth = auth

    @rpc
    async def Login(self, request: accounts_pb2.LoginRequest, context: Ctx) -> accounts_pb2.LoginResponse:
        if not request.login.strip() or not request.password:
            raise DeskError(ErrorKind.INVALID, "login and password are required")
        done = await asyncio.to_thread(self.accounts.login, request.login, request.password)
        return accounts_pb2.LoginResponse(token=done.token, expires_at=done.expires_at.isoformat(),
                                          account=person_to_proto(done.person), node_id=self.accounts.here)

    @rpc
    async def Logout(self, request: accounts_pb2.WhoAmIRequest, context: Ctx) -> accounts_pb2.Account:
        person = await self.auth.person(context)
        await asyncio.to_thread(self.accounts.logout, bearer(context))
        return person_to_proto(person)

    @rpc
    async def WhoAmI(self, request: accounts_pb2.WhoAmIRequest, context: Ctx) -> accounts_pb2.Account:
        return person_to_proto(await self.auth.person(context))

    @rpc
    async def ListUsers(self, request: accounts_pb2.ListUsersRequest, context: Ctx) -> accounts_pb2.ListUsersResponse:
        await self.auth.require(context, Op.MANAGE_USERS)
        found = await asyncio.to_thread(self.accounts.list)
        return accounts_pb2.ListUsersResponse(accounts=[account_to_proto(a) for a in found])

    @rpc
    async def AddUser(self, request: accounts_pb2.AddUserRequest, context: Ctx) -> accounts_pb2.Account:
        await self.auth.require(context, Op.MANAGE_USERS)
        try:
            roles = parse_roles(checked_list("AddUserRequest", "roles", tuple(request.roles)))
        except ValueError as exc:
            raise DeskError(ErrorKind.INVALID, str(exc), "roles") from None
        added = await asyncio.to_thread(self.accounts.add, request.login, request.name, sorted(roles),
                                        request.password, tuple(request.departments), request.backup_for)
        return account_to_proto(added)

    @rpc
    async def DisableUser(self, request: accounts_pb2.LoginName, context: Ctx) -> accounts_pb2.Account:
        person = await self.auth.require(context, Op.MANAGE_USERS)
        if request.login.strip() == person.login:
            raise DeskError(ErrorKind.PRECONDITION, "an account cannot disable itself (another ops account can)")
        return account_to_proto(await asyncio.to_thread(self.accounts.disable, request.login))

    @rpc
    async def EnableUser(self, request: accounts_pb2.LoginName, context: Ctx) -> accounts_pb2.Account:
        await self.auth.require(context, Op.MANAGE_USERS)
        return account_to_proto(await asyncio.to_thread(self.accounts.enable, request.login))

    @rpc
    async def ResetPassword(self, request: accounts_pb2.ResetPasswordRequest, context: Ctx) -> accounts_pb2.Account:
        await self.auth.require(context, Op.MANAGE_USERS)
        return account_to_proto(await asyncio.to_thread(self.accounts.reset, request.login, request.password))

    @rpc
    async def SetAbsent(self, request: accounts_pb2.SetAbsentRequest, context: Ctx) -> accounts_pb2.Account:
        person = await self.auth.person(context)
        if Role.OPS not in person.roles:
            # A chief representative marks the clerks of its own departments (its window's AB角 rota).
            target = await asyncio.to_thread(self.accounts.get, request.login)
            mine = Role.CHIEF_REPRESENTATIVE in person.roles and target.departments and all(
                covers(person.departments, d) for d in target.departments)
            if not mine:
                check_allowed(person, Op.MANAGE_USERS)
        return account_to_proto(await asyncio.to_thread(self.accounts.set_absent, request.login, request.absent))
