"""The node's own Prometheus metrics, in a registry of its own (never the global one).

Two kinds:

* **Counted as they happen**: every RPC by method and status code, with a latency
  histogram, recorded by a grpc.aio server interceptor (``RpcMetrics``), outside the
  RPC boundary's (``node.rpc.boundary``), so it counts requests that do not even parse. The same
  interceptor writes one debug log line per call, with the receipt number when the
  call names one.
* **Read from the store when scraped** (``StoreCollector``): cases by status and type,
  overdue cases, outbox depth and oldest age per link, link health and last sync
  success, quarantined envelopes, rollup freshness, open alarms, store size, provisional
  due dates and the calendar's last published year. Computing
  them at scrape time from the database means they can never drift from it, and a
  restarted node reports the truth at once. The collector runs in the HTTP server's
  thread, so its blocking reads never touch the gRPC event loop.

Names follow Prometheus rules: the ``govnet_`` prefix, base units (seconds, bytes),
``_total`` for counters, low-cardinality labels (a link is a neighbour's node id: one
parent and a bounded number of children).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from govnet.federation.authority import Reason
from govnet.node.app.calendar_years import CalendarYears
from govnet.node.app.inbox import Refusals
from govnet.node.app.links import LinkReport, UpLink, link_reports
from govnet.node.domain.calendar import CHINA_TZ, missing_next_year
from govnet.node.domain.certificates import EXPIRED, OUTSIDE_SUBTREE, REVOKED, UNKNOWN, WRONG_NODE
from govnet.node.domain.clock import Clock
from govnet.node.domain.deadlines import ALARM_ACTIONS, TIMEOUT_AGREE
from govnet.node.domain.lifecycle import FINISHED, RUNNING
from govnet.node.domain.ratelimit import CLASSES, KINDS
from govnet.node.process.tls import NodeTls
from govnet.node.rpc.boundary import PARSED, behavior_of, with_behavior
from govnet.node.rpc.peer import Verifier
from govnet.node.store import audit as audit_chain
from govnet.node.store import cases as case_rows
from govnet.node.store import complaints as complaint_rows
from govnet.node.store import statistics as stat_rows
from govnet.node.store.engine import STORE_FILES, Store
from govnet.node.store.quarantine import count_quarantined
from govnet.node.store.quarantine import counts as quarantine_counts
from govnet.node.store.unit import Unit, table_names

log = logging.getLogger("govnet.rpc")

# Every metric the node exports; deployment files are checked against this list.
EXPORTED = (
    "govnet_node_info",
    "govnet_rpc_requests_total",
    "govnet_rpc_duration_seconds",
    "govnet_cases",
    "govnet_cases_overdue",
    "govnet_case_summaries",
    "govnet_outbox_depth",
    "govnet_outbox_oldest_age_seconds",
    "govnet_sync_link_up",
    "govnet_sync_last_success_timestamp_seconds",
    "govnet_quarantined",
    "govnet_sync_quarantined",
    "govnet_rollup_age_seconds",
    "govnet_alarms_open",
    "govnet_complaints_open",
    "govnet_store_bytes",
    "govnet_sync_refused_total",
    "govnet_audit_chains_broken",
    "govnet_audit_chain_breaks_total",
    "govnet_tls_plaintext",
    "govnet_certificate_expiry_seconds",
    "govnet_auth_refused_total",
    "govnet_revoked_certificates",
    "govnet_rate_limited_total",
    "govnet_calendar_provisional_cases",
    "govnet_calendar_last_year",
    "govnet_calendar_next_year_missing",
)
QUARANTINE_REASONS = (("receiver", "apply"), ("receiver", "withheld"), ("sender", "too_large"), ("sender", "refused"))
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# --- RPCs, counted as they happen ---


@dataclass
class _Call:
    """What the log line of a counted call can name (its receipt)."""

    request: Any
    response: Any = None


class RpcMetrics(grpc.aio.ServerInterceptor):
    """Counts every call (every service, health and reflection too) by method and final status code, and times it.

    Put before ``node.rpc.boundary.Boundary`` in the server's interceptors: it then wraps
    what the boundary returns and sees every status, the INVALID_ARGUMENT of a request
    that does not parse included. A stream is counted once, when it ends."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("govnet_rpc_requests", "gRPC calls served, by method and status code",
                                ("method", "code"), registry=registry)
        self.duration = Histogram("govnet_rpc_duration_seconds", "gRPC call latency, by method", ("method",),
                                  buckets=LATENCY_BUCKETS, registry=registry)

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Any],
                                details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method.rsplit("/", 1)[-1] if details.method.startswith("/govnet.") else details.method
        behavior = behavior_of(handler)
        if inspect.isasyncgenfunction(behavior):

            async def observed_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with self._counted(method, context, None):
                    async for response in behavior(request, context):
                        yield response

            return with_behavior(handler, observed_stream, handler.request_deserializer)

        async def observed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with self._counted(method, context, request) as call:
                call.response = behavior(request, context)
                if inspect.isawaitable(call.response):
                    call.response = await call.response
                return call.response

        return with_behavior(handler, observed, handler.request_deserializer)

    @contextmanager
    def _counted(self, method: str, context: grpc.aio.ServicerContext, request: Any) -> Iterator[_Call]:
        """Record the call when the block ends, with the status it ended with."""
        call = _Call(request)
        started = time.perf_counter()
        failed: BaseException | None = None
        try:
            yield call
        except BaseException as exc:
            failed = exc
            raise
        finally:
            parsed = PARSED.get()  # the boundary parses the request (grpc hands over bytes)
            self.record(method, call_code(context, failed), time.perf_counter() - started,
                        parsed if parsed is not None else call.request, call.response)

    def record(self, method: str, code: grpc.StatusCode, seconds: float, request: Any, response: Any) -> None:
        self.requests.labels(method, code.name).inc()
        self.duration.labels(method).observe(seconds)
        if log.isEnabledFor(logging.DEBUG):
            extra: dict[str, Any] = {"method": method, "code": code.name, "duration_ms": round(seconds * 1000, 2)}
            receipt = receipt_of(request, response)
            if receipt:
                extra["receipt"] = receipt
            log.debug("rpc", extra=extra)


