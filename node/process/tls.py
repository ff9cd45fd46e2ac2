"""Mutual TLS for a node: its gRPC server and its up-link, from the files its [tls] section names.

By default a node serves TLS only and *requires* a client certificate signed under the city's
root (``require_client_auth``): children, the CLI and the console all present one. Its up-link
presents the node's own certificate and accepts the parent only if the parent's certificate
names the parent's id (the DNS name ``<parent id>.node.govnet``, see
``node.domain.certificates``); what TLS cannot check — names, subtree, revocation, expiry on a
long-lived connection — ``node.rpc.peer`` checks on every call.

Plaintext only when the configuration says ``tls.plaintext = true``; then the node logs one
warning and exports ``govnet_tls_plaintext 1``. A node whose certificate files are missing does
not start, and its one-line error says how to enrol it or how to ask for plaintext.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import grpc
from cryptography import x509

from govnet.node.domain.certificates import NODE_DNS_SUFFIX, CertificateRefused, identity_of

TLS_DIR = "tls"  # in the data directory
KEY_FILE = "node.key"
REQUEST_FILE = "node.csr"
CERT_FILE = "node.crt"
CA_FILE = "ca.crt"
REVOCATIONS_DIR = "revocations"  # revocation lists dropped here are taken in and sent down (node.app.revocations)


class TlsError(Exception):
    """One line: which file is missing or wrong, and what to do."""


@dataclass(frozen=True)
class NodeTls:
    """A node's TLS material, read once at start."""

    root: bytes  # the city's root certificate (PEM): the trust anchor
    chain: bytes  # the node's certificate, then the issuing intermediate if any (PEM)
    key: bytes  # the node's private key (PEM)
    certificate: x509.Certificate  # the node's own leaf (parsed: its expiry is a metric)
    root_certificate: x509.Certificate

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key, self.chain)], root_certificates=self.root,
                                           require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.root, private_key=self.key,
                                            certificate_chain=self.chain)


def node_name(node_id: str) -> str:
    """The DNS name a node's certificate carries for its id: what a child expects of its parent."""
    return f"{node_id}{NODE_DNS_SUFFIX}"


def load_node_tls(data_dir: Path, ca: str, cert: str, key: str, node_id: str) -> NodeTls:
    """Read and check the node's files: the certificate must name ``node_id``."""
    paths = {name: (Path(p) if Path(p).is_absolute() else data_dir / p) for name, p in
             (("ca", ca), ("cert", cert), ("key", key))}
    missing = [f"tls.{name} ({path})" for name, path in paths.items() if not path.is_file()]
    if missing:
        raise TlsError(
            f"no TLS certificate for node {node_id}: missing {', '.join(missing)}; enrol the node with "
            f"'govnet pki request --data-dir {data_dir}' and 'govnet pki issue {data_dir / TLS_DIR / REQUEST_FILE} "
            f"--ca CA_DIR', or set tls.plaintext = true in govnet.toml (local tests only)")
    data = {name: path.read_bytes() for name, path in paths.items()}
    try:
        chain = x509.load_pem_x509_certificates(data["cert"])
        roots = x509.load_pem_x509_certificates(data["ca"])
    except ValueError as exc:
        raise TlsError(f"tls: {exc}: a certificate file is not PEM") from None
    try:
        identity = identity_of(chain[0])
    except CertificateRefused as exc:
        raise TlsError(f"tls.cert ({paths['cert']}): {exc}") from None
    if identity.kind != "node" or identity.name != node_id:
        raise TlsError(f"tls.cert ({paths['cert']}) names {identity}, not node {node_id}: issue one for this node")
    return NodeTls(data["ca"], data["cert"], data["key"], chain[0], roots[0])
