"""What every node serves besides cases: the standard health service and server reflection,
and its message size limit."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from govnet.node.process.build import MAX_MESSAGE_BYTES
from govnet.node.rpc.client import ClientError, secure_channel


def test_health_reports_serving_for_the_node_and_each_service(make_node) -> None:
    node, _ = make_node()
    with secure_channel(node.address, None) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "govnet.v1.CaseService", "govnet.v1.CatalogService", "govnet.v1.SyncService",
                        "govnet.v1.SupervisionService", "govnet.v1.StatsService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(health_pb2.HealthCheckRequest(service="govnet.v1.NoSuchService"), timeout=5)
        assert info.value.code() is grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_govnet_services(make_node) -> None:
    node, _ = make_node()
    with secure_channel(node.address, None) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                 timeout=5))
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"govnet.v1.CaseService", "govnet.v1.CatalogService", "govnet.v1.SyncService",
            "grpc.health.v1.Health"} <= names


def test_a_message_over_the_size_limit_is_refused_and_changes_nothing(make_node) -> None:
    node, client = make_node()
    with pytest.raises(ClientError) as info:
        client.submit(idempotency_key="big", item_code="SJ-0001", name="张三", id_number="11010519491231002X",
                      phone="13812345678", note="x" * (MAX_MESSAGE_BYTES + 1), actor="clerk")
    assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert node.store.count_cases() == 0


def test_the_note_given_at_intake_is_kept_with_the_submit_event(make_node) -> None:
    import json

    _, client = make_node()
    done = client.submit(idempotency_key="n1", item_code="SJ-0001", name="张三", id_number="11010519491231002X",
                         phone="13812345678", note="申请人行动不便，请电话联系", actor="clerk")
    case = client.get(done.case.receipt)
    assert json.loads(case.events[0].detail_json)["note"] == "申请人行动不便，请电话联系"
