"""The applicant sealed to the case's owner: what relays store and forward instead of the clear text.

Issue #12: an applicant's name, ID number and phone travel only between the receiving node and
the owner. A case handed from a village to the county passes through the township, which keeps
the envelope in its inbox and its outbox until both hops are acknowledged; those rows (and the
freed pages they leave in the SQLite file) must hold nothing a person can read. So the node that
puts personal data into an envelope encrypts it to the one node that may read it:

* **to whom**: the target's node certificate (EC P-256, the key generated on the node and never
  moved, ``ops.pki``). The sender learns its ancestors' certificates from its parent
  (``node.app.keyring``: a ``certificates`` envelope down the tree, each checked against the
  city's root before it is believed).
* **how**: ECIES — a fresh ephemeral P-256 key per envelope, ECDH with the target's public key,
  HKDF-SHA256 over the shared secret (salt: the ephemeral public key) to a 256-bit key, and
  AES-256-GCM over the applicant's JSON. The associated data binds the box to its case and
  its recipient (``context``: receipt and target), so a relay cannot move a sealed applicant
  onto another case or replay it to another node unnoticed: opening it there fails.
* **forward secrecy from the sender's side**: the ephemeral private key is dropped once the box
  is made; only the target's private key opens it (the sender keeps the clear copy it already
  had as the receiving node).

This module is pure (bytes and keys in, bytes out, no clock, no files). What goes inside is
decided by ``node.domain.messages`` (the applicant's three fields as JSON).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SCHEME = "p256-hkdf-sha256-aes256gcm"
_INFO = b"govnet sealed applicant v1"
_NONCE = 12


class SealError(ValueError):
    """A sealed value that cannot be opened here (another recipient, altered, or malformed)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise SealError(f"sealed applicant: {what} is not text")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise SealError(f"sealed applicant: {what} is not base64") from None


@dataclass(frozen=True)
class Sealed:
    """A box only ``to`` can open: the ephemeral public key, the nonce and the ciphertext (with
    its tag), in base64 (the wire is JSON)."""

    to: str
    key: str
    nonce: str
    box: str
    scheme: str = SCHEME

    def to_dict(self) -> dict[str, str]:
        return {"to": self.to, "key": self.key, "nonce": self.nonce, "box": self.box, "scheme": self.scheme}

    @classmethod
    def from_dict(cls, values: Any) -> Sealed:
        if not isinstance(values, dict):
            raise SealError("sealed applicant: not an object")
        fields = [values.get(f) for f in ("to", "key", "nonce", "box", "scheme")]
        texts = [v for v in fields if isinstance(v, str)]
        if len(texts) != len(fields):
            raise SealError("sealed applicant: needs to, key, nonce, box and scheme (text)")
        if texts[4] != SCHEME:
            raise SealError(f"sealed applicant: unknown scheme {texts[4]!r}")
        return cls(*texts)


def context(receipt: str, target: str) -> bytes:
    """The associated data: which case, for which node."""
    return f"govnet-applicant|{receipt}|{target}".encode()


def _key(secret: bytes, ephemeral: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral, info=_INFO).derive(secret)


def seal(plain: bytes, recipient: ec.EllipticCurvePublicKey, to: str, associated: bytes) -> Sealed:
    """``plain`` encrypted so that only the holder of ``recipient``'s private key opens it."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    public = ephemeral.public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint)
    key = _key(ephemeral.exchange(ec.ECDH(), recipient), public)
    nonce = os.urandom(_NONCE)
    box = AESGCM(key).encrypt(nonce, plain, associated)
    return Sealed(to, _b64(public), _b64(nonce), _b64(box))


def open_sealed(sealed: Sealed, private: ec.EllipticCurvePrivateKey, associated: bytes) -> bytes:
    """The plain bytes of ``sealed``; ``SealError`` if this key or this context does not open it."""
    public = _unb64(sealed.key, "key")
    nonce = _unb64(sealed.nonce, "nonce")
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    except ValueError:
        raise SealError("sealed applicant: the ephemeral key is not a P-256 point") from None
    key = _key(private.exchange(ec.ECDH(), peer), public)
    try:
        return AESGCM(key).decrypt(nonce, _unb64(sealed.box, "box"), associated)
    except (InvalidTag, ValueError):
        raise SealError(f"sealed applicant for {sealed.to}: does not open with this node's key "
                        "(another recipient, another case, or altered)") from None
