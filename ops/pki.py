"""The city's certificates: a root CA, counties' intermediate CAs, node and client certificates,
renewal and revocation (``govnet pki …``; the ``cryptography`` package; EC P-256 keys, which
gRPC's TLS accepts everywhere).

A **CA directory** holds ``ca.key`` (mode 0600: the only copy of the CA's key), ``ca.crt``,
``root.crt`` (the city's root, the trust anchor every node and client keeps; the root CA's own
certificate in the root's directory), ``issued.jsonl`` (one line per certificate issued: serial,
name, expiry; what ``revoke --node`` looks up) and, once something is revoked, ``revoked.json``
and ``revocations.crl``.

A node's key is made **on the node**: ``govnet pki request`` writes ``tls/node.key`` (0600) and
``tls/node.csr`` into its data directory; only the signing request travels to the CA, and only
the certificate comes back (``govnet pki issue`` writes ``node.crt`` — the leaf followed by the
issuing intermediate, if any, which the peer needs to build the chain — and ``ca.crt``, the root,
beside the request). Names inside the certificates: ``node.domain.certificates``.

A county's **intermediate CA** (``govnet pki intermediate``) is ``CA:true, pathlen 0`` and named
after the county: it issues only for nodes of the county's subtree (``issue`` refuses the rest,
and every verifier refuses a leaf outside its issuer's subtree), so a county can enrol a new
township or village while the city is unreachable.

**Revocation**: ``govnet pki revoke`` adds serials to the CA's list and writes
``revocations.crl``: an X.509 CRL signed by the CA (its number grows with each change) followed by
the CA's certificate, so a node can check the list against the root it trusts. Dropped into the
``tls/revocations/`` folder of a node (the city's, for the root's list; a county's, for its own),
the node takes it in and sends it down its subtree with sync; every node then refuses the revoked
certificates on every call (gRPC checks no revocation lists itself). ``govnet pki renew`` gives a
certificate a new validity period for the same key and names.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from govnet.federation.tree import Level, NodeIdError, level_of
from govnet.node.domain.certificates import (
    CertificateRefused,
    Identity,
    ca_name,
    check_subtree,
    client_identity,
    identity_of,
    node_identity,
    requested_identity,
    subtree_of,
)
from govnet.node.process.tls import KEY_FILE, REQUEST_FILE, TLS_DIR

ROOT_DAYS = 3650
INTERMEDIATE_DAYS = 1825
LEAF_DAYS = 365
BACKDATE = timedelta(hours=1)  # a little slack for clocks that run behind
CRL_DAYS = 30  # when a list says its next update is due; nodes keep using the newest they hold


class PkiError(Exception):
    """One line: what is wrong and what to do."""


# --- files ---

def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by the owner only, from the first byte (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise PkiError(f"{path}: no key here") from None
    except ValueError as exc:
        raise PkiError(f"{path}: not a PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path}: not an EC key")
    return key


def load_certs(path: Path) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except FileNotFoundError:
        raise PkiError(f"{path}: no certificate here") from None
    except ValueError as exc:
        raise PkiError(f"{path}: not a PEM certificate ({exc})") from None
    return certs


def load_cert(path: Path) -> x509.Certificate:
    return load_certs(path)[0]


# --- the CA ---

@dataclass(frozen=True)
class Ca:
    directory: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    root: x509.Certificate
    subtree: str

    @property
    def is_root(self) -> bool:
        return self.cert == self.root

    @property
    def chain(self) -> list[x509.Certificate]:
        """What goes after a leaf this CA signs: the intermediate itself (the root is each peer's own)."""
        return [] if self.is_root else [self.cert]


def load_ca(directory: Path) -> Ca:
    if not (directory / "ca.key").exists():
        raise PkiError(f"{directory}: no CA here (create one with 'govnet pki init {directory} --city ID')")
    cert = load_cert(directory / "ca.crt")
    try:
        subtree = subtree_of(cert.subject)
    except CertificateRefused as exc:
        raise PkiError(f"{directory}/ca.crt: {exc}") from None
    return Ca(directory, load_key(directory / "ca.key"), cert, load_cert(directory / "root.crt"), subtree)


def _ca_cert(subject_key: ec.EllipticCurvePrivateKey, subtree: str, issuer: Ca | None, days: int,
             now: datetime) -> x509.Certificate:
    public = subject_key.public_key()
    signer = issuer.key if issuer is not None else subject_key
    builder = (x509.CertificateBuilder()
               .subject_name(ca_name(subtree))
               .issuer_name(issuer.cert.subject if issuer is not None else ca_name(subtree))
               .public_key(public)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - BACKDATE)
               .not_valid_after(now + timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False, decipher_only=False),
                              critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False))
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    return builder.sign(signer, hashes.SHA256())