def call_code(context: grpc.aio.ServicerContext, failed: BaseException | None) -> grpc.StatusCode:
    """The status a call ended with: what the servicer set, else OK, or UNKNOWN if it raised."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):  # some grpc versions report the numeric value
        for member in grpc.StatusCode:
            if member.value[0] == code:
                return member
    if isinstance(failed, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED  # the client went away (or the server is stopping)
    return grpc.StatusCode.UNKNOWN if failed is not None else grpc.StatusCode.OK


def receipt_of(request: Any, response: Any) -> str:
    """The receipt number a call was about, for the log line (empty when none)."""
    for message in (request, response, getattr(response, "case", None)):
        receipt = getattr(message, "receipt", "")
        if isinstance(receipt, str) and receipt:
            return receipt
    return ""


# --- gauges read from the store when scraped ---


@dataclass(frozen=True)
class StoreFacts:
    """What the store says at one instant; ``gauges`` turns it into metric families."""

    node_id: str
    level: str
    cases: Sequence[tuple[str, str, int]]  # (status, case_type, count)
    overdue: int
    summaries: Sequence[tuple[str, int]]  # (status, count)
    links: Sequence[LinkReport]
    quarantined: int
    rollup_age_s: float | None  # None: nothing to roll up yet
    alarms_open: int
    store_bytes: int
    complaints_open: int = 0
    quarantined_by: Sequence[tuple[str, str, int]] = ()  # (side, reason, count)


def _timestamp(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


def gauges(facts: StoreFacts) -> Iterator[GaugeMetricFamily]:
    """Pure: the scrape-time metric families for one snapshot of the store."""
    info = GaugeMetricFamily("govnet_node_info", "This node's id and level (always 1)", labels=("node", "level"))
    info.add_metric((facts.node_id, facts.level), 1)
    yield info
    cases = GaugeMetricFamily("govnet_cases", "Cases in this node's store, by status and type",
                              labels=("status", "case_type"))
    for status, case_type, count in facts.cases:
        cases.add_metric((status, case_type), count)
    yield cases
    yield GaugeMetricFamily("govnet_cases_overdue", "Cases this node owns that are past their due date and not finished",
                            value=facts.overdue)
    summaries = GaugeMetricFamily("govnet_case_summaries", "Case summaries held for the subtree (supervision), by status",
                                  labels=("status",))
    for status, count in facts.summaries:
        summaries.add_metric((status,), count)
    yield summaries
    depth = GaugeMetricFamily("govnet_outbox_depth", "Envelopes waiting for a neighbour's acknowledgement",
                              labels=("link", "direction"))
    age = GaugeMetricFamily("govnet_outbox_oldest_age_seconds", "Age of the oldest envelope waiting on a link (0: none)",
                            labels=("link", "direction"))
    up = GaugeMetricFamily("govnet_sync_link_up", "1 when a link is connected, 0 when retrying, offline or lagging",
                           labels=("link", "direction"))
    success = GaugeMetricFamily("govnet_sync_last_success_timestamp_seconds",
                                "Unix time of the last successful exchange on a link", labels=("link", "direction"))
    for link in facts.links:
        labels = (link.neighbour, link.direction)
        depth.add_metric(labels, link.outbox_depth)
        age.add_metric(labels, max(0.0, link.oldest_age_s))
        up.add_metric(labels, 1 if link.health == "connected" else 0)
        last = _timestamp(link.last_success)
        if last is not None:
            success.add_metric(labels, last)
    yield from (depth, age, up, success)
    yield GaugeMetricFamily("govnet_quarantined", "Envelopes set aside because they could not be applied",
                            value=facts.quarantined)
    by_side = GaugeMetricFamily(
        "govnet_sync_quarantined", "Envelopes set aside, by side (receiver: not applied here; sender: not sent "
        "from here) and reason (apply, withheld; too_large, refused)", labels=["side", "reason"])
    # Every pair always (at 0 too), so an alert sees a series appear rather than begin.
    counted = {**dict.fromkeys(QUARANTINE_REASONS, 0), **{(side, reason): n for side, reason, n in facts.quarantined_by}}
    for (side, reason), count in sorted(counted.items()):
        by_side.add_metric((side, reason), count)
    yield by_side
    if facts.rollup_age_s is not None:
        yield GaugeMetricFamily("govnet_rollup_age_seconds",
                                "Age of the newest fact the subtree's rollup is built from", value=facts.rollup_age_s)
    yield GaugeMetricFamily("govnet_alarms_open", "Supervision alarms (warnings, overdue) on cases still running",
                            value=facts.alarms_open)
    yield GaugeMetricFamily("govnet_complaints_open", "Complaints this node supervises that are not resolved yet",
                            value=facts.complaints_open)
    yield GaugeMetricFamily("govnet_store_bytes", "Size of the SQLite files (database, WAL, shared memory)",
                            value=facts.store_bytes)


def store_bytes(data_dir: Path) -> int:
    total = 0
    for name in STORE_FILES:
        try:
            total += (data_dir / name).stat().st_size
        except FileNotFoundError:
            pass
    return total


# An alarm is an event on its case; it stays open while the case runs (as ``govnet alarms`` shows it).
_OPEN_ALARM_ACTIONS = tuple(a for a in ALARM_ACTIONS if a != TIMEOUT_AGREE)


def _rollup_age(s: Unit, tables: set[str], now: datetime) -> float | None:
    """How far behind the subtree's statistics are: the oldest ``as_of`` of the reports this
    node holds (the totals are complete up to there); before any report, the newest summary."""
    if "stat_report" in tables:
        oldest = stat_rows.oldest_report_as_of(s)
        if oldest is not None:
            return (now - oldest).total_seconds()
    newest = case_rows.newest_summary_update(s)
    return (now - datetime.fromisoformat(newest)).total_seconds() if newest else None


def read_facts(store: Store, uplink: UpLink | None, now: datetime, flush_interval: timedelta) -> StoreFacts:
    """One consistent read of everything the gauges show (blocking: call it off the event loop)."""
    links = link_reports(store, uplink, now, flush_interval)
    today = now.astimezone(CHINA_TZ).date()
    with store.reading() as s:
        tables = table_names(s)
        cases = case_rows.count_by_status_and_type(s)
        overdue = case_rows.count_overdue(s, store.meta.node_id, today, tuple(sorted(FINISHED)))
        summaries = case_rows.count_summaries_by_status(s)
        quarantined = count_quarantined(s)
        by_side = [(side, reason, n) for (side, reason), n in sorted(quarantine_counts(s).items())]
        rollup_age = _rollup_age(s, tables, now)
        alarms = case_rows.count_open_alarms(s, _OPEN_ALARM_ACTIONS, tuple(sorted(RUNNING)))
        complaints = complaint_rows.count_open_supervised(s, store.meta.node_id) if "complaint" in tables else 0
    return StoreFacts(store.meta.node_id, store.meta.level.value, cases, overdue, summaries, links, quarantined,
                      rollup_age, alarms, store_bytes(store.path.parent), complaints, by_side)


class StoreCollector(Collector):
    """Reads the store at every scrape (see the module docstring for why)."""

    def __init__(self, store: Store, uplink: UpLink | None, clock: Clock, flush_interval: timedelta) -> None:
        self.store, self.uplink, self.clock, self.flush_interval = store, uplink, clock, flush_interval

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from gauges(read_facts(self.store, self.uplink, self.clock.now(), self.flush_interval))


class RefusalCollector(Collector):
    """What neighbours sent that they may not (``federation.authority``), by reason; every
    reason is shown, at 0 until it happens, so an alert rule can rate() it from the start."""

    def __init__(self, refusals: Refusals) -> None:
        self.refusals = refusals

    def collect(self) -> Iterator[CounterMetricFamily]:
        refused = CounterMetricFamily("govnet_sync_refused", "Envelopes and batches refused by the authorization "
                                      "rules (nothing of them applied), by reason", labels=("reason",))
        counts = dict(self.refusals.counts)
        for reason in Reason:
            refused.add_metric((reason.value,), counts.get(reason.value, 0))
        yield refused


class AuditCollector(Collector):
    """Descendants' audit chains found broken (node.app.audit), read from the store when scraped."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with self.store.reading() as s:
            heads = audit_chain.peer_heads(s)
        yield GaugeMetricFamily("govnet_audit_chains_broken",
                                "Descendants whose audit chain head did not extend the one held here",
                                value=sum(1 for h in heads if h["broken"]))
        yield CounterMetricFamily("govnet_audit_chain_breaks_total",
                                  "Chain heads received from descendants that did not extend the one held",
                                  value=sum(int(h["breaks"]) for h in heads))


