"""Who is calling: the authenticated peer of every call, from its TLS client certificate.

The TLS handshake (``node.process.tls``) has already refused a peer without a certificate
or with one that does not chain to the city's root. What it cannot check is checked here,
on every call, by ``AuthInterceptor``: that the certificate names one govnet node or client,
is still valid now (a connection may outlive its certificate), lies in its issuer's subtree
(a county's intermediate CA speaks only for its county), and is not revoked (gRPC reads no
revocation lists; ``node.app.revocations`` keeps ours, and every certificate of the peer's
chain is looked up). A refusal is UNAUTHENTICATED, one log line and
``govnet_auth_refused_total{reason=…}``; the servicer never runs.

Servicers get the caller with ``peer_of(context)`` (one function; accounts, authorization of
envelopes and rate limits build on it). ``check_claim`` is what the sync servicer asks at the
start of Hello, Push, Pull and Digest: the certificate must name the node the request claims
to be, and that node must be a child of this one — otherwise PERMISSION_DENIED, logged and
counted the same way.

A node configured with ``tls.plaintext = true`` has no certificates to read: its peer is
``PLAINTEXT`` and nothing is checked (that mode is a local test's, and says so loudly).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc
from cryptography import x509

from govnet.federation.tree import NodeIdError, check_child
from govnet.node.domain.certificates import (
    EXPIRED,
    REVOKED,
    UNKNOWN,
    WRONG_NODE,
    CertificateRefused,
    Revoked,
    check_certificate,
    subtree_of,
)
from govnet.node.domain.clock import Clock

log = logging.getLogger("govnet.auth")

CACHE_SIZE = 4096  # parsed certificates kept (a node has a parent, its children and a few clients)


@dataclass(frozen=True)
class Peer:
    """The caller. ``kind``: "node", "client", or "plaintext" (TLS is off: nobody is known)."""

    kind: str
    name: str  # a node's id, or a client's name
    level: str = ""  # nodes
    role: str = ""  # clients ("ops", "client")
    serial: int = 0
    issuer: str = ""  # the subtree of the CA that issued the certificate

    @property
    def node_id(self) -> str:
        return self.name if self.kind == "node" else ""

    def __str__(self) -> str:
        if self.kind == "plaintext":
            return "an unauthenticated peer (plaintext)"
        return f"{self.kind} {self.name} ({self.level or self.role}, certificate {self.serial:x})"


PLAINTEXT = Peer("plaintext", "")


@dataclass(frozen=True)
class _Known:
    peer: Peer
    not_before: datetime
    not_after: datetime
    cas: tuple[tuple[str, int, str], ...]  # (issuer subtree, serial, subject) of each CA above the leaf


class Verifier:
    """Checks a peer's certificates against the time and the revocation lists; counts refusals."""

    def __init__(self, revoked: Revoked, clock: Clock, plaintext: bool = False) -> None:
        self.revoked = revoked
        self.clock = clock  # wall time: certificates are valid in real time, whatever a simulation's clock says
        self.plaintext = plaintext
        self.refused: Counter[str] = Counter()  # reason -> calls refused (read by the metrics)
        # What never changes for a certificate is worked out once (its names, its issuer's subtree,
        # the CAs above it); the time and the revocation lists are checked on every call.
        self._known: dict[bytes, _Known | CertificateRefused] = {}

    def _know(self, leaf_pem: bytes, chain_pem: bytes) -> _Known:
        key = leaf_pem + b"|" + chain_pem
        known = self._known.get(key)
        if known is None:
            known = self._study(leaf_pem, chain_pem)
            if len(self._known) >= CACHE_SIZE:
                self._known.clear()
            self._known[key] = known
        if isinstance(known, CertificateRefused):
            raise known
        return known

    @staticmethod
    def _study(leaf_pem: bytes, chain_pem: bytes) -> _Known | CertificateRefused:
        try:
            leaf = x509.load_pem_x509_certificates(leaf_pem)[0]
            chain = x509.load_pem_x509_certificates(chain_pem) if chain_pem.strip(b"\0 \n") else []
        except ValueError:
            return CertificateRefused(UNKNOWN, "the peer's certificate cannot be read")
        try:
            # the validity period and revocation are checked per call, not here
            identity, issuer = check_certificate(leaf, leaf.not_valid_before_utc, lambda i, s: False)
            cas = tuple((subtree_of(c.issuer), c.serial_number, c.subject.rfc4514_string()) for c in chain
                        if c != leaf and c.issuer != c.subject)
        except CertificateRefused as exc:
            return exc
        peer = Peer(identity.kind, identity.name, identity.level, identity.role, leaf.serial_number, issuer)
        return _Known(peer, leaf.not_valid_before_utc, leaf.not_valid_after_utc, cas)

    def peer(self, auth: Mapping[str, Iterable[bytes]]) -> Peer:
        """The peer a call's auth context names (``CertificateRefused`` if it is not acceptable)."""
        if self.plaintext:
            return PLAINTEXT
        leaf_pem = b"".join(auth.get("x509_pem_cert", ()))
        if not leaf_pem.strip(b"\0 \n"):
            raise CertificateRefused(UNKNOWN, "the caller presented no client certificate")
        known = self._know(leaf_pem, b"".join(auth.get("x509_pem_cert_chain", ())))
        peer = known.peer
        now = self.clock.now()
        if not known.not_before <= now <= known.not_after:
            raise CertificateRefused(EXPIRED, f"certificate {peer.serial:x} of {peer.kind} {peer.name} is valid from "
                                              f"{known.not_before.isoformat()} to {known.not_after.isoformat()}, "
                                              f"not at {now.isoformat()}: it expired or is not valid yet")
        if self.revoked(peer.issuer, peer.serial):
            raise CertificateRefused(REVOKED, f"certificate {peer.serial:x} of {peer.kind} {peer.name} was revoked "
                                              f"by the CA of {peer.issuer}")
        for issuer, serial, subject in known.cas:
            # the intermediate that signed the leaf: revoked by the root's list, it signs nothing valid
            if self.revoked(issuer, serial):
                raise CertificateRefused(REVOKED, f"the CA that issued {peer.kind} {peer.name}'s certificate "
                                                  f"({subject}) was revoked")
        return peer

    def refuse(self, reason: str, method: str, message: str) -> None:
        self.refused[reason] += 1
        log.warning("call refused", extra={"reason": reason, "method": method, "error": message})