def init_ca(directory: Path, city: str, days: int = ROOT_DAYS, now: datetime | None = None) -> Ca:
    """The city's root CA in ``directory`` (refuses to overwrite an existing CA)."""
    try:
        if level_of(city) is not Level.CITY:
            raise PkiError(f"{city} is a {level_of(city)} id; the root CA is the city's (e.g. 371100)")
    except NodeIdError as exc:
        raise PkiError(str(exc)) from None
    if (directory / "ca.key").exists():
        raise PkiError(f"{directory}: a CA exists here already; remove it first to start over")
    key = new_key()
    cert = _ca_cert(key, city, None, days, now or datetime.now(UTC))
    _write_private(directory / "ca.key", key_pem(key))
    _write(directory / "ca.crt", cert_pem(cert))
    _write(directory / "root.crt", cert_pem(cert))
    return load_ca(directory)


def create_intermediate(directory: Path, root_dir: Path, subtree: str, days: int = INTERMEDIATE_DAYS,
                        now: datetime | None = None) -> Ca:
    """A county's intermediate CA in ``directory``, signed by the root CA of ``root_dir``;
    it may issue for ``subtree`` (the county) and the nodes below it only."""
    root = load_ca(root_dir)
    if not root.is_root:
        raise PkiError(f"{root_dir}: an intermediate CA cannot create another (only the city's root can)")
    try:
        level = level_of(subtree)
    except NodeIdError as exc:
        raise PkiError(str(exc)) from None
    if level is not Level.COUNTY:
        raise PkiError(f"{subtree} is a {level} id; intermediate CAs are counties'")
    try:
        check_subtree(root.subtree, node_identity(subtree))
    except CertificateRefused as exc:
        raise PkiError(str(exc)) from None
    if (directory / "ca.key").exists():
        raise PkiError(f"{directory}: a CA exists here already")
    key = new_key()
    cert = _ca_cert(key, subtree, root, days, now or datetime.now(UTC))
    _record(root, cert, f"ca:{subtree}")
    _write_private(directory / "ca.key", key_pem(key))
    _write(directory / "ca.crt", cert_pem(cert))
    _write(directory / "root.crt", cert_pem(root.root))
    return load_ca(directory)


# --- requests and certificates ---

def make_request(key_path: Path, identity: Identity) -> x509.CertificateSigningRequest:
    """A signing request for ``identity``, with the key at ``key_path`` (made there, 0600, if absent)."""
    key = load_key(key_path) if key_path.exists() else None
    if key is None:
        key = new_key()
        _write_private(key_path, key_pem(key))
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(_subject(identity))
            .add_extension(_names(identity), critical=False)
            .sign(key, hashes.SHA256()))


def request_node(data_dir: Path, node_id: str, level: str) -> Path:
    """On the node: its key (kept in ``DATA_DIR/tls``) and a signing request naming it."""
    try:
        identity = node_identity(node_id, level)
    except CertificateRefused as exc:
        raise PkiError(str(exc)) from None
    folder = data_dir / TLS_DIR
    csr = make_request(folder / KEY_FILE, identity)
    path = folder / REQUEST_FILE
    _write(path, csr.public_bytes(serialization.Encoding.PEM))
    return path


