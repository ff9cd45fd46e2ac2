"""Who an applicant can be sealed to, and opening what was sealed to this node (issue #12 point 6).

Where personal data lands, before this module (a village case decided at the county, measured
by grepping the raw SQLite files of a 4-level in-process federation for the ID number): at the
village (its case, its outbox row of the transfer), at the **township** (the transfer in its
inbox and its outbox until acknowledged, and in freed pages after), and at the county (its case).
The township is no party to the case. Now the node that makes a ``transfer`` or a ``copy``
seals the applicant to the target (``node.domain.sealed``), so relays store and forward only a
box they cannot open; the target opens it when it applies the case and stores it in clear, as
the owner must (the clerk who decides sees the applicant).

Decisions:

* **Whose certificates a node knows.** Its own (the files its ``[tls]`` section names) and its
  ancestors': each node sends a child a ``certificates`` envelope (its own chain and the
  ancestors' chains it holds) when the child registers, on the child's first hello after the
  parent's start (and whenever the bundle changed since it was last queued for that child: a
  renewal), and to every child whenever it learns a new one from its parent — so a tree enrolled
  in any order, or upgraded after its children registered, converges by itself. A repeat costs a
  few kilobytes and is ignored by a child that holds it. A certificate is believed only if it
  chains to the city's root (directly, or through a county CA the root signed), is valid now,
  lies in its issuer's subtree, is not revoked, and names an ancestor of this node. They are
  kept as files (``tls/known/<node id>.pem``; public data, no table needed).
* **Escalation** re-seals: the owner holds the applicant in clear and seals it to the new owner.
* **A target whose certificate is not known yet** (a village that takes cases before its first
  contact with its parent, or before its parent sent it certificates): the applicant is
  **withheld** — the case travels without it, its owner shows the fields empty, and it is never
  sent in clear by a node that has a certificate. The origin notes it as **owed**
  (``applicant_owed``) and, as soon as it learns the owner's certificate, sends an ``applicant``
  envelope: the three fields sealed to the case's owner *as the origin knows it then*; the owner
  fills an applicant it lacks and keeps one it holds (idempotent). (An owner escalates straight
  to the item's authority, re-sealing what it holds; there is no take-over by an ancestor after
  silence in this tree today. If one is added, the origin hearing of it should ``owe`` the case.)
* **Custody.** A case its receiving node owns itself goes to the parent whole, the applicant
  sealed to the receiving node's own key (``for_custody``): the parent keeps a box it cannot
  open and sends it back unopened to the node restored from a backup, which opens it (a node
  re-enrolled with a new key since takes the case without the applicant, as below).
* **A ``copy`` back down to a restored origin** from its owner is always withheld: nodes know their ancestors'
  certificates, never their descendants'. The restored origin shows the case with the applicant
  empty (its backup may still hold it, for cases taken before the backup); it is not re-sent.
* **Plaintext nodes** (no certificate files: the local demo before enrolment, in-process tests
  that build nodes without a PKI) cannot be sealed to and cannot open a box; a node *without its
  own certificate* sends the applicant in clear as before, with one warning in the log. A node
  that has its own certificate never does, whatever ``tls.plaintext`` says about its transport.
* A box that does not open here (sealed to another key: the node re-enrolled with a new key, or
  altered on the way): the case is still taken — its deadline runs — with the applicant withheld,
  and one warning that names the receipt, never the applicant.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from govnet.federation.tree import is_ancestor
from govnet.node.domain.certificates import CertificateRefused, Revoked, check_certificate, subtree_of
from govnet.node.domain.messages import (
    PERSONAL_FIELDS,
    ApplicantMessage,
    CaseSnapshot,
    CertificatesMessage,
    MessageError,
    Personal,
)
from govnet.node.domain.sealed import Sealed, SealError, context, open_sealed, seal
from govnet.node.store import applicants, replicas
from govnet.node.store.outbox import send
from govnet.node.store.unit import StoreMeta, Unit

log = logging.getLogger("govnet.keyring")
KNOWN_DIR = "known"  # under the node's tls directory
URGENT, NORMAL = 2, 0


def _pem(certs: list[x509.Certificate]) -> str:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs).decode("ascii")


class Keyring:
    """This node's private key (if enrolled) and the ancestors' certificates it has believed."""

    def __init__(self, node_id: str, *, key: ec.EllipticCurvePrivateKey | None = None,
                 chain: list[x509.Certificate] | None = None, root: x509.Certificate | None = None,
                 folder: Path | None = None, revoked: Revoked | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.node_id = node_id
        self.key = key
        self.chain = chain or []
        self.root = root
        self.folder = folder
        self.revoked: Revoked = revoked or (lambda issuer, serial: False)
        self.clock = clock
        self.meta: StoreMeta | None = None  # set when the node is built (to send envelopes down)
        self._lock = threading.Lock()
        self._known: dict[str, list[x509.Certificate]] = {}  # ancestor id -> its chain (leaf first)
        self._warned = False
        self._bundle: tuple[str, str] | None = None  # (PEM, digest), until the next certificate learned
        self._sent: dict[str, str] = {}  # child -> digest of the bundle last queued for it (this process)
        self.withheld = 0  # applicants not sent (no certificate for the target), since start
        if folder is not None and folder.is_dir():
            for path in sorted(folder.glob("*.pem")):
                try:
                    self.learn(path.read_text(encoding="ascii"), persist=False)
                except (ValueError, OSError):
                    continue

    @classmethod
    def load(cls, node_id: str, data_dir: Path, ca: str, cert: str, key: str, *, revoked: Revoked | None = None,
             clock: Callable[[], datetime] | None = None) -> Keyring:
        """The node's keyring from its ``[tls]`` files; without them, one that cannot seal or open."""
        paths = [Path(p) if Path(p).is_absolute() else data_dir / p for p in (ca, cert, key)]
        folder = paths[1].parent / KNOWN_DIR
        if not all(p.is_file() for p in paths):
            return cls(node_id, folder=None)
        try:
            root = x509.load_pem_x509_certificates(paths[0].read_bytes())[0]
            chain = x509.load_pem_x509_certificates(paths[1].read_bytes())
            private = serialization.load_pem_private_key(paths[2].read_bytes(), password=None)
        except ValueError:
            return cls(node_id, folder=None)  # the TLS loader says what is wrong with them, loudly
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            return cls(node_id, folder=None)
        return cls(node_id, key=private, chain=chain, root=root, folder=folder, revoked=revoked, clock=clock)

    @property
    def enrolled(self) -> bool:
        return self.key is not None

    def knows(self, node_id: str) -> bool:
        return node_id in self._known

    # --- sealing and opening ---

    def seal_for(self, case: CaseSnapshot, target: str) -> CaseSnapshot:
        """``case`` as it may leave this node for ``target``: the applicant sealed to it, withheld,
        or (from a node without a certificate) in clear."""
        if not isinstance(case.personal, Personal):
            return case  # nothing in clear to protect (withheld, or already sealed by someone else)
        chain = self._known.get(target)
        if chain:
            pub = chain[0].public_key()
            if isinstance(pub, ec.EllipticCurvePublicKey):
                return case.with_personal(seal(case.personal.plain(), pub, target, context(case.receipt, target)))
        if self.key is None:
            if not self._warned:
                self._warned = True
                log.warning("this node has no certificate: applicants travel in clear to their owners (enrol the "
                            "node with govnet pki to seal them)")
            return case
        self.withheld += 1
        log.warning("applicant withheld: no certificate known for the target yet",
                    extra={"receipt": case.receipt, "target": target})
        return case.with_personal(None)

    def for_custody(self, case: CaseSnapshot) -> CaseSnapshot:
        """``case`` as it goes to the parent that keeps it in custody: the applicant sealed to this
        node itself, so only this node (restored from a backup, with the same key) opens it again.
        A node without a certificate sends it in clear, as it sends everything."""
        if not isinstance(case.personal, Personal) or self.key is None:
            return case
        return case.with_personal(seal(case.personal.plain(), self.key.public_key(), self.node_id,
                                       context(case.receipt, self.node_id)))

    def leaving(self, s: Unit, case: CaseSnapshot, target: str, now: datetime) -> CaseSnapshot:
        """``seal_for``, in the unit of work that sends it: an applicant this node received and
        had to withhold is noted as owed, to be sent sealed once the target's certificate is known."""
        out = self.seal_for(case, target)
        if isinstance(case.personal, Personal) and out.personal is None and case.origin == self.node_id:
            applicants.owe(s, case.receipt, now)
        return out

    def open_case(self, case: CaseSnapshot) -> CaseSnapshot:
        """``case`` with a box sealed to this node opened (or the applicant withheld if it does not open)."""
        box = case.personal
        if not isinstance(box, Sealed):
            return case
        if self.key is None or box.to != self.node_id:
            log.warning("sealed applicant not for this node: case taken without it",
                        extra={"receipt": case.receipt, "sealed_to": box.to})
            return case.with_personal(None)
        try:
            return case.with_personal(Personal.from_plain(open_sealed(box, self.key, context(case.receipt,
                                                                                                 self.node_id))))
        except (SealError, MessageError) as exc:
            log.warning("sealed applicant does not open: case taken without it",
                        extra={"receipt": case.receipt, "error": str(exc)})
            return case.with_personal(None)

    # --- applicants owed to their owners ---

    def pay(self, s: Unit, now: datetime, only: str | None = None) -> int:
        """Send each owed applicant (or only ``receipt``'s) sealed to the case's owner as this
        node knows it now, if its certificate is known; returns how many were sent."""
        if self.key is None or self.meta is None:
            return 0  # nothing to seal with (a node without a certificate sent them in clear)
        sent = 0
        for receipt in [only] if only is not None else applicants.owed(s):
            row = replicas.case_row(s, receipt)
            values = {f: getattr(row, f) for f in PERSONAL_FIELDS} if row is not None else {}
            if row is None or row.owner == self.node_id or not any(values.values()):
                applicants.paid(s, receipt)  # nothing to send, or nobody else to send it to
                continue
            chain = self._known.get(row.owner)
            pub = chain[0].public_key() if chain else None
            if not isinstance(pub, ec.EllipticCurvePublicKey):
                continue  # not known yet: sent when it is
            box = seal(Personal(**values).plain(), pub, row.owner, context(receipt, row.owner))
            send(s, self.meta, target=row.owner, message=ApplicantMessage(receipt, box), case_key=receipt,
                 priority=NORMAL, now=now)
            applicants.paid(s, receipt)
            sent += 1
        if sent:
            log.info("withheld applicants sent sealed to their owners", extra={"cases": sent})
        return sent

    def take(self, s: Unit, message: ApplicantMessage) -> None:
        """An applicant sent sealed to this node for a case it owns (or owned): filled in if the
        case has none, otherwise left as held. One that does not open is dropped with a warning."""
        box = message.sealed
        if self.key is None or box.to != self.node_id:
            log.warning("sealed applicant not for this node: dropped",
                        extra={"receipt": message.receipt, "sealed_to": box.to})
            return
        try:
            personal = Personal.from_plain(open_sealed(box, self.key, context(message.receipt, self.node_id)))
        except (SealError, MessageError) as exc:
            log.warning("sealed applicant does not open: dropped", extra={"receipt": message.receipt,
                                                                           "error": str(exc)})
            return
        if applicants.fill_applicant(s, message.receipt, {f: getattr(personal, f) for f in PERSONAL_FIELDS}):
            log.info("withheld applicant received", extra={"receipt": message.receipt})

    # --- certificates ---

    def learn(self, bundle: str, *, persist: bool = True) -> list[str]:
        """Believe the ancestors' certificates in ``bundle`` (PEM) that check out; returns the ids
        newly learned. Raises ``ValueError`` for a bundle that is not PEM."""
        if self.root is None:
            return []
        certs = x509.load_pem_x509_certificates(bundle.encode("ascii"))
        now = self.clock() if self.clock is not None else datetime.now().astimezone()
        cas = {self.root.subject: self.root}
        for c in certs:  # county CAs, signed by the root
            if c.subject != self.root.subject and _is_ca(c):
                try:
                    c.verify_directly_issued_by(self.root)
                    subtree_of(c.subject)
                except (ValueError, TypeError, CertificateRefused, Exception):  # noqa: BLE001 any failure: not believed
                    continue
                cas[c.subject] = c
        learned = []
        for c in certs:
            if _is_ca(c):
                continue
            issuer = cas.get(c.issuer)
            if issuer is None:
                continue
            try:
                c.verify_directly_issued_by(issuer)
                identity, _ = check_certificate(c, now, self.revoked)
            except (CertificateRefused, ValueError, TypeError, Exception):  # noqa: BLE001 any failure: not believed
                continue
            if identity.kind != "node" or not is_ancestor(identity.name, self.node_id):
                continue
            chain = [c] + ([issuer] if issuer is not self.root else [])
            with self._lock:
                held = self._known.get(identity.name)
                if held and held[0].serial_number == c.serial_number:
                    continue
                if held and held[0].not_valid_before_utc > c.not_valid_before_utc:
                    continue  # an older certificate than the one held
                self._known[identity.name] = chain
                self._bundle = None
            learned.append(identity.name)
            if persist and self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp = self.folder / f".{identity.name}.pem.tmp"
                tmp.write_text(_pem(chain), encoding="ascii")
                os.replace(tmp, self.folder / f"{identity.name}.pem")
        return learned

    def bundle(self) -> str:
        """This node's chain and every ancestor's it holds (what its children need to seal upward)."""
        return self._held()[0]

    def _held(self) -> tuple[str, str]:
        with self._lock:
            if self._bundle is None:
                pem = "".join(_pem(c) for c in [self.chain, *self._known.values()] if c)
                self._bundle = (pem, hashlib.sha256(pem.encode("ascii")).hexdigest())
            return self._bundle

    # --- the ``certificates`` envelope (down the tree) ---

    def apply(self, s: Unit, message: CertificatesMessage, now: datetime) -> None:
        """Certificates from the parent: believe what checks out; if anything was new, send the
        children this node's bundle (which now includes it)."""
        try:
            learned = self.learn(message.bundle)
        except ValueError as exc:
            raise ValueError(f"not a PEM bundle: {exc}") from None
        if learned:
            log.info("ancestors' certificates learned", extra={"nodes": ",".join(learned)})
            for child in replicas.child_ids(s):
                self.send_held(s, child, now)
            self.pay(s, now)  # applicants withheld for want of these

    def lacks(self, child: str) -> bool:
        """Whether ``child`` may lack this node's bundle: not queued for it by this process, or
        changed since (``node.app.links.ChildFeed``). So a child that registered before
        certificates travelled (an upgrade), or whose parent renewed its certificate, gets them on
        its next hello after the parent's restart; a child that holds them ignores the repeat."""
        if not self.chain or self.meta is None:
            return False
        return self._sent.get(child) != self._held()[1]

    def send_held(self, s: Unit, child: str, now: datetime) -> None:
        """This node's bundle, to a child (when it registers, when the bundle grows, and on the
        first hello of each child after a start)."""
        if not self.chain or self.meta is None:
            return
        pem, digest = self._held()
        send(s, self.meta, target="", message=CertificatesMessage(pem), case_key="certificates",
             priority=URGENT, now=now, link=child)
        # Noted before the commit: a unit of work undone leaves it unsent until the next start
        # (or the next certificate learned), never sent twice in a loop.
        self._sent[child] = digest


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
