"""Every error a proper status, at the RPC boundary of a real node (issue 11, point 4).

One in-process county node on loopback per test (real gRPC, real SQLite). Raw calls send
bytes that are not the request message; the typed client and the CLI read the status
details. The RPC metrics are read from the node's own registry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import grpc
import pytest
from click.testing import CliRunner
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_status import rpc_status

from govnet.node.rpc.client import ClientError, GovnetClient, secure_channel
from govnet.node.rpc.errors import MAX_MESSAGE_CHARS
from govnet.ops.cli import main
from govnet.v1 import cases_pb2, sync_pb2

from support.helpers import CLERK, ID_NUMBER, PHONE, store_snapshot

S = grpc.StatusCode
HEALTH = "/grpc.health.v1.Health/Check"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def requests_total(node) -> float:
    """``govnet_rpc_requests_total`` summed over every method and code."""
    return sum(s.value for m in node.node.metrics.registry.collect() if m.name == "govnet_rpc_requests"
               for s in m.samples if s.name == "govnet_rpc_requests_total")


def settled_total(node, expected: float, limit_s: float = 2.0) -> float:
    """The total once it reaches ``expected`` (or the limit passes): a call is counted just after
    its status has gone out, so the client can be a moment ahead of the counter."""
    deadline = time.monotonic() + limit_s
    while (total := requests_total(node)) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return total


def counted(node, method: str, code: str) -> float:
    return node.node.metrics.registry.get_sample_value("govnet_rpc_requests_total",
                                                        {"method": method, "code": code}) or 0.0


def raw_call(channel: grpc.Channel, method: str, body: bytes, streaming: bool) -> grpc.RpcError:
    """Send ``body`` as the request of ``method`` (a one-message stream when ``streaming``)."""
    with pytest.raises(grpc.RpcError) as info:
        if streaming:
            list(channel.stream_stream(method)(iter([body]), timeout=5))
        else:
            channel.unary_unary(method)(body, timeout=5)
    return info.value


def test_an_undecodable_request_answers_invalid_argument_logs_one_warning_and_is_counted(make_node, caplog) -> None:
    node, _ = make_node()
    valid = cases_pb2.SubmitCaseRequest(idempotency_key="k1", item_code="SJ-0001", actor=CLERK).SerializeToString()
    not_utf8 = valid.replace(b"k1", b"\xff\xfe")  # the key's bytes are not UTF-8
    calls = [
        ("/govnet.v1.CaseService/Submit", "Submit", b"\xff\xff\xff\xff", False, "govnet.v1.SubmitCaseRequest"),
        ("/govnet.v1.CaseService/Submit", "Submit", not_utf8, False, "govnet.v1.SubmitCaseRequest"),
        ("/govnet.v1.CaseService/Submit", "Submit", valid[:-3], False, "govnet.v1.SubmitCaseRequest"),
        ("/govnet.v1.SyncService/Push", "Push", b"\x0a\xff", True, "govnet.v1.PushRequest"),
        (HEALTH, HEALTH, b"\x0a\x05\xff\xff\xff\xff\xff", False, "grpc.health.v1.HealthCheckRequest"),
        (REFLECTION, REFLECTION, b"\xff", True, "grpc.reflection.v1alpha.ServerReflectionRequest"),
    ]
    before = store_snapshot(node.data_dir)
    total = requests_total(node)
    invalid = {label: counted(node, label, "INVALID_ARGUMENT") for _, label, *_ in calls}
    caplog.set_level(logging.WARNING)
    with secure_channel(node.address, None) as channel:
        for method, _, body, streaming, message in calls:
            error = raw_call(channel, method, body, streaming)
            assert error.code() is S.INVALID_ARGUMENT, (method, error.code(), error.details())
            assert error.details().startswith(f"request body is not a valid {message}"), error.details()
            assert "Traceback" not in error.details() and "Unexpected" not in error.details()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == len(calls), [r.getMessage() for r in warnings]
    for record, (method, *_) in zip(warnings, calls, strict=True):
        assert method in record.getMessage() and "127.0.0.1" in record.getMessage()  # method and peer
        assert record.exc_info is None and "\n" not in record.getMessage()
    assert settled_total(node, total + len(calls)) == total + len(calls)
    for label in invalid:
        assert counted(node, label, "INVALID_ARGUMENT") - invalid[label] == sum(1 for c in calls if c[1] == label)
    assert store_snapshot(node.data_dir) == before


def test_a_field_refusal_carries_a_bad_request_violation(make_node) -> None:
    node, client = make_node()
    with pytest.raises(ClientError) as info:
        client.submit(idempotency_key="f1", item_code="SJ-0001", name="", id_number=ID_NUMBER, phone=PHONE,
                      actor=CLERK)
    refused = info.value
    assert refused.code is S.INVALID_ARGUMENT
    assert refused.field == "applicant.name"
    assert refused.violations == (("applicant.name", str(refused)),)
    assert refused.line().startswith("applicant.name: ")

    # The same, read as any gRPC client reads it: the status details hold a google.rpc.BadRequest.
    with secure_channel(node.address, None) as channel, pytest.raises(grpc.RpcError) as raw:
        channel.unary_unary("/govnet.v1.CatalogService/GetItem")(b"", timeout=5)  # an empty code
    status = rpc_status.from_call(raw.value)
    assert raw.value.code() is S.INVALID_ARGUMENT and status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [("code", raw.value.details())]

    with pytest.raises(ClientError) as missing:
        client.get_item("NO-9999")
    assert missing.value.code is S.NOT_FOUND and missing.value.field == "code"


def test_the_cli_prints_the_field_in_its_one_line(make_node) -> None:
    node, _ = make_node()
    run = CliRunner().invoke(main, ["case", "submit", "--node", node.address, "--item", "SJ-0001", "--name", " ",
                                    "--id-number", ID_NUMBER, "--phone", PHONE, "--actor", CLERK])
    assert run.exit_code == 1, run.output
    lines = run.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("govnet: error: INVALID_ARGUMENT: applicant.name: "), lines
    run = CliRunner().invoke(main, ["catalog", "show", "--node", node.address, ""])
    assert run.exit_code == 1 and "INVALID_ARGUMENT: code" in run.output, run.output


BIG = "号" * (64 * 1024 // 3) + "x" * 10  # 64 KiB of UTF-8; percent-encoded it would be ~200 KB of trailer
BAD_64_KB: list[tuple[Callable[[GovnetClient], Any], str]] = [
    (lambda c: c.list(due_before=BIG), "due_before"),
    (lambda c: c.list(page_token=BIG), "page_token"),
    (lambda c: c.submit(idempotency_key="b1", item_code="SJ-0001", name="张三", id_number=BIG, phone=PHONE,
                        actor=CLERK), "applicant.id_number"),
    (lambda c: c.get_item(BIG), "code"),
]


def test_a_64_kb_bad_input_gets_its_real_reason_in_a_short_message(make_node) -> None:
    node, client = make_node()
    before = store_snapshot(node.data_dir)
    for call, field in BAD_64_KB:
        with pytest.raises(ClientError) as info:
            call(client)
        refused = info.value
        assert refused.code in (S.INVALID_ARGUMENT, S.NOT_FOUND), (refused.code, str(refused)[:200])
        assert "metadata" not in str(refused)
        assert len(str(refused)) <= MAX_MESSAGE_CHARS and "\n" not in str(refused)
        assert refused.field == field
    assert store_snapshot(node.data_dir) == before


def test_health_list_answers_every_service(make_node) -> None:
    node, _ = make_node()
    with secure_channel(node.address, None) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        listed = stub.List(health_pb2.HealthListRequest(), timeout=5)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service="govnet.v1.CaseService"), timeout=5)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING  # a stream through the boundary too
        watch.cancel()
    assert {name: s.status for name, s in listed.statuses.items()} == dict.fromkeys(
        ("", "govnet.v1.CaseService", "govnet.v1.CatalogService", "govnet.v1.SyncService",
         "govnet.v1.SupervisionService", "govnet.v1.StatsService", "govnet.v1.AccountService"),
        health_pb2.HealthCheckResponse.SERVING)


def leading_comment(file: descriptor_pb2.FileDescriptorProto, message: str, field: str) -> str:
    """The leading comment of ``message.field`` in a file's source info (FileDescriptorProto path 4, i, 2, j)."""
    m = next(i for i, d in enumerate(file.message_type) if d.name == message)
    f = next(j for j, d in enumerate(file.message_type[m].field) if d.name == field)
    for location in file.source_code_info.location:
        if list(location.path) == [4, m, 2, f]:
            return location.leading_comments
    return ""