def request_client(directory: Path, name: str, role: str) -> Path:
    """An API client's key (``DIR/client.key``) and signing request (``DIR/client.csr``)."""
    try:
        identity = client_identity(name, role)
    except CertificateRefused as exc:
        raise PkiError(str(exc)) from None
    csr = make_request(directory / "client.key", identity)
    path = directory / "client.csr"
    _write(path, csr.public_bytes(serialization.Encoding.PEM))
    return path


def _subject(identity: Identity) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "govnet"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, identity.unit),
                      x509.NameAttribute(NameOID.COMMON_NAME, identity.common_name)])


def _names(identity: Identity) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.uri)]
    names += [x509.DNSName(d) for d in identity.dns_names]
    return x509.SubjectAlternativeName(names)


def sign(ca: Ca, identity: Identity, public_key: ec.EllipticCurvePublicKey, days: int = LEAF_DAYS,
         now: datetime | None = None, not_before: datetime | None = None) -> x509.Certificate:
    """A leaf certificate for ``identity`` signed by ``ca``; refused outside the CA's subtree."""
    try:
        check_subtree(ca.subtree, identity)
    except CertificateRefused as exc:
        raise PkiError(f"refused: {exc}") from None
    now = now or datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(_subject(identity))
            .issuer_name(ca.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - BACKDATE)
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                         crl_sign=False, content_commitment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage(list(identity.usages)), critical=False)
            .add_extension(_names(identity), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
            .sign(ca.key, hashes.SHA256()))
    _record(ca, cert, identity.uri)
    return cert


