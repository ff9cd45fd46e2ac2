"""The StatsService (grpc.aio): totals over a node's subtree with their coverage."""

from __future__ import annotations

import asyncio

import grpc

from govnet.federation.rollup import Report
from govnet.node.app.desk import DeskError, ErrorKind, checked
from govnet.node.app.statistics_ledger import StatsAnswer, StatsQueryError, answer
from govnet.node.domain.clock import Clock
from govnet.node.domain.people import Op
from govnet.node.domain.statistics import COUNTERS, rates
from govnet.node.rpc.auth import Auth
from govnet.node.rpc.errors import rpc
from govnet.node.store.engine import Store
from govnet.node.store.unit import utc_text
from govnet.v1 import stats_pb2, stats_pb2_grpc


def _group(key: str, counts: dict[str, int]) -> stats_pb2.StatsGroup:
    r = rates(counts)
    derived = {k: v for k, v in (("on_time", r.on_time), ("immediate", r.immediate), ("satisfaction", r.satisfaction),
                                 ("average_processing_days", r.average_processing_days)) if v is not None}
    return stats_pb2.StatsGroup(key=key, counters=stats_pb2.Counters(**{c: counts.get(c, 0) for c in COUNTERS}),
                                rates=stats_pb2.Rates(**derived))


def _report(r: Report) -> stats_pb2.NodeReport:
    return stats_pb2.NodeReport(node=r.node, version=r.version, as_of=utc_text(r.as_of))


def answer_to_proto(a: StatsAnswer) -> stats_pb2.StatsAnswer:
    cov = a.coverage
    oldest = cov.oldest
    return stats_pb2.StatsAnswer(
        node=a.node, by=a.by, from_day=a.first_day, to_day=a.last_day,
        groups=[_group(k, v) for k, v in a.groups.items()],
        total=_group("total", a.total),
        coverage=stats_pb2.Coverage(
            nodes_known=len(cov.known), nodes_reported=cov.reported, missing=list(cov.missing),
            oldest=_report(oldest) if oldest else None,
            reports=[_report(r) for r in cov.reports],
            children=[stats_pb2.ChildHeard(child=c.child, last_heard=utc_text(c.last_heard) if c.last_heard else "")
                      for c in cov.children],
        ),
        answered_at=utc_text(a.answered_at),
        answered_by=a.answered_by, rank_by=a.rank_by, ascending=not a.descending,
    )


_FIELDS = {"by": "by", "from": "from_day", "to": "to_day", "subtree": "subtree", "rank_by": "rank_by"}


class StatsServicer(stats_pb2_grpc.StatsServiceServicer):
    """Statistics of the subtree: for a supervisor, a chief representative or ops (a login)."""

    def __init__(self, store: Store, clock: Clock, auth: Auth) -> None:
        self.store = store
        self.clock = clock
        self.auth = auth

    @rpc
    async def Query(self, request: stats_pb2.StatsQuery, context: grpc.aio.ServicerContext) -> stats_pb2.StatsAnswer:
        await self.auth.require(context, Op.READ_SUPERVISION)
        try:
            got = await asyncio.to_thread(answer, self.store, checked("StatsQuery", "by", request.by),
                                          checked("StatsQuery", "from_day", request.from_day),
                                          checked("StatsQuery", "to_day", request.to_day),
                                          self.clock.now(),
                                          checked("StatsQuery", "subtree", request.subtree),
                                          checked("StatsQuery", "rank_by", request.rank_by),
                                          not request.ascending)
        except StatsQueryError as exc:
            # The message starts with the field it is about ("subtree: …"): name it in the details too.
            field = str(exc).split(":", 1)[0]
            raise DeskError(ErrorKind.INVALID, str(exc), _FIELDS.get(field, "")) from None
        return answer_to_proto(got)
