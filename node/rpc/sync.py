"""The SyncService (grpc.aio): children push to and pull from this node; ops read link status."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TypeVar

import grpc

from govnet.node.app.inbox import Inbox, NotReplayable
from govnet.node.app.links import ChildrenSide, StillTooLarge, UpLink, link_reports, requeue_withheld
from govnet.node.domain.clock import Clock
from govnet.node.rpc.cases import rpc, rpc_stream
from govnet.node.rpc.peer import check_claim
from govnet.node.store import quarantine
from govnet.node.store.engine import Store
from govnet.sync.digest import PeriodDigest
from govnet.sync.transport.base import Hello
from govnet.sync.transport.wire import cursor_from_proto, cursor_to_proto, envelope_to_proto
from govnet.v1 import sync_pb2, sync_pb2_grpc

T = TypeVar("T")
# A listed entry carries at most this much of its payload (characters): an entry may be one
# withheld for being larger than any message, and the list must always fit one (``size`` says
# how large the whole is; replay uses the whole).
LISTED_PAYLOAD = 4096


class SyncServicer(sync_pb2_grpc.SyncServiceServicer):
    def __init__(self, store: Store, children: ChildrenSide, inbox: Inbox, uplink: UpLink | None, clock: Clock,
                 flush_interval: timedelta) -> None:
        self.store = store
        self.children = children
        self.inbox = inbox
        self.uplink = uplink
        self.clock = clock
        self.flush_interval = flush_interval

    @rpc
    async def Hello(self, request: sync_pb2.HelloRequest, context: grpc.aio.ServicerContext) -> sync_pb2.HelloResponse:
        await check_claim(context, request.node_id, self.store.meta.node_id, "Hello")
        reply = await asyncio.to_thread(self.children.hello, Hello(
            request.node_id, request.level, request.protocol_version, request.catalog_version, request.incarnation,
            dict(request.catalog_releases)))
        return sync_pb2.HelloResponse(node_id=reply.node_id, level=reply.level, protocol_version=reply.protocol_version,
                                      incarnation=reply.incarnation, catalog_version=reply.catalog_version)

    @rpc_stream
    async def Push(self, requests: AsyncIterator[sync_pb2.PushRequest],
                   context: grpc.aio.ServicerContext) -> AsyncIterator[sync_pb2.PushResponse]:
        # Batches are stored one after another, in the order they were sent, each answered
        # once stored: the child may already have sent the next. The parsed wire envelopes
        # go in as they are (they have an Envelope's fields): building 200 Envelopes first
        # cost as much as parsing them.
        async for request in requests:
            await check_claim(context, request.sender, self.store.meta.node_id, "Push")
            cursor = await asyncio.to_thread(self.children.push, request.sender, request.sender_incarnation,
                                         request.envelopes, request.settled_below)
            yield sync_pb2.PushResponse(applied=cursor_to_proto(cursor))

    @rpc
    async def Pull(self, request: sync_pb2.PullRequest, context: grpc.aio.ServicerContext) -> sync_pb2.PullResponse:
        await check_claim(context, request.child, self.store.meta.node_id, "Pull")
        reply = await asyncio.to_thread(self.children.pull, request.child, request.child_incarnation,
                                    request.parent_incarnation, cursor_from_proto(request.applied),
                                    request.max_envelopes, request.max_bytes)
        return sync_pb2.PullResponse(parent_incarnation=reply.parent_incarnation,
                                     envelopes=[envelope_to_proto(e) for e in reply.envelopes], more=reply.more,
                                     settled_below=reply.settled_below)

    @rpc
    async def Digest(self, request: sync_pb2.DigestRequest, context: grpc.aio.ServicerContext) -> sync_pb2.DigestResponse:
        await check_claim(context, request.child, self.store.meta.node_id, "Digest")
        periods = [PeriodDigest(p.period, p.count, p.hash) for p in request.periods]
        differ = await asyncio.to_thread(self.children.digest, request.child, periods)
        return sync_pb2.DigestResponse(divergent=differ)

    @rpc
    async def Status(self, request: sync_pb2.SyncStatusRequest, context: grpc.aio.ServicerContext) -> sync_pb2.SyncStatusResponse:
        reports = await asyncio.to_thread(link_reports, self.store, self.uplink, self.clock.now(), self.flush_interval)
        per_link = await asyncio.to_thread(self._quarantine_counts)
        return sync_pb2.SyncStatusResponse(
            node_id=self.store.meta.node_id,
            quarantined=sum(per_link.values()),
            quarantined_sent=sum(n for (_, side), n in per_link.items() if side == quarantine.SENDER),
            links=[sync_pb2.LinkStatus(
                neighbour=r.neighbour, direction=r.direction, state=r.health, since=r.since or "",
                outbox_depth=r.outbox_depth, oldest_age_s=r.oldest_age_s, last_success=r.last_success or "",
                last_error=r.last_error, quarantined=per_link.get((r.neighbour, quarantine.RECEIVER), 0),
                next_attempt=r.next_attempt or "", inbox_depth=r.inbox_depth,
                quarantined_sent=per_link.get((r.neighbour, quarantine.SENDER), 0),
            ) for r in reports],
        )

    def _quarantine_counts(self) -> dict[tuple[str, str], int]:
        with self.store.reading() as s:
            return quarantine.per_link(s)

    @rpc
    async def ListQuarantine(self, request: sync_pb2.QuarantineListRequest, context: grpc.aio.ServicerContext) -> sync_pb2.QuarantineListResponse:
        rows = await asyncio.to_thread(self.inbox.quarantined)
        return sync_pb2.QuarantineListResponse(items=[
            sync_pb2.QuarantinedItem(
                id=r.id or 0, link=r.link, error=r.error, quarantined_at=r.quarantined_at, side=r.side,
                reason=r.reason, size=max(0, r.size),
                envelope=sync_pb2.Envelope(seq=r.seq, origin=r.origin, origin_incarnation=r.origin_incarnation,
                                           origin_seq=r.origin_seq, kind=r.kind, target=r.target,
                                           case_key=r.case_key, priority=r.priority,
                                           payload=r.payload[:LISTED_PAYLOAD].encode(), created_at=r.created_at),
            ) for r in rows])

    @rpc
    async def ReplayQuarantine(self, request: sync_pb2.QuarantineReplayRequest, context: grpc.aio.ServicerContext) -> sync_pb2.QuarantineReplayResponse:
        try:
            requeued = await asyncio.to_thread(requeue_withheld, self.store, request.id,
                                               self.children.settings.batch_max_bytes, self.clock.now())
            if requeued:
                return sync_pb2.QuarantineReplayResponse(requeued=True)
            applied, error = await asyncio.to_thread(self.inbox.replay, request.id)
        except KeyError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc.args[0]))
        except (StillTooLarge, NotReplayable) as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return sync_pb2.QuarantineReplayResponse(applied=applied, error=error)