def comment_above(proto: str, declaration: str) -> str:
    """The ``//`` comment lines right above the line holding ``declaration`` in an installed .proto file."""
    lines = resources.files("govnet.v1").joinpath(proto).read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if declaration in line)
    above: list[str] = []
    for line in reversed(lines[:at]):
        if not line.strip().startswith("//"):
            break
        above.insert(0, line.strip().removeprefix("//"))
    return " ".join(" ".join(above).split())


def test_reflection_shows_the_proto_comments(make_node) -> None:
    node, _ = make_node()
    with secure_channel(node.address, None) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)  # grpcio-reflection's own client
        assert "govnet.v1.CaseService" in database.get_services()
        file = database.FindFileContainingSymbol("govnet.v1.SubmitCaseRequest")
        shown = leading_comment(file, "SubmitCaseRequest", "idempotency_key")
        assert shown.strip() and " ".join(shown.split()) == comment_above("cases.proto", " idempotency_key = ")
        # Everything a tool needs to describe the service resolves, grpc's own services too.
        assert database.FindFileContainingSymbol("grpc.health.v1.Health").name.endswith("health.proto")
        assert database.FindFileContainingSymbol(sync_pb2.PushRequest.DESCRIPTOR.full_name).name == "govnet/v1/sync.proto"
        assert database.FindFileContainingSymbol("govnet.v1.CaseService.Submit").name == "govnet/v1/cases.proto"  # a method
