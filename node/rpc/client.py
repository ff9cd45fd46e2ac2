"""A typed client for a govnet node (blocking; the CLI and scripts use it).

Every call has a deadline (``timeout`` seconds, default 10) so a dead or unreachable
node fails the call instead of hanging it. Errors arrive as ``ClientError`` carrying
the gRPC status code, the node's one-line message and, when the node named the request
field at fault (a ``google.rpc.BadRequest`` in the status details), its field violations.

Every call carries the caller's token (``authorization: Bearer …``) when there is one: the
``token`` given, else ``$GOVNET_TOKEN``, else the one ``govnet login`` saved for this node's
address in the token file (``$GOVNET_TOKEN_FILE``, default ``~/.config/govnet/tokens.json``,
mode 0600). ``login`` gets a token and uses it from then on.

Nodes require mutual TLS: the client presents a client certificate from a folder holding
``client.crt``, ``client.key`` and the city's root ``ca.crt`` (``govnet pki client`` makes
one) — the ``certs`` argument, else the folder ``$GOVNET_CERTS`` names (what ``govnet --certs``
sets). Without either it speaks plaintext, which only a node configured with
``tls.plaintext = true`` accepts. The node's certificate is checked against the root and
must carry the name every node certificate has (``node.govnet``).

A busy node (a rate limit, ``node.rpc.ratelimit``, or a parent's admission bound) answers
RESOURCE_EXHAUSTED with a retry hint (``retry-after-ms`` trailing metadata, or a
``google.rpc.RetryInfo`` in the status details). Such a call was refused before any work
was done, so the client waits the hint and tries once more when the hint is short (at
most ``MAX_RETRY_WAIT_S`` and the call's timeout); if the node is still busy, the error
reads "the node is busy; retry in 1.2 s". RESOURCE_EXHAUSTED without a hint (a message
over a size limit) is not retried.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from govnet.node.domain.catalog import Catalog
from govnet.node.rpc.convert import item_to_proto
from govnet.sync.transport.grpc import RETRY_AFTER_KEY
from govnet.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    cases_pb2,
    cases_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    stats_pb2,
    stats_pb2_grpc,
    supervision_pb2_grpc,
    sync_pb2,
    sync_pb2_grpc,
)
from govnet.v1 import supervision_pb2 as sv

DEFAULT_TIMEOUT = 10.0
CERTS_ENV = "GOVNET_CERTS"
ANY_NODE = "node.govnet"  # the name every node certificate carries (node.domain.certificates)
MAX_RETRY_WAIT_S = 5.0  # a longer hint is the person's to wait out, not the CLI's
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ("grpc.max_send_message_length", 8 * 1024 * 1024),
]

T = TypeVar("T")


def token_file() -> Path:
    """Where ``govnet login`` keeps tokens, one per node address."""
    configured = os.environ.get("GOVNET_TOKEN_FILE", "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CONFIG_HOME", "~/.config")).expanduser() / "govnet" / "tokens.json"


def _saved() -> dict[str, Any]:
    path = token_file()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def saved_token(address: str) -> str:
    entry = _saved().get(address)
    return str(entry.get("token", "")) if isinstance(entry, dict) else ""


def save_token(address: str, entry: dict[str, str] | None) -> Path:
    """Keep (or with None, forget) the token for ``address``; the file is created readable by its owner only."""
    path = token_file()
    data = _saved()
    if entry is None:
        data.pop(address, None)
    else:
        data[address] = entry
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, ensure_ascii=False, indent=1)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


class ClientError(Exception):
    """A call the node refused or could not answer; ``str()`` is the node's one line."""

    def __init__(self, code: grpc.StatusCode, message: str,
                 violations: Sequence[tuple[str, str]] = (), retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.violations = tuple(violations)  # (field path, description) from the status details
        self.retry_after_s = retry_after_s  # a busy node's hint: the call may be sent again after it

    @property
    def field(self) -> str:
        """The request field the refusal is about ("" when the node named none)."""
        return self.violations[0][0] if self.violations else ""

    def line(self) -> str:
        """The one line a person reads: the field first, when the message does not already name it."""
        message = str(self)
        field = self.field
        if field and not message.startswith(field) and f"{field}:" not in message:
            return f"{field}: {message}"
        return message

    @classmethod
    def from_rpc(cls, exc: grpc.RpcError, address: str) -> ClientError:
        code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = (exc.details() if isinstance(exc, grpc.Call) else "") or ""
        if code is grpc.StatusCode.UNAVAILABLE:
            return cls(code, f"node at {address} is not reachable: is it running, and does it accept the client "
                             f"certificate (--certs / ${CERTS_ENV})? ({details})")
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return cls(code, f"node at {address} did not answer in time")
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            hint = retry_hint(exc)
            if hint is not None:
                return cls(code, f"the node is busy; retry in {math.ceil(hint * 10) / 10:.1f} s", retry_after_s=hint)
        return cls(code, details or code.name, field_violations(exc))


def retry_hint(exc: grpc.RpcError) -> float | None:
    """The seconds a busy node asks a refused call to wait: its ``retry-after-ms`` trailer, else the
    ``google.rpc.RetryInfo`` in its status details; None when it gave no hint."""
    if not isinstance(exc, grpc.Call):
        return None
    for key, value in exc.trailing_metadata() or ():
        if key == RETRY_AFTER_KEY:
            try:
                return max(0.0, int(value) / 1000)
            except (TypeError, ValueError):
                break
    try:
        status = rpc_status.from_call(exc)
    except (ValueError, DecodeError):
        return None
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return max(0.0, info.retry_delay.ToTimedelta().total_seconds())
    return None


def field_violations(exc: grpc.RpcError) -> list[tuple[str, str]]:
    """The ``google.rpc.BadRequest`` field violations in a failed call's status details."""
    if not isinstance(exc, grpc.Call):
        return []
    try:
        status = rpc_status.from_call(exc)
    except (ValueError, DecodeError):  # details that do not match the status: ignore them, keep the message
        return []
    found: list[tuple[str, str]] = []
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found


def client_credentials(certs: Path) -> grpc.ChannelCredentials:
    """The channel credentials of a client certificate folder (``ClientError`` if incomplete)."""
    try:
        return grpc.ssl_channel_credentials(root_certificates=(certs / "ca.crt").read_bytes(),
                                            private_key=(certs / "client.key").read_bytes(),
                                            certificate_chain=(certs / "client.crt").read_bytes())
    except OSError as exc:
        raise ClientError(grpc.StatusCode.FAILED_PRECONDITION,
                          f"{certs}: no client certificate here ({exc.strerror}: {exc.filename}); make one with "
                          "'govnet pki client NAME --ca CA_DIR --out DIR'") from None


def secure_channel(address: str, certs: Path | None, options: Sequence[tuple[str, Any]] = CHANNEL_OPTIONS) -> grpc.Channel:
    """A blocking channel to a node: mutual TLS with the client certificate in ``certs`` (or
    ``$GOVNET_CERTS``), plaintext when neither is given."""
    if certs is None and os.environ.get(CERTS_ENV):
        certs = Path(os.environ[CERTS_ENV])
    if certs is None:
        return grpc.insecure_channel(address, options=list(options))
    return grpc.secure_channel(address, client_credentials(certs),
                               options=[*options, ("grpc.ssl_target_name_override", ANY_NODE)])


def aio_channel(address: str, certs: Path | None, options: Sequence[tuple[str, Any]] = CHANNEL_OPTIONS) -> grpc.aio.Channel:
    """``secure_channel`` for asyncio callers (the benchmarks): mutual TLS with ``certs``, else plaintext."""
    if certs is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    return grpc.aio.secure_channel(address, client_credentials(certs),
                                   options=[*options, ("grpc.ssl_target_name_override", ANY_NODE)])


class GovnetClient:
    def __init__(self, address: str, timeout: float = DEFAULT_TIMEOUT, token: str | None = None,
                 certs: Path | None = None, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.address = address
        self.timeout = timeout
        if token is None:
            token = os.environ.get("GOVNET_TOKEN", "").strip() or saved_token(address)
        self.token = token
        self.sleep = sleep  # waits out a busy node's hint (injectable, so tests need not wait)
        self._channel = secure_channel(address, certs)
        self._cases = cases_pb2_grpc.CaseServiceStub(self._channel)
        self._catalog = catalog_pb2_grpc.CatalogServiceStub(self._channel)
        self._sync = sync_pb2_grpc.SyncServiceStub(self._channel)
        self._supervision = supervision_pb2_grpc.SupervisionServiceStub(self._channel)
        self._stats = stats_pb2_grpc.StatsServiceStub(self._channel)
        self._accounts = accounts_pb2_grpc.AccountServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GovnetClient:
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None) -> None:
        self.close()

    def _call(self, method: Callable[..., T], request: Message) -> T:
        metadata = (("authorization", f"Bearer {self.token}"),) if self.token else None
        for attempt in (1, 2):
            try:
                return method(request, timeout=self.timeout, metadata=metadata)
            except grpc.RpcError as exc:
                error = ClientError.from_rpc(exc, self.address)
            wait = error.retry_after_s
            if attempt == 2 or wait is None or wait > min(MAX_RETRY_WAIT_S, self.timeout):
                raise error
            self.sleep(wait)  # refused before any work was done: the same call again is safe
        raise AssertionError("unreachable")

    # --- people ---

    def login(self, login: str, password: str) -> accounts_pb2.LoginResponse:
        """Get a token for ``login``; this client sends it from now on (``govnet login`` also saves it)."""
        done = self._call(self._accounts.Login, accounts_pb2.LoginRequest(login=login, password=password))
        self.token = done.token
        return done

    def logout(self) -> accounts_pb2.Account:
        return self._call(self._accounts.Logout, accounts_pb2.WhoAmIRequest())

    def whoami(self) -> accounts_pb2.Account:
        return self._call(self._accounts.WhoAmI, accounts_pb2.WhoAmIRequest())

    def users(self) -> accounts_pb2.ListUsersResponse:
        return self._call(self._accounts.ListUsers, accounts_pb2.ListUsersRequest())

    def add_user(self, login: str, *, roles: Sequence[str], password: str, name: str = "",
                 departments: Sequence[str] = (), backup_for: str = "") -> accounts_pb2.Account:
        return self._call(self._accounts.AddUser, accounts_pb2.AddUserRequest(
            login=login, name=name, roles=list(roles), departments=list(departments), backup_for=backup_for,
            password=password))

    def disable_user(self, login: str) -> accounts_pb2.Account:
        return self._call(self._accounts.DisableUser, accounts_pb2.LoginName(login=login))

    def enable_user(self, login: str) -> accounts_pb2.Account:
        return self._call(self._accounts.EnableUser, accounts_pb2.LoginName(login=login))

    def reset_password(self, login: str, password: str) -> accounts_pb2.Account:
        return self._call(self._accounts.ResetPassword, accounts_pb2.ResetPasswordRequest(login=login,
                                                                                            password=password))

    def set_absent(self, login: str, absent: bool = True) -> accounts_pb2.Account:
        return self._call(self._accounts.SetAbsent, accounts_pb2.SetAbsentRequest(login=login, absent=absent))

    # --- cases ---

    def submit(
        self,
        *,
        idempotency_key: str,
        item_code: str,
        name: str,
        id_number: str,
        phone: str,
        materials: Sequence[str] = (),
        agent: str = "",
        note: str = "",
        actor: str = "",
        happened_at: str = "",
    ) -> cases_pb2.SubmitCaseResponse:
        request = cases_pb2.SubmitCaseRequest(
            idempotency_key=idempotency_key,
            item_code=item_code,
            applicant=cases_pb2.Applicant(name=name, id_number=id_number, phone=phone),
            materials=list(materials),
            agent=agent,
            note=note,
            actor=actor,
            happened_at=happened_at,
        )
        return self._call(self._cases.Submit, request)

    def get(self, receipt: str) -> cases_pb2.Case:
        return self._call(self._cases.Get, cases_pb2.GetCaseRequest(receipt=receipt))

    def track(self, receipt: str) -> cases_pb2.TrackCaseResponse:
        return self._call(self._cases.Track, cases_pb2.TrackCaseRequest(receipt=receipt))

    def list(
        self,
        *,
        status: str = "",
        item_code: str = "",
        department: str = "",
        due_before: str = "",
        limit: int = 100,
        page_token: str = "",
        statuses: Sequence[str] = (),
        open_only: bool = False,
    ) -> cases_pb2.ListCasesResponse:
        request = cases_pb2.ListCasesRequest(
            status=status, item_code=item_code, department=department,
            due_before=due_before, limit=limit, page_token=page_token,
            statuses=list(statuses), open_only=open_only,
        )
        return self._call(self._cases.List, request)

    def act(self, receipt: str, action: str, **params: Any) -> cases_pb2.Case:
        """Apply ``action`` and return the case; takes ``act_response``'s parameters."""
        return self.act_response(receipt, action, **params).case

    def act_response(
        self,
        receipt: str,
        action: str,
        *,
        actor: str = "",
        reason: str = "",
        materials: Iterable[str] = (),
        departments: Iterable[str] = (),
        department: str = "",
        agree: bool = False,
        approver: str = "",
        happened_at: str = "",
        changed_application: bool = False,
    ) -> cases_pb2.ActResponse:
        request = cases_pb2.ActRequest(
            receipt=receipt, action=action, actor=actor, reason=reason,
            materials=list(materials), departments=list(departments),
            department=department, agree=agree, approver=approver, happened_at=happened_at,
            changed_application=changed_application,
        )
        return self._call(self._cases.Act, request)

    def notice(self, receipt: str) -> cases_pb2.CaseNotice:
        """The case's latest one-time notice (text and printable page)."""
        return self._call(self._cases.Notice, cases_pb2.GetCaseRequest(receipt=receipt))
    def pay_fee(self, receipt: str, amount: str, method: str, number: str, happened_at: str = "") -> cases_pb2.Case:
        """Record a payment of the case's fees (``amount`` in yuan, as typed: "80.00")."""
        request = cases_pb2.PayFeeRequest(receipt=receipt, amount=amount, method=method, number=number,
                                          happened_at=happened_at)
        return self._call(self._cases.PayFee, request).case

    def waive_fee(self, receipt: str, reason: str) -> cases_pb2.Case:
        return self._call(self._cases.WaiveFee, cases_pb2.WaiveFeeRequest(receipt=receipt, reason=reason)).case

    def green_channel(self, receipt: str, reason: str) -> cases_pb2.Case:
        return self._call(self._cases.GreenChannel, cases_pb2.GreenChannelRequest(receipt=receipt, reason=reason)).case

    # --- catalog ---

    def put_catalog(self, catalog: Catalog, expected_version: int = 0) -> catalog_pb2.PutCatalogResponse:
        request = catalog_pb2.PutCatalogRequest(
            issuer=catalog.issuer,
            items=[item_to_proto(i) for i in catalog.items],
            expected_version=expected_version,
        )
        return self._call(self._catalog.PutCatalog, request)

    def publish_calendar(self, schedule: str) -> catalog_pb2.PublishCalendarResponse:
        return self._call(self._catalog.PublishCalendar, catalog_pb2.PublishCalendarRequest(schedule=schedule))

    def list_items(self, *, department: str = "", authority_level: str = "") -> catalog_pb2.ListItemsResponse:
        request = catalog_pb2.ListItemsRequest(department=department, authority_level=authority_level)
        return self._call(self._catalog.ListItems, request)

    def get_item(self, code: str) -> catalog_pb2.GetItemResponse:
        return self._call(self._catalog.GetItem, catalog_pb2.GetItemRequest(code=code))

    # --- sync ---

    def sync_status(self) -> sync_pb2.SyncStatusResponse:
        return self._call(self._sync.Status, sync_pb2.SyncStatusRequest())

    def quarantine(self) -> sync_pb2.QuarantineListResponse:
        return self._call(self._sync.ListQuarantine, sync_pb2.QuarantineListRequest())

    def replay(self, item_id: int) -> sync_pb2.QuarantineReplayResponse:
        return self._call(self._sync.ReplayQuarantine, sync_pb2.QuarantineReplayRequest(id=item_id))

    # --- supervision ---

    def alarms(self, open_only: bool = False, about_node: str = "") -> sv.ListAlarmsResponse:
        return self._call(self._supervision.ListAlarms, sv.ListAlarmsRequest(open_only=open_only,
                                                                             about_node=about_node))

    def scan(self) -> sv.ScanResponse:
        return self._call(self._supervision.Scan, sv.ScanRequest())

    def suspend(self, receipt: str, *, kind: str, days: int, reason: str, actor: str = "") -> sv.SuspensionResponse:
        return self._call(self._supervision.Suspend,
                          sv.SuspendRequest(receipt=receipt, kind=kind, days=days, reason=reason, actor=actor))

    def resume(self, receipt: str, *, actor: str = "", reason: str = "") -> sv.SuspensionResponse:
        return self._call(self._supervision.Resume, sv.ResumeRequest(receipt=receipt, reason=reason, actor=actor))

    def evaluate(self, receipt: str, rating: str, comment: str = "", actor: str = "",
                 rating_code: str = "") -> sv.EvaluateResponse:
        return self._call(self._supervision.Evaluate,
                          sv.EvaluateRequest(receipt=receipt, rating=rating, comment=comment, actor=actor,
                                             rating_code=rating_code))

    def rectify(self, receipt: str, *, note: str, actor: str = "") -> sv.RectifyResponse:
        return self._call(self._supervision.Rectify, sv.RectifyRequest(receipt=receipt, note=note, actor=actor))

    def appeal(self, receipt: str, *, reason: str, actor: str = "") -> sv.AppealResponse:
        return self._call(self._supervision.Appeal, sv.AppealRequest(receipt=receipt, reason=reason, actor=actor))

    def decide_appeal(self, receipt: str, *, upheld: bool, reason: str, actor: str = "") -> sv.AppealResponse:
        return self._call(self._supervision.DecideAppeal,
                          sv.DecideAppealRequest(receipt=receipt, upheld=upheld, reason=reason, actor=actor))

    def file_complaint(self, text: str, *, receipt: str = "", about_node: str = "", department: str = "") -> sv.Complaint:
        return self._call(self._supervision.FileComplaint,
                          sv.FileComplaintRequest(text=text, receipt=receipt, about_node=about_node,
                                                  department=department))

    def resolve_complaint(self, complaint_id: str, *, resolution: str, actor: str = "") -> sv.Complaint:
        return self._call(self._supervision.ResolveComplaint,
                          sv.ResolveComplaintRequest(complaint_id=complaint_id, resolution=resolution, actor=actor))

    def complaints(self, *, status: str = "", about_node: str = "") -> sv.ListComplaintsResponse:
        return self._call(self._supervision.ListComplaints,
                          sv.ListComplaintsRequest(status=status, about_node=about_node))

    # --- statistics ---

    def stats(self, by: str = "node", from_day: str = "", to_day: str = "", subtree: str = "", rank_by: str = "",
              ascending: bool = False) -> stats_pb2.StatsAnswer:
        """Totals over the node's subtree (or ``subtree``'s, below it), grouped ``by``, between two
        days (inclusive; "" = open), ranked by ``rank_by`` if given."""
        return self._call(self._stats.Query, stats_pb2.StatsQuery(by=by, from_day=from_day, to_day=to_day,
                                                                  subtree=subtree, rank_by=rank_by,
                                                                  ascending=ascending))
