"""What a govnet certificate says, and the checks every verifier makes (pure: a certificate and
the time in, an identity or a refusal out).

Naming (chosen here, and the one place that knows it):

* a **node** certificate has the subject ``CN=<node id>, OU=<level>, O=govnet`` and two names
  in its subject alternative name: the URI ``urn:govnet:node:<level>:<node id>`` (what
  verifiers read) and the DNS names ``<node id>.node.govnet`` and ``node.govnet`` (what TLS
  clients check: a child expects ``<parent id>.node.govnet`` from its parent, the CLI, which
  does not know the id of the node it calls, expects ``node.govnet``). Its extended key usage
  allows both server and client authentication: a node serves its children and calls its parent.
* an **API client** certificate (the CLI, the console, scripts) has ``CN=<name>, OU=<role>`` and
  the URI ``urn:govnet:client:<role>:<name>``; client authentication only. Roles: ``ops``
  (node administration) and ``client`` (an application); accounts decide the rest.
* a **CA** certificate has ``CN=govnet CA <subtree>`` where the subtree is a node id: the city's
  root CA names the city, a county's intermediate CA names the county (``CA:true, pathlen 0``:
  it issues leaves only). Because the TLS handshake has already checked that the leaf was signed
  by the CA whose subject equals the leaf's issuer name, and only the root issues CA certificates
  (one subject per subtree), the leaf's *issuer name* tells a verifier which subtree the issuer
  may speak for. A node certificate whose node does not lie in its issuer's subtree is refused
  by ``check_certificate`` (and by ``govnet pki issue`` before it is ever signed).

Serial numbers are random (160 bits less one), so ``(issuer subtree, serial)`` names one
certificate; revocation lists are kept per issuer (``node.app.revocations``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from govnet.federation.tree import NodeIdError, in_subtree, level_of

URN = "urn:govnet:"
CA_PREFIX = "govnet CA "
NODE_DNS_SUFFIX = ".node.govnet"
ANY_NODE_DNS = "node.govnet"  # every node certificate carries it: what a client that does not know the id expects
CLIENT_ROLES = ("ops", "client")
KINDS = ("node", "client")

# Why a certificate is refused (the label of govnet_auth_refused_total{reason=…}).
UNKNOWN = "unknown"  # not a govnet certificate, or none at all
EXPIRED = "expired"  # outside its validity period
REVOKED = "revoked"
OUTSIDE_SUBTREE = "outside_subtree"  # a node its issuer has no authority over
WRONG_NODE = "wrong_node"  # names another node than the request claims (checked by the servicers)


class CertificateRefused(Exception):
    """A certificate a verifier will not accept; ``reason`` is one of the labels above."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    """Who a certificate names: a node (``name`` is its id, ``level`` its level) or an API client
    (``name`` and ``role``)."""

    kind: str  # "node" | "client"
    name: str
    level: str = ""  # nodes only
    role: str = ""  # clients only

    @property
    def uri(self) -> str:
        if self.kind == "node":
            return f"{URN}node:{self.level}:{self.name}"
        return f"{URN}client:{self.role}:{self.name}"

    @property
    def common_name(self) -> str:
        return self.name

    @property
    def unit(self) -> str:
        return self.level if self.kind == "node" else self.role

    @property
    def dns_names(self) -> tuple[str, ...]:
        return (f"{self.name}{NODE_DNS_SUFFIX}", ANY_NODE_DNS) if self.kind == "node" else ()

    @property
    def usages(self) -> tuple[x509.ObjectIdentifier, ...]:
        if self.kind == "node":
            return (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
        return (ExtendedKeyUsageOID.CLIENT_AUTH,)

    def __str__(self) -> str:
        return f"node {self.name} ({self.level})" if self.kind == "node" else f"client {self.name} ({self.role})"


def node_identity(node_id: str, level: str | None = None) -> Identity:
    """A node's identity; its level is its id's (a level that disagrees is an error)."""
    try:
        actual = level_of(node_id)
    except NodeIdError as exc:
        raise CertificateRefused(UNKNOWN, str(exc)) from None
    if level is not None and level != actual.value:
        raise CertificateRefused(UNKNOWN, f"node {node_id} is a {actual} id, not a {level}")
    return Identity("node", node_id, level=actual.value)


def client_identity(name: str, role: str) -> Identity:
    if role not in CLIENT_ROLES:
        raise CertificateRefused(UNKNOWN, f"client role {role!r} is not one of {', '.join(CLIENT_ROLES)}")
    if not name or ":" in name or not name.isascii() or not name.isprintable() or " " in name:
        raise CertificateRefused(UNKNOWN, f"client name {name!r} must be ASCII letters, digits and signs, "
                                          "without spaces or ':' (e.g. wangfang or ops-371102)")
    return Identity("client", name, role=role)


def parse_uri(uri: str) -> Identity:
    """The identity a ``urn:govnet:…`` name states (``CertificateRefused`` for anything else)."""
    if not uri.startswith(URN):
        raise CertificateRefused(UNKNOWN, f"{uri!r} is not a govnet name")
    kind, _, rest = uri[len(URN):].partition(":")
    qualifier, _, name = rest.partition(":")
    if kind == "node":
        return node_identity(name, qualifier)
    if kind == "client":
        return client_identity(name, qualifier)
    raise CertificateRefused(UNKNOWN, f"{uri!r} names neither a node nor a client")


def identity_of(cert: x509.Certificate) -> Identity:
    """The one govnet identity a certificate (or a signing request's names) states."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CertificateRefused(UNKNOWN, "the certificate names no govnet node or client") from None
    return _one_identity(san)


def requested_identity(csr: x509.CertificateSigningRequest) -> Identity:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CertificateRefused(UNKNOWN, "the signing request names no govnet node or client") from None
    return _one_identity(san)


def _one_identity(san: x509.SubjectAlternativeName) -> Identity:
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith(URN)]
    if len(uris) != 1:
        raise CertificateRefused(UNKNOWN, f"a govnet certificate names exactly one node or client, this one {len(uris)}")
    return parse_uri(uris[0])


