"""Revocation lists: taken in at a node, checked, kept, and sent down its whole subtree.

A CA's list (``ops.pki``: a signed X.509 CRL followed by the CA's certificate) enters the
network at one node — dropped into its ``tls/revocations/`` folder (the city's for the root's
list, a county's for its intermediate's) — and travels down with sync as a ``revocation``
envelope to every child, which keeps it and sends it on to its own children. Every node
checks a list before it believes it: the CA's certificate must be the city's root or signed
by it, and the list signed by that CA; a list whose number is not higher than the one held
for that CA changes nothing (applying is idempotent, and an old copy arriving late never
un-revokes anything). A list that fails its checks is refused (the envelope is quarantined
with the reason).

``revoked(issuer, serial)`` is what ``node.rpc.peer`` asks on every call: an in-memory set,
rebuilt from the store at start and grown as lists are applied.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from govnet.node.app.replication import URGENT
from govnet.node.domain.certificates import CertificateRefused, subtree_of
from govnet.node.domain.messages import RevocationMessage
from govnet.node.store import replicas
from govnet.node.store import revocations as lists_store
from govnet.node.store.engine import Store
from govnet.node.store.outbox import send
from govnet.node.store.unit import StoreMeta, Unit

log = logging.getLogger("govnet.auth")



class RevocationError(ValueError):
    """A list this node will not believe; the text says why."""


def read_bundle(bundle: str, root: x509.Certificate | None) -> tuple[str, int, frozenset[int]]:
    """Check a list against the city's ``root``: (issuer subtree, number, serials revoked)."""
    if root is None:
        raise RevocationError("this node has no root certificate (plaintext) to check a revocation list with")
    data = bundle.encode()
    start = data.find(b"-----BEGIN X509 CRL-----")
    end = data.find(b"-----END X509 CRL-----")
    if start < 0 or end < 0:
        raise RevocationError("the bundle holds no PEM X.509 CRL")
    try:
        crl = x509.load_pem_x509_crl(data[start:end + len(b"-----END X509 CRL-----")])
        certs = x509.load_pem_x509_certificates(data[end:])
    except ValueError as exc:
        raise RevocationError(f"the bundle cannot be read: {exc}") from None
    ca = certs[0]
    if ca != root:
        try:
            ca.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            raise RevocationError(f"the list's CA ({ca.subject.rfc4514_string()}) is not the city's root nor "
                                  "signed by it") from None
    public = ca.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(public):
        raise RevocationError("the list's signature does not match its CA")
    if crl.issuer != ca.subject:
        raise RevocationError("the list names another CA than the certificate beside it")
    try:
        issuer = subtree_of(ca.subject)
    except CertificateRefused as exc:
        raise RevocationError(str(exc)) from None
    try:
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        raise RevocationError("the list has no number") from None
    return issuer, number, frozenset(r.serial_number for r in crl)


class Revocations:
    """The lists this node holds, in memory for the per-call check, and their applying."""

    def __init__(self, store: Store, root: x509.Certificate | None) -> None:
        self.store = store
        self.root = root
        self._lock = threading.Lock()
        self._revoked: dict[str, frozenset[int]] = {}
        self._seen_files: dict[Path, float] = {}
        with store.reading() as s:
            for row in lists_store.lists(s):
                try:
                    issuer, _, serials = read_bundle(row.bundle, root)
                except RevocationError:
                    continue  # kept by a node that could not check it (plaintext then): not believed here
                self._revoked[issuer] = serials

    def revoked(self, issuer: str, serial: int) -> bool:
        return serial in self._revoked.get(issuer, frozenset())

    def count(self) -> int:
        return sum(len(v) for v in self._revoked.values())

    def apply(self, s: Unit, message: RevocationMessage, now: datetime) -> None:
        """A list from the parent (or taken in here): keep it if newer, and send it to every child."""
        try:
            issuer, number, serials = read_bundle(message.bundle, self.root)
        except RevocationError as exc:
            raise ValueError(str(exc)) from None
        if issuer != message.issuer or number != message.number:
            raise ValueError(f"the envelope says list {message.number} of {message.issuer}, the bundle "
                             f"{number} of {issuer}")
        if not lists_store.keep_newer(s, issuer, number, message.bundle, now):
            return
        with self._lock:
            old = self._revoked.get(issuer, frozenset())
            self._revoked[issuer] = old | serials  # never un-revoke, even if the transaction is undone
        meta = self.store.meta
        log.info("revocation list applied", extra={"issuer": issuer, "number": number, "revoked": len(serials)})
        for child in replicas.child_ids(s):
            send_to(s, meta, child, message, now)

    def send_held(self, s: Unit, child: str, now: datetime) -> None:
        """Every list held here, to a child that just registered (it may have joined after them)."""
        for row in lists_store.lists(s):
            send_to(s, self.store.meta, child, RevocationMessage(row.issuer, row.number, row.bundle), now)

    def take_in(self, folder: Path, now: datetime) -> int:
        """Apply the lists dropped into ``folder`` that are new or changed; returns how many were read."""
        if not folder.is_dir():
            return 0
        taken = 0
        for path in sorted(folder.glob("*.crl")):
            mtime = path.stat().st_mtime
            if self._seen_files.get(path) == mtime:
                continue
            self._seen_files[path] = mtime
            bundle = path.read_text(encoding="utf-8", errors="replace")
            try:
                issuer, number, _ = read_bundle(bundle, self.root)
            except RevocationError as exc:
                log.warning("revocation list refused", extra={"file": str(path), "error": str(exc)})
                continue
            with self.store.transaction() as s:
                self.apply(s, RevocationMessage(issuer, number, bundle), now)
            taken += 1
        return taken


def send_to(s: Unit, meta: StoreMeta, child: str, message: RevocationMessage, now: datetime) -> None:
    send(s, meta, target="", message=message, case_key=f"revocation:{message.issuer}", priority=URGENT, now=now,
         link=child)