def _record(ca: Ca, cert: x509.Certificate, name: str) -> None:
    line = {"serial": f"{cert.serial_number:x}", "name": name, "not_after": cert.not_valid_after_utc.isoformat()}
    with open(ca.directory / "issued.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def issued(ca_dir: Path) -> list[dict[str, str]]:
    path = ca_dir / "issued.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def issue(csr_path: Path, ca_dir: Path, days: int = LEAF_DAYS, out: Path | None = None) -> Path:
    """Sign the request at ``csr_path``: writes the certificate (leaf + intermediate, if any) to
    ``out`` (default: beside the request, ``.crt``) and the root as ``ca.crt`` in the same folder."""
    ca = load_ca(ca_dir)
    try:
        csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    except FileNotFoundError:
        raise PkiError(f"{csr_path}: no signing request here") from None
    except ValueError as exc:
        raise PkiError(f"{csr_path}: not a PEM signing request ({exc})") from None
    if not csr.is_signature_valid:
        raise PkiError(f"{csr_path}: the request's signature does not match its key")
    try:
        identity = requested_identity(csr)
    except CertificateRefused as exc:
        raise PkiError(f"{csr_path}: {exc}") from None
    public = csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise PkiError(f"{csr_path}: the key is not an EC key")
    cert = sign(ca, identity, public, days)
    target = out or csr_path.with_suffix(".crt")
    _write(target, b"".join(cert_pem(c) for c in (cert, *ca.chain)))
    _write(target.parent / "ca.crt", cert_pem(ca.root))
    return target


def renew(cert_path: Path, ca_dir: Path, days: int = LEAF_DAYS) -> Path:
    """A new certificate for the same key and names (the old one is kept as ``.old``)."""
    ca = load_ca(ca_dir)
    old = load_cert(cert_path)
    try:
        identity = identity_of(old)
    except CertificateRefused as exc:
        raise PkiError(f"{cert_path}: {exc}") from None
    public = old.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise PkiError(f"{cert_path}: the key is not an EC key")
    cert = sign(ca, identity, public, days)
    cert_path.replace(cert_path.with_suffix(cert_path.suffix + ".old"))
    _write(cert_path, b"".join(cert_pem(c) for c in (cert, *ca.chain)))
    _write(cert_path.parent / "ca.crt", cert_pem(ca.root))
    return cert_path


def enrol_node(data_dir: Path, node_id: str, level: str, ca_dir: Path, days: int = LEAF_DAYS) -> Path:
    """Request and issue in one step (the launcher, the demo and tests, where the CA is at hand)."""
    return issue(request_node(data_dir, node_id, level), ca_dir, days)


def enrol_client(directory: Path, name: str, role: str, ca_dir: Path, days: int = LEAF_DAYS) -> Path:
    """An API client's folder: ``client.key``, ``client.crt``, ``ca.crt`` (what ``--certs`` names)."""
    return issue(request_client(directory, name, role), ca_dir, days, out=directory / "client.crt")


@dataclass(frozen=True)
class CityPki:
    ca: Path  # the root CA's directory
    client: Path  # an ops client certificate folder (what --certs / GOVNET_CERTS names)


def city_pki(base: Path, city: str) -> CityPki:
    """A root CA in ``base/ca`` and an ``ops`` client certificate in ``base/client``, each made
    if missing (the launcher, the demo and the benchmarks run their federations with it)."""
    pki = CityPki(base / "ca", base / "client")
    if not (pki.ca / "ca.key").exists():
        init_ca(pki.ca, city)
    if not (pki.client / "client.crt").exists():
        enrol_client(pki.client, "ops", "ops", pki.ca)
    return pki


# --- revocation ---

def revoke(ca_dir: Path, serials: list[int] | None = None, node: str | None = None,
           now: datetime | None = None) -> tuple[Path, list[int]]:
    """Add certificates to the CA's revocation list (by serial, or every node certificate issued for
    ``node``; a county's intermediate CA is revoked by its serial)
    and write the signed list, ``revocations.crl``. Returns its path and the serials added."""
    ca = load_ca(ca_dir)
    wanted = list(serials or [])
    if node is not None:
        found = [int(r["serial"], 16) for r in issued(ca_dir)
                 if r["name"].endswith(f":{node}") and r["name"].startswith("urn:govnet:node:")]
        if not found:
            raise PkiError(f"the CA in {ca_dir} has issued no certificate for node {node}")
        wanted += found
    if not wanted:
        raise PkiError("name a serial (hexadecimal, as 'govnet pki show' prints it) or --node ID")
    path = ca_dir / "revoked.json"
    state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"number": 0, "serials": {}}
    now = now or datetime.now(UTC)
    added = [s for s in wanted if f"{s:x}" not in state["serials"]]
    for s in added:
        state["serials"][f"{s:x}"] = now.isoformat()
    state["number"] += 1
    path.write_text(json.dumps(state, indent=1, sort_keys=True))
    out = ca_dir / "revocations.crl"
    _write(out, revocation_bundle(ca, state, now))
    return out, added


def revocation_bundle(ca: Ca, state: dict[str, Any], now: datetime) -> bytes:
    """The signed list (a PEM X.509 CRL, numbered) followed by the issuing CA's certificate."""
    serials = state["serials"]
    assert isinstance(serials, dict)
    number = state["number"]
    assert isinstance(number, int)
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca.cert.subject)
               .last_update(now)
               .next_update(now + timedelta(days=CRL_DAYS))
               .add_extension(x509.CRLNumber(number), critical=False))
    for serial, when in sorted(serials.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(int(serial, 16))
            .revocation_date(datetime.fromisoformat(str(when))).build())
    crl = builder.sign(ca.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM) + cert_pem(ca.cert)


# --- reading ---

def describe(cert: x509.Certificate) -> dict[str, str]:
    """What ``govnet pki show`` prints of a certificate."""
    try:
        name = str(identity_of(cert))
    except CertificateRefused:
        name = cert.subject.rfc4514_string()
    return {"name": name, "serial": f"{cert.serial_number:x}", "issuer": cert.issuer.rfc4514_string(),
            "not_before": cert.not_valid_before_utc.isoformat(), "not_after": cert.not_valid_after_utc.isoformat()}
