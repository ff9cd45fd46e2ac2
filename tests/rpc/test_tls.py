"""Mutual TLS and the authenticated peer, over real TLS on loopback with real certificates.

Nodes run in this process (on the real clock: certificates and sync backoff are real time),
enrolled with the session's city CA (tests/conftest.py); each attack uses a certificate made
for it with ``ops.pki``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from govnet.node.process.server import StartError
from govnet.node.process.tls import load_node_tls, node_name
from govnet.node.rpc.client import ClientError, GovnetClient
from govnet.ops import pki
from govnet.ops.processes import init_node
from govnet.sync.envelope import PROTOCOL_VERSION
from govnet.sync.transport.base import Hello, LinkDown, Refused
from govnet.sync.transport.grpc import GrpcTransport
from govnet.v1 import sync_pb2, sync_pb2_grpc

from support.helpers import wait_for
from support.inprocess import BackgroundLoop, InProcessNode, in_process_nodes, start_in_process

FAST = {"flush_interval_s": 0.1, "digest_interval_s": 5.0}


@pytest.fixture
def nodes(loop: BackgroundLoop, tmp_path: Path) -> Iterator[Callable[..., InProcessNode]]:
    yield from in_process_nodes(loop, tmp_path, FAST)


def transport_as(node_dir: Path, node_id: str, parent: InProcessNode) -> Callable[[], GrpcTransport]:
    """The up-link a node enrolled in ``node_dir`` would open to ``parent`` (made on the loop that uses it)."""
    tls = load_node_tls(node_dir, "tls/ca.crt", "tls/node.crt", "tls/node.key", node_id)
    return lambda: GrpcTransport(parent.address, retries=1, timeout_s=5, credentials=tls.channel_credentials(),
                                 server_name=node_name(parent.store.meta.node_id))


def hello(make: Callable[[], GrpcTransport], claimed: str, level: str) -> object:
    async def call() -> object:
        transport = make()
        try:
            return await transport.hello(Hello(claimed, level, PROTOCOL_VERSION, 0, 1))
        finally:
            await transport.close()

    return asyncio.run(call())


def refused(node: InProcessNode, reason: str) -> float:
    return node.node.metrics.registry.get_sample_value("govnet_auth_refused_total", {"reason": reason}) or 0.0


def test_without_a_client_certificate_the_handshake_fails_and_nothing_runs(nodes, city_pki: Path) -> None:
    county = nodes("371102", "county", parent="127.0.0.1:1")
    root = (city_pki / "ca" / "root.crt").read_bytes()
    with grpc.secure_channel(county.address, grpc.ssl_channel_credentials(root),
                             options=[("grpc.ssl_target_name_override", "node.govnet")]) as channel:
        with pytest.raises(grpc.RpcError) as info:
            sync_pb2_grpc.SyncServiceStub(channel).Status(sync_pb2.SyncStatusRequest(), timeout=5)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    with grpc.insecure_channel(county.address) as channel:  # and plaintext gets nowhere either
        with pytest.raises(grpc.RpcError):
            sync_pb2_grpc.SyncServiceStub(channel).Status(sync_pb2.SyncStatusRequest(), timeout=5)
    rpc = county.node.metrics.registry.get_sample_value
    assert rpc("govnet_rpc_requests_total", {"method": "Status", "code": "OK"}) is None


def test_a_program_with_its_own_ca_calling_itself_a_township_cannot_connect(nodes, tmp_path: Path) -> None:
    county = nodes("371102", "county", parent="127.0.0.1:1")
    own = pki.init_ca(tmp_path / "own-ca", "371100")  # same names, another key
    pki.enrol_node(tmp_path / "impostor", "371102001", "township", own.directory)
    with pytest.raises(LinkDown):
        hello(transport_as(tmp_path / "impostor", "371102001", county), "371102001", "township")
    assert _children(county) == set()


def test_a_node_certificate_claiming_another_node_is_permission_denied(nodes, tmp_path: Path, city_pki: Path) -> None:
    county = nodes("371102", "county", parent="127.0.0.1:1")
    pki.enrol_node(tmp_path / "other-town", "371102002", "township", city_pki / "ca")
    with pytest.raises(Refused, match="names node 371102002, but the request claims to be 371102001"):
        hello(transport_as(tmp_path / "other-town", "371102002", county), "371102001", "township")
    # a real node of another county, claiming to be itself, is not a child here
    pki.enrol_node(tmp_path / "foreign", "371103001", "township", city_pki / "ca")
    with pytest.raises(Refused, match="371103001"):
        hello(transport_as(tmp_path / "foreign", "371103001", county), "371103001", "township")
    assert refused(county, "wrong_node") == 2
    assert _children(county) == set()
    # while the honest township says hello as itself
    hello(transport_as(tmp_path / "other-town", "371102002", county), "371102002", "township")


def test_a_certificate_that_expires_on_an_open_connection_is_refused_per_call(nodes, tmp_path: Path,
                                                                               city_pki: Path) -> None:
    county = nodes("371102", "county", parent="127.0.0.1:1")
    ca = pki.load_ca(city_pki / "ca")
    request = pki.request_client(tmp_path / "short", "short-lived", "ops")
    from cryptography import x509

    csr = x509.load_pem_x509_csr(request.read_bytes())
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    cert = pki.sign(ca, pki.client_identity("short-lived", "ops"), csr.public_key(), days=0,
                    now=now + timedelta(seconds=1.5), not_before=now - timedelta(minutes=1))
    (tmp_path / "short" / "client.crt").write_bytes(pki.cert_pem(cert))
    (tmp_path / "short" / "ca.crt").write_bytes(pki.cert_pem(ca.root))
    with GovnetClient(county.address, certs=tmp_path / "short") as client:
        client.sync_status()  # valid now: the handshake and the call pass
        time.sleep(max(0.0, (cert.not_valid_after_utc - datetime.now(UTC)).total_seconds()) + 0.3)
        with pytest.raises(ClientError) as info:
            client.sync_status()  # the same connection, an expired certificate
    assert info.value.code is grpc.StatusCode.UNAUTHENTICATED and "expired" in str(info.value)
    assert refused(county, "expired") == 1


def test_a_revocation_travels_down_from_the_city_and_every_node_refuses_the_certificate(
        nodes, tmp_path: Path, city_pki: Path) -> None:
    city = nodes("371100", "city")
    county = nodes("371102", "county", parent=city.address)
    town = nodes("371102001", "township", parent=county.address)
    wait_for(lambda: town.store.meta.node_id in _children(county), 15, lambda: "the township never registered")
    pki.enrol_client(tmp_path / "mallory", "mallory", "ops", city_pki / "ca")
    with GovnetClient(town.address, certs=tmp_path / "mallory") as mallory:
        mallory.sync_status()
        bundle, added = pki.revoke(city_pki / "ca", node=None,
                                   serials=[pki.load_cert(tmp_path / "mallory" / "client.crt").serial_number])
        drop = city.data_dir / "tls" / "revocations"
        drop.mkdir(parents=True)
        (drop / "root.crl").write_bytes(bundle.read_bytes())  # what ops copies into the city's folder

        def refused_at_township() -> bool:
            try:
                mallory.sync_status()
            except ClientError as exc:
                return exc.code is grpc.StatusCode.UNAUTHENTICATED and "revoked" in str(exc)
            return False

        wait_for(refused_at_township, 20, lambda: "the township still accepts the revoked certificate")
    assert refused(town, "revoked") >= 1
    # a village that joins afterwards gets the list from its township when it registers
    village = nodes("371102001201", "village", parent=town.address)
    with GovnetClient(village.address, certs=tmp_path / "mallory") as mallory:
        wait_for(lambda: village.node.core.revocations.revoked("371100", added[0]), 20,
                 lambda: "the late village never got the list")
        with pytest.raises(ClientError) as info:
            mallory.sync_status()
        assert info.value.code is grpc.StatusCode.UNAUTHENTICATED
    for node in (city, county):  # every node on the way holds the list too
        assert node.node.core.revocations.revoked("371100", added[0])
    with GovnetClient(town.address) as honest:  # and nobody else is refused
        honest.sync_status()


def _children(node: InProcessNode) -> set[str]:
    with GovnetClient(node.address) as c:
        return {link.neighbour for link in c.sync_status().links if link.direction == "down"}


def test_a_county_ca_enrols_a_township_while_the_city_is_down(nodes, tmp_path: Path, city_pki: Path) -> None:
    county_ca = pki.create_intermediate(tmp_path / "county-ca", city_pki / "ca", "371102")
    county = nodes("371102", "county", parent="127.0.0.1:1")  # its city is nowhere
    town = nodes("371102001", "township", parent=county.address, ca=county_ca.directory)
    wait_for(lambda: "371102001" in _children(county), 15, lambda: "the county-enrolled township never registered")
    # and the county's CA cannot make a node of another county, at issue time ...
    with pytest.raises(pki.PkiError, match="outside the subtree"):
        pki.enrol_node(tmp_path / "x", "371103001", "township", county_ca.directory)
    assert town.node.core.tls is not None and town.node.core.tls.certificate.issuer == county_ca.cert.subject


def test_a_county_ca_certificate_forged_for_another_county_is_refused_at_verify_time(nodes, tmp_path: Path,
                                                                                       city_pki: Path) -> None:
    county_ca = pki.create_intermediate(tmp_path / "county-ca", city_pki / "ca", "371102")
    other = nodes("371103", "county", parent="127.0.0.1:1")
    # ... and when its key signs one anyway (by hand, past `issue`), the verifier refuses it
    identity = pki.node_identity("371103001", "township")
    request = pki.make_request(tmp_path / "forged" / "tls" / "node.key", identity)
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = datetime.now(UTC)
    forged = (x509.CertificateBuilder().subject_name(pki._subject(identity)).issuer_name(county_ca.cert.subject)
              .public_key(request.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
              .add_extension(pki._names(identity), critical=False)
              .add_extension(x509.ExtendedKeyUsage(list(identity.usages)), critical=False)
              .sign(county_ca.key, hashes.SHA256()))
    folder = tmp_path / "forged" / "tls"
    (folder / "node.crt").write_bytes(pki.cert_pem(forged) + pki.cert_pem(county_ca.cert))
    (folder / "ca.crt").write_bytes(pki.cert_pem(county_ca.root))
    with pytest.raises(LinkDown, match="UNAUTHENTICATED.*outside the subtree"):
        hello(transport_as(tmp_path / "forged", "371103001", other), "371103001", "township")
    assert refused(other, "outside_subtree") == 1


def test_a_plaintext_node_says_so_in_its_log_and_metrics(nodes, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="govnet.node"):
        county = nodes("371102", "county", parent="127.0.0.1:1", tls={"plaintext": True})
    assert [r for r in caplog.records if "plaintext" in r.getMessage()], caplog.text
    metric = county.node.metrics.registry.get_sample_value
    assert metric("govnet_tls_plaintext") == 1
    with grpc.insecure_channel(county.address) as channel:
        sync_pb2_grpc.SyncServiceStub(channel).Status(sync_pb2.SyncStatusRequest(), timeout=5)
        hello = sync_pb2.HelloRequest(node_id="371102001", level="township", protocol_version=PROTOCOL_VERSION,
                                      incarnation=1)
        assert sync_pb2_grpc.SyncServiceStub(channel).Hello(hello, timeout=5).node_id == "371102"  # nobody is checked


def test_a_node_with_tls_exports_days_to_its_certificates_expiry(nodes) -> None:
    county = nodes("371102", "county", parent="127.0.0.1:1")
    metric = county.node.metrics.registry.get_sample_value
    assert metric("govnet_tls_plaintext") == 0
    assert 364 * 86400 < metric("govnet_certificate_expiry_seconds") <= 365 * 86400


def test_a_node_with_neither_certificate_nor_plaintext_refuses_to_start_saying_what_to_add(loop: BackgroundLoop,
                                                                                            tmp_path: Path) -> None:
    data = init_node(tmp_path / "county", "371102", "county", "127.0.0.1:1")
    (data / "tls" / "node.crt").unlink()
    with pytest.raises(StartError) as info:
        start_in_process(loop, data)
    message = str(info.value)
    assert "\n" not in message and "govnet pki request --data-dir" in message and "tls.plaintext = true" in message