class TlsCollector(Collector):
    """Mutual TLS: whether it is off, when the node's own certificate expires (an alert fires
    weeks before), calls refused by the verifier of peers, and certificates revoked here."""

    REASONS = (UNKNOWN, EXPIRED, REVOKED, OUTSIDE_SUBTREE, WRONG_NODE)

    def __init__(self, verifier: Verifier, tls: NodeTls | None, plaintext: bool, revoked: Callable[[], int]) -> None:
        self.verifier, self.tls, self.plaintext, self.revoked = verifier, tls, plaintext, revoked

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily("govnet_tls_plaintext", "1 when this node serves without TLS (tls.plaintext = true)",
                                value=1 if self.plaintext else 0)
        if self.tls is not None:
            left = self.tls.not_after.timestamp() - time.time()
            yield GaugeMetricFamily("govnet_certificate_expiry_seconds",
                                    "Seconds until this node's own certificate expires (renew with govnet pki renew)",
                                    value=left)
        refused = CounterMetricFamily("govnet_auth_refused", "Calls refused by authentication, by reason",
                                      labels=("reason",))
        for reason in self.REASONS:
            refused.add_metric((reason,), self.verifier.refused.get(reason, 0))
        yield refused
        yield GaugeMetricFamily("govnet_revoked_certificates", "Certificates revoked by the lists this node holds",
                                value=self.revoked())