def ca_name(subtree: str) -> x509.Name:
    """The subject of the CA that speaks for ``subtree`` (a city's root, a county's intermediate)."""
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "govnet"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"{CA_PREFIX}{subtree}")])


def subtree_of(name: x509.Name) -> str:
    """The subtree a CA's name speaks for (``CertificateRefused`` if it is no govnet CA's name)."""
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = cns[0].value if len(cns) == 1 else ""
    text = value if isinstance(value, str) else value.decode(errors="replace")
    subtree = text[len(CA_PREFIX):] if text.startswith(CA_PREFIX) else ""
    try:
        level_of(subtree)
    except NodeIdError:
        raise CertificateRefused(UNKNOWN, f"issued by {name.rfc4514_string()!r}, not a govnet CA") from None
    return subtree



def check_subtree(issuer_subtree: str, identity: Identity) -> None:
    """A CA may certify only nodes of its own subtree (clients are not placed in the tree)."""
    if identity.kind != "node":
        return
    if not in_subtree(identity.name, issuer_subtree):
        raise CertificateRefused(OUTSIDE_SUBTREE, f"{identity} lies outside the subtree of the CA of {issuer_subtree}, "
                                                  "which issued its certificate")


def check_validity(cert: x509.Certificate, now: datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise CertificateRefused(EXPIRED, f"certificate {cert.serial_number:x} is not valid before "
                                          f"{cert.not_valid_before_utc.isoformat()}")
    if now > cert.not_valid_after_utc:
        raise CertificateRefused(EXPIRED, f"certificate {cert.serial_number:x} expired at "
                                          f"{cert.not_valid_after_utc.isoformat()}")


Revoked = Callable[[str, int], bool]  # (issuer subtree, serial) -> revoked?


def check_certificate(cert: x509.Certificate, now: datetime, revoked: Revoked) -> tuple[Identity, str]:
    """What a verifier checks of a peer's leaf certificate beyond TLS's chain check: that it
    names one govnet node or client, is within its validity period now, lies within its
    issuer's subtree, and is not revoked. Returns the identity and the issuer's subtree."""
    identity = identity_of(cert)
    issuer = subtree_of(cert.issuer)
    check_validity(cert, now)
    check_subtree(issuer, identity)
    if revoked(issuer, cert.serial_number):
        raise CertificateRefused(REVOKED, f"certificate {cert.serial_number:x} of {identity} was revoked by the CA "
                                          f"of {issuer}")
    return identity, issuer
