"""A typed client for a govnet node (blocking; the CLI and scripts use it).

Every call has a deadline (``timeout`` seconds, default 10) so a dead or unreachable
node fails the call instead of hanging it. Errors arrive as ``ClientError`` carrying
the gRPC status code and the node's one-line message.

Nodes require mutual TLS: the client presents a client certificate from a folder holding
``client.crt``, ``client.key`` and the city's root ``ca.crt`` (``govnet pki client`` makes
one) — the ``certs`` argument, else the folder ``$GOVNET_CERTS`` names (what ``govnet --certs``
sets). Without either it speaks plaintext, which only a node configured with
``tls.plaintext = true`` accepts. The node's certificate is checked against the root and
must carry the name every node certificate has (``node.govnet``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from govnet.node.domain.catalog import Catalog
from govnet.node.rpc.convert import item_to_proto
from govnet.v1 import (
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
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ("grpc.max_send_message_length", 8 * 1024 * 1024),
]

T = TypeVar("T")


class ClientError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code

    @classmethod
    def from_rpc(cls, exc: grpc.RpcError, address: str) -> ClientError:
        code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = (exc.details() if isinstance(exc, grpc.Call) else "") or ""
        if code is grpc.StatusCode.UNAVAILABLE:
            return cls(code, f"node at {address} is not reachable: is it running, and does it accept the client "
                             f"certificate (--certs / ${CERTS_ENV})? ({details})")
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return cls(code, f"node at {address} did not answer in time")
        return cls(code, details or code.name)


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
    def __init__(self, address: str, timeout: float = DEFAULT_TIMEOUT, certs: Path | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self._channel = secure_channel(address, certs)
        self._cases = cases_pb2_grpc.CaseServiceStub(self._channel)
        self._catalog = catalog_pb2_grpc.CatalogServiceStub(self._channel)
        self._sync = sync_pb2_grpc.SyncServiceStub(self._channel)
        self._supervision = supervision_pb2_grpc.SupervisionServiceStub(self._channel)
        self._stats = stats_pb2_grpc.StatsServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GovnetClient:
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None) -> None:
        self.close()

    def _call(self, method: Callable[..., T], request: Message) -> T:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise ClientError.from_rpc(exc, self.address) from None

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
    ) -> cases_pb2.ListCasesResponse:
        request = cases_pb2.ListCasesRequest(
            status=status, item_code=item_code, department=department,
            due_before=due_before, limit=limit, page_token=page_token,
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
        actor: str,
        reason: str = "",
        materials: Iterable[str] = (),
        departments: Iterable[str] = (),
        department: str = "",
        agree: bool = False,
        approver: str = "",
        happened_at: str = "",
    ) -> cases_pb2.ActResponse:
        request = cases_pb2.ActRequest(
            receipt=receipt, action=action, actor=actor, reason=reason,
            materials=list(materials), departments=list(departments),
            department=department, agree=agree, approver=approver, happened_at=happened_at,
        )
        return self._call(self._cases.Act, request)

    # --- catalog ---

    def put_catalog(self, catalog: Catalog, expected_version: int = 0) -> catalog_pb2.PutCatalogResponse:
        request = catalog_pb2.PutCatalogRequest(
            issuer=catalog.issuer,
            items=[item_to_proto(i) for i in catalog.items],
            expected_version=expected_version,
        )
        return self._call(self._catalog.PutCatalog, request)

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

    def alarms(self, open_only: bool = False) -> sv.ListAlarmsResponse:
        return self._call(self._supervision.ListAlarms, sv.ListAlarmsRequest(open_only=open_only))

    def scan(self) -> sv.ScanResponse:
        return self._call(self._supervision.Scan, sv.ScanRequest())

    def suspend(self, receipt: str, *, kind: str, days: int, reason: str, actor: str) -> sv.SuspensionResponse:
        return self._call(self._supervision.Suspend,
                          sv.SuspendRequest(receipt=receipt, kind=kind, days=days, reason=reason, actor=actor))

    def resume(self, receipt: str, *, actor: str, reason: str = "") -> sv.SuspensionResponse:
        return self._call(self._supervision.Resume, sv.ResumeRequest(receipt=receipt, reason=reason, actor=actor))

    def evaluate(self, receipt: str, rating: str, comment: str = "", actor: str = "") -> sv.EvaluateResponse:
        return self._call(self._supervision.Evaluate,
                          sv.EvaluateRequest(receipt=receipt, rating=rating, comment=comment, actor=actor))

    def rectify(self, receipt: str, *, note: str, actor: str) -> sv.RectifyResponse:
        return self._call(self._supervision.Rectify, sv.RectifyRequest(receipt=receipt, note=note, actor=actor))

    def appeal(self, receipt: str, *, reason: str, actor: str) -> sv.AppealResponse:
        return self._call(self._supervision.Appeal, sv.AppealRequest(receipt=receipt, reason=reason, actor=actor))

    def decide_appeal(self, receipt: str, *, upheld: bool, reason: str, actor: str) -> sv.AppealResponse:
        return self._call(self._supervision.DecideAppeal,
                          sv.DecideAppealRequest(receipt=receipt, upheld=upheld, reason=reason, actor=actor))

    def file_complaint(self, text: str, *, receipt: str = "", about_node: str = "", department: str = "") -> sv.Complaint:
        return self._call(self._supervision.FileComplaint,
                          sv.FileComplaintRequest(text=text, receipt=receipt, about_node=about_node,
                                                  department=department))

    def resolve_complaint(self, complaint_id: str, *, resolution: str, actor: str) -> sv.Complaint:
        return self._call(self._supervision.ResolveComplaint,
                          sv.ResolveComplaintRequest(complaint_id=complaint_id, resolution=resolution, actor=actor))

    def complaints(self, *, status: str = "", about_node: str = "") -> sv.ListComplaintsResponse:
        return self._call(self._supervision.ListComplaints,
                          sv.ListComplaintsRequest(status=status, about_node=about_node))

    # --- statistics ---

    def stats(self, by: str = "node", from_day: str = "", to_day: str = "") -> stats_pb2.StatsAnswer:
        """Totals over the node's subtree, grouped ``by``, between two days (inclusive; "" = open)."""
        return self._call(self._stats.Query, stats_pb2.StatsQuery(by=by, from_day=from_day, to_day=to_day))