class CalendarCollector(Collector):
    """Calendar years not yet published (node.app.calendar_years): the open cases owned here whose
    due date lies in a year without its official schedule, the last year that has one, and whether
    the coming year is still missing from 1 November (an alert asks the city to publish it)."""

    def __init__(self, years: CalendarYears, clock: Clock) -> None:
        self.years, self.clock = years, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("govnet_calendar_provisional_cases",
                                "Open cases this node owns whose due date lies in a year without its official "
                                "holiday schedule (counted Monday-Friday; it may move)",
                                value=self.years.provisional_open())
        yield GaugeMetricFamily("govnet_calendar_last_year",
                                "The last year whose official holiday schedule this node holds", value=self.years.last_year)
        missing = missing_next_year(self.years.calendar, self.clock.now().astimezone(CHINA_TZ).date())
        yield GaugeMetricFamily("govnet_calendar_next_year_missing",
                                "1 from 1 November while the coming year's holiday schedule is not published",
                                value=1 if missing is not None else 0)


def rate_limited_counter(registry: CollectorRegistry) -> Counter:
    """Calls refused by the rate limits (node.rpc.ratelimit), by the bucket's kind and the call's class.
    Every pair is there from the start (at 0), so an alert sees a series rise rather than appear."""
    counter = Counter("govnet_rate_limited", "Calls refused RESOURCE_EXHAUSTED by a rate limit, by kind "
                      "(peer, account) and class of call (api, sync, meta)", ("kind", "class"), registry=registry)
    for kind in KINDS:
        for call_class in CLASSES:
            counter.labels(kind, call_class)
    return counter


@dataclass
class NodeMetrics:
    """The node's registry with its RPC interceptor, store collector and rate-limit counter."""

    registry: CollectorRegistry
    rpc: RpcMetrics
    rate_limited: Counter

    def refused(self, kind: str, call_class: str) -> None:
        """Count a call a rate limit refused (``node.rpc.ratelimit.RateLimit``'s ``on_refused``)."""
        self.rate_limited.labels(kind, call_class).inc()


def node_metrics(store: Store, uplink: UpLink | None, clock: Clock, flush_interval: timedelta, *,
                 refusals: Refusals | None = None, verifier: Verifier | None = None, tls: NodeTls | None = None,
                 plaintext: bool = False, revoked: Callable[[], int] = lambda: 0,
                 calendar_years: CalendarYears | None = None) -> NodeMetrics:
    registry = CollectorRegistry(auto_describe=False)
    rpc = RpcMetrics(registry)
    registry.register(StoreCollector(store, uplink, clock, flush_interval))
    if refusals is not None:
        registry.register(RefusalCollector(refusals))
    registry.register(AuditCollector(store))
    if verifier is not None:
        registry.register(TlsCollector(verifier, tls, plaintext, revoked))
    if calendar_years is not None:
        registry.register(CalendarCollector(calendar_years, clock))
    return NodeMetrics(registry, rpc, rate_limited_counter(registry))