_current: ContextVar[tuple[Verifier, Peer]] = ContextVar("govnet_peer")


def peer_of(context: grpc.aio.ServicerContext) -> Peer:
    """The authenticated caller of the current call (``AuthInterceptor`` has checked it)."""
    found = _current.get(None)
    if found is None:
        raise RuntimeError("peer_of: the call did not pass the AuthInterceptor")
    return found[1]


async def check_claim(context: grpc.aio.ServicerContext, claimed: str, this_node: str, method: str) -> Peer:
    """The peer must be the node ``claimed`` (a sync request's node id), a child of this node:
    otherwise the call ends with PERMISSION_DENIED."""
    found = _current.get(None)
    if found is None:
        raise RuntimeError("check_claim: the call did not pass the AuthInterceptor")
    verifier, peer = found
    if peer.kind == "plaintext":
        return peer
    problem = ""
    if peer.kind != "node":
        problem = f"{peer} is not a node; only a child node may call {method}"
    elif peer.name != claimed:
        problem = f"the certificate names node {peer.name}, but the request claims to be {claimed or '(nobody)'}"
    else:
        try:
            check_child(this_node, claimed)
        except NodeIdError as exc:
            problem = f"node {claimed} may not call {method} here: {exc}"
    if problem:
        verifier.refuse(WRONG_NODE, method, problem)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, problem)
    return peer


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates every govnet call before its servicer runs (health and reflection pass: the
    handshake already required a certificate for them). On a plaintext node every caller is
    ``PLAINTEXT``, so servicers ask ``peer_of`` the same way in both modes."""

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    async def _authenticate(self, context: grpc.aio.ServicerContext, method: str) -> None:
        try:
            peer = self.verifier.peer(context.auth_context())
        except CertificateRefused as exc:
            self.verifier.refuse(exc.reason, method, str(exc))
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        _current.set((self.verifier, peer))

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Any],
                                details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or not details.method.startswith("/govnet."):
            return handler
        method = details.method.rsplit("/", 1)[-1]
        authenticate = self._authenticate
        codec = {"request_deserializer": handler.request_deserializer,
                 "response_serializer": handler.response_serializer}
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await authenticate(context, method)
                return await unary(request, context)

            return grpc.unary_unary_rpc_method_handler(unary_unary, **codec)
        if handler.stream_stream is not None:
            stream = handler.stream_stream

            async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                await authenticate(context, method)
                async for reply in stream(requests, context):
                    yield reply

            return grpc.stream_stream_rpc_method_handler(stream_stream, **codec)
        if handler.unary_stream is not None:
            answers = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                await authenticate(context, method)
                async for reply in answers(request, context):
                    yield reply

            return grpc.unary_stream_rpc_method_handler(unary_stream, **codec)
        collect = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            await authenticate(context, method)
            return await collect(requests, context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **codec)
