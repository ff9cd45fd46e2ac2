"""Rate limits over real gRPC (node.rpc.ratelimit): one noisy client cannot slow the others.

One in-process node over mutual TLS: the quiet client presents the session's client
certificate, the flooding one a certificate of its own, so they are two peers to the node (over
TLS a peer is the name its certificate carries, not its address). The flood is a process of its
own (tests/support/flood.py), so it does not share this interpreter's lock with the node it floods.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner

from govnet.node.domain.people import ALL_DEPARTMENTS, Role
from govnet.node.domain.ratelimit import ACCOUNT, API, META, SYNC, Verdict
from govnet.node.rpc.client import CERTS_ENV, ClientError, GovnetClient, secure_channel
from govnet.node.rpc.ratelimit import account_key, address_of, class_of, refusal_status
from govnet.ops.cli import main
from govnet.ops.pki import enrol_client
from govnet.sync.envelope import PROTOCOL_VERSION
from govnet.sync.transport.base import Hello, ParentBusy
from govnet.sync.transport.grpc import RETRY_AFTER_KEY
from govnet.v1 import cases_pb2, cases_pb2_grpc

from support.accounts import staff
from support.helpers import submit, uplink_as

FLOOD = Path(__file__).parent.parent / "support" / "flood.py"
FLOOD_CALLS_IN_FLIGHT = 8
QUIET_CALLS = 5  # per window
ROUNDS = 10
SETTLE_S = 0.05
QUIET_PACE_S = 0.02  # the quiet client: about 30 calls a second, under its limit of 50


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


def quiet_latencies(client: GovnetClient, receipt: str, calls: int = QUIET_CALLS) -> list[float]:
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        client.track(receipt)
        out.append(time.perf_counter() - started)
        time.sleep(QUIET_PACE_S)
    return out


def test_a_flooding_peer_is_refused_with_a_hint_and_a_quiet_peer_keeps_its_latency(  # type: ignore[no-untyped-def]
        make_node, caplog, city_pki: Path, tmp_path: Path) -> None:
    node, quiet = make_node("371102", "county", rate={"peer_per_s": 50.0, "peer_burst": 10})
    flooder_certs = tmp_path / "flooder"
    enrol_client(flooder_certs, "flooder", "ops", city_pki / "ca")
    receipt = submit(quiet, "SJ-0001").case.receipt
    quiet_latencies(quiet, receipt, 5)  # warm up: the channel, the node's caches
    flooder = subprocess.Popen(["nice", "-n", "19", sys.executable, str(FLOOD), node.address, receipt,
                                str(FLOOD_CALLS_IN_FLIGHT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, env={**os.environ, CERTS_ENV: str(flooder_certs)})
    alone: list[float] = []
    flooded: list[float] = []
    try:
        assert flooder.stdout is not None and flooder.stdin is not None
        assert flooder.stdout.readline().strip() == "flooding"
        # Windows with the flood paused and running, in turn: the machine is shared, and
        # its load drifts; taking turns puts the same drift into both sets of samples.
        for _ in range(ROUNDS):
            flooder.send_signal(signal.SIGSTOP)
            time.sleep(SETTLE_S)
            alone += quiet_latencies(quiet, receipt)
            flooder.send_signal(signal.SIGCONT)
            time.sleep(SETTLE_S)
            flooded += quiet_latencies(quiet, receipt)
        # the node's other work goes on: a new case is taken in under the flood
        during = submit(quiet, "SJ-0001").case
        flooder.stdin.close()
        seen = json.loads(flooder.stdout.readline())
        assert flooder.wait(10) == 0
    finally:
        flooder.send_signal(signal.SIGCONT)
        flooder.kill()
        flooder.wait(10)

    print(f"quiet p95 alone {p95(alone) * 1000:.2f} ms, under the flood {p95(flooded) * 1000:.2f} ms "
          f"(medians {statistics.median(alone) * 1000:.2f}, {statistics.median(flooded) * 1000:.2f}); "
          f"flood: {seen['ok']} admitted, {seen['refused']} refused in {seen['seconds']:.1f} s")
    assert seen["other"] == []
    assert seen["refused"] > seen["ok"] >= 10  # its own share (the burst, then the rate) was served
    # and no more than its share: the node did the flooder's work at most at the configured rate
    assert seen["ok"] <= 10 + 50 * seen["seconds"]
    # the retry hint, twice: the trailer the up-link reads, and the standard RetryInfo
    hint_ms = int(seen["trailers"][RETRY_AFTER_KEY])
    assert 1 <= hint_ms <= 20  # one call's worth at 50 a second is 20 ms
    assert seen["retry_info_s"] == pytest.approx(hint_ms / 1000)
    assert seen["message"].startswith("too many calls from this peer; retry after")
    assert during.receipt
    # the quiet client kept its latency (a ratio, not an absolute time: the machine is shared)
    assert p95(flooded) < 5 * p95(alone) + 0.005
    refused = node.node.metrics.registry.get_sample_value(
        "govnet_rate_limited_total", {"kind": "peer", "class": "api"})
    assert refused == seen["refused"]
    # one log line for the whole flood, naming the flooding peer (not one per refused call)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rate limit:")]
    assert len(lines) == 1 and "peer cn:flooder (api calls)" in lines[0]


def test_an_account_over_its_rate_is_refused_while_another_behind_the_same_address_goes_on(make_node) -> None:  # type: ignore[no-untyped-def]
    node, client = make_node("371102", "county", rate={"account_per_s": 1.0, "account_burst": 3})
    receipt = submit(client, "SJ-0001").case.receipt  # the tester's account, not the two below
    # two people signed in at the same address (logging in carries no token: no account limit)
    people = {login: staff(node, login, Role.WINDOW_CLERK, [ALL_DEPARTMENTS]) for login in ("noisy", "quiet")}
    tokens = {login: (("authorization", f"Bearer {c.token}"),) for login, c in people.items()}
    for c in people.values():
        c.close()
    raw = secure_channel(node.address, None)
    try:
        stub = cases_pb2_grpc.CaseServiceStub(raw)
        request = cases_pb2.TrackCaseRequest(receipt=receipt)
        for _ in range(3):
            stub.Track(request, timeout=5, metadata=tokens["noisy"])
        with pytest.raises(grpc.RpcError) as refused:
            stub.Track(request, timeout=5, metadata=tokens["noisy"])
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert refused.value.details().startswith("too many calls from this account; retry after")
        assert 500 <= int(dict(refused.value.trailing_metadata())[RETRY_AFTER_KEY]) <= 1000
        # another person at the same address, and calls without a token, are not held back
        for _ in range(3):
            stub.Track(request, timeout=5, metadata=tokens["quiet"])
        for _ in range(3):
            stub.Track(request, timeout=5)
    finally:
        raw.close()
    assert node.node.metrics.registry.get_sample_value(
        "govnet_rate_limited_total", {"kind": "account", "class": "api"}) == 1


def test_the_client_waits_out_a_short_hint_once_then_says_the_node_is_busy(make_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("371102", "county", rate={"peer_per_s": 0.5, "peer_burst": 5})
    waits: list[float] = []
    client = GovnetClient(node.address, sleep=waits.append)  # waits without waiting: the bucket stays empty
    try:
        submit(client, "SJ-0001")
        while True:  # use up what is left of the burst (the catalog and the first case took some)
            try:
                client.list(limit=1)
            except ClientError as exc:
                busy = exc
                break
    finally:
        client.close()
    assert busy.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(waits) == 1 and 1.0 < waits[0] <= 2.0  # one call's worth at 0.5 a second: 2 s
    assert str(busy).startswith("the node is busy; retry in ") and str(busy).endswith(" s")
    assert busy.retry_after_s is not None and busy.retry_after_s <= 2.0


def test_a_child_over_its_sync_rate_is_told_how_long_to_back_off(make_node, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("371102", "county", catalog=False, rate={"sync_per_s": 0.5, "sync_burst": 1})

    async def hellos() -> ParentBusy:
        transport = uplink_as("371102001", node.address, tmp_path / "township", retries=1)
        hello = Hello("371102001", "township", PROTOCOL_VERSION, 0, 1)
        try:
            await transport.hello(hello)
            with pytest.raises(ParentBusy) as busy:
                await transport.hello(hello)
            return busy.value
        finally:
            await transport.close()

    busy = asyncio.run(hellos())
    # the up-link's driver backs off by the hint it read, not by its default second
    assert 1.0 < busy.retry_after_s <= 2.0
    assert node.node.metrics.registry.get_sample_value(
        "govnet_rate_limited_total", {"kind": "peer", "class": "sync"}) == 1


# --- who is calling, and what class of call (pure) ---


@pytest.mark.parametrize(("peer", "key"), [
    ("ipv4:10.0.0.7:51234", "ipv4:10.0.0.7"),
    ("ipv6:[::1]:51234", "ipv6:[::1]"),
    ("ipv6:%5B::1%5D:51234", "ipv6:[::1]"),  # as grpc writes it
    ("ipv6:%5Bfe80::1%25eth0%5D:443", "ipv6:[fe80::1%eth0]"),
    ("unix:/run/govnet.sock", "unix:/run/govnet.sock"),
    ("unix:", "unix:"),
])
def test_a_peer_is_its_address_without_the_port(peer: str, key: str) -> None:
    assert address_of(peer) == key


@pytest.mark.parametrize(("metadata", "account"), [
    ((), None),
    ((("authorization", "Basic dXNlcg=="),), None),
    ((("authorization", "Bearer "),), None),
    ((("x-other", "1"), ("authorization", "Bearer abc")), "token:" + hashlib.sha256(b"abc").hexdigest()[:16]),
    ((("authorization", "bearer abc"),), "token:" + hashlib.sha256(b"abc").hexdigest()[:16]),
])
def test_an_account_is_a_hash_of_its_bearer_token_never_the_token(metadata, account) -> None:  # type: ignore[no-untyped-def]
    assert account_key(metadata) == account


@pytest.mark.parametrize(("method", "call_class"), [
    ("/govnet.v1.CaseService/Track", API),
    ("/govnet.v1.SyncService/Push", SYNC),
    ("/govnet.v1.SyncService/Hello", SYNC),
    ("/govnet.v1.SyncService/Status", API),  # an operator's call, not a child's session
    ("/grpc.health.v1.Health/Check", META),
    ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", META),
])
def test_each_method_has_its_class(method: str, call_class: str) -> None:
    assert class_of(method) == call_class


def test_a_refusal_carries_the_hint_in_milliseconds_rounded_up() -> None:
    code, message, trailing = refusal_status(Verdict(False, 0.0123, ACCOUNT))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert message == "too many calls from this account; retry after 0.01 s"
    assert dict(trailing)[RETRY_AFTER_KEY] == "13"
    assert "grpc-status-details-bin" in dict(trailing)


def test_the_cli_says_the_node_is_busy_in_one_line_when_the_hint_is_long(make_node) -> None:  # type: ignore[no-untyped-def]
    # one call every 10 s: the catalog load took the burst, so the next call's hint is ~10 s,
    # longer than the CLI waits by itself
    node, _ = make_node("371102", "county", rate={"peer_per_s": 0.1, "peer_burst": 1})
    run = CliRunner().invoke(main, ["case", "list", "--node", node.address])
    assert run.exit_code == 1
    lines = run.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("govnet: error: RESOURCE_EXHAUSTED: the node is busy; retry in ")
