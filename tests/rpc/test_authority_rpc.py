"""Who may send what, over real gRPC on loopback: the status codes and the metric.

The rules themselves are tested pure (tests/unit/test_authority.py) and as attacks on a
simulated federation (tests/sim/test_attacks.py); this checks the contract at the edge:
PERMISSION_DENIED with a one-line reason, nothing stored, ``govnet_sync_refused_total``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import grpc
import pytest

from govnet.federation.tree import level_of, parent_id
from govnet.node.domain.catalog import Catalog, load_catalog_file, sample_catalog_path
from govnet.node.domain.messages import StatsMessage, StatsReportPart
from govnet.node.process.tls import load_node_tls, node_name
from govnet.node.rpc.client import ClientError
from govnet.ops.pki import enrol_node
from govnet.ops.processes import CA_ENV
from govnet.sync.envelope import PROTOCOL_VERSION
from govnet.v1 import sync_pb2, sync_pb2_grpc

COUNTY, TOWN, OTHER_TOWN, CITY = "371102", "371102001", "371102002", "371100"
SAMPLE = load_catalog_file(sample_catalog_path())


def refused(node, reason: str) -> float:  # type: ignore[no-untyped-def]
    value = node.node.metrics.registry.get_sample_value("govnet_sync_refused_total", {"reason": reason})
    assert value is not None
    return float(value)


def channel_as(node_id: str, address: str, folder: Path) -> grpc.Channel:
    """A raw channel to ``address`` with the certificate of node ``node_id`` (issued by the session's
    city CA): what that node's up-link presents, so the parent knows the caller as that node."""
    enrol_node(folder, node_id, level_of(node_id).value, Path(os.environ[CA_ENV]))
    tls = load_node_tls(folder, "tls/ca.crt", "tls/node.crt", "tls/node.key", node_id)
    parent = parent_id(node_id)
    assert parent is not None
    return grpc.secure_channel(address, tls.channel_credentials(), options=[
        ("grpc.ssl_target_name_override", node_name(parent))])


def test_a_push_in_another_nodes_name_is_permission_denied(make_node, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node, client = make_node(COUNTY, "county", catalog=False)
    payload = StatsMessage(StatsReportPart(OTHER_TOWN, 10**6, "2026-03-10T00:00:00+00:00"), ()).encode()
    # the township's own certificate: the forgery is in what it sends, not in who it is
    with channel_as(TOWN, node.address, tmp_path / "town") as channel:
        stub = sync_pb2_grpc.SyncServiceStub(channel)
        stub.Hello(sync_pb2.HelloRequest(node_id=TOWN, level="township", protocol_version=PROTOCOL_VERSION,
                                         incarnation=1), timeout=10)
        forged = sync_pb2.Envelope(seq=1, origin=OTHER_TOWN, origin_incarnation=1, origin_seq=1, kind="stats",
                                   target=CITY, case_key="stats", payload=payload)
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Push(iter([sync_pb2.PushRequest(sender=TOWN, sender_incarnation=1, envelopes=[forged])]),
                           timeout=10))
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert err.value.details() == (f"child {TOWN} may send only what its own subtree created; "
                                   f"this stats envelope comes from {OTHER_TOWN}")
    assert refused(node, "outside_subtree") == 1 and refused(node, "payload_mismatch") == 0
    assert all(link.inbox_depth == 0 for link in client.sync_status().links)  # nothing stored


def test_a_catalog_under_a_strangers_name_or_beyond_authority_is_permission_denied(make_node) -> None:  # type: ignore[no-untyped-def]
    node, client = make_node(COUNTY, "county", catalog=False)
    city_item = SAMPLE.get("HB-0001")
    assert city_item is not None
    attempts = [
        (Catalog(items=(dataclasses.replace(city_item, code="LY-0001"),), issuer=COUNTY),
         "may not define item LY-0001, decided at city level"),  # its own release, a city-level item in it
        (dataclasses.replace(SAMPLE, issuer="371103"), "under its own name only"),  # another county's name
        (dataclasses.replace(SAMPLE, issuer=TOWN), "under its own name only"),  # a township's, below it
    ]
    for catalog, fragment in attempts:
        with pytest.raises(ClientError) as denied:
            client.put_catalog(catalog)
        assert denied.value.code is grpc.StatusCode.PERMISSION_DENIED and fragment in str(denied.value)
    assert list(client.list_items().releases) == []  # nothing published
    assert refused(node, "catalog_authority") == 1 and refused(node, "catalog_issuer") == 2
    # A lone county (its city not reached yet) may load the city's release by hand.
    assert client.put_catalog(SAMPLE).version == 1
