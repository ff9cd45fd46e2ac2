"""The attacks of issue #12's Why section, made from another "machine" against real processes.

A county 371102 and its township 371102001 run as real ``govnet node serve`` processes with
mutual TLS (enrolled with the session's city CA, tests/conftest.py). The test process plays the
hostile client: it opens its own gRPC channels with the credentials each attack has and calls
the generated stubs directly, as a program written against govnet.proto would — nothing goes
through ``GovnetClient``'s conveniences. Each attack must be refused with the right status and
leave what a user would check unchanged: the county's statistics for the township, its children,
its outbox, a case's history. The county serves /metrics, so each refusal is also seen counted.

The rules behind each refusal are tested in-process (tests/sim/test_attacks.py,
tests/rpc/test_tls.py, tests/rpc/test_authority_rpc.py, tests/rpc/test_accounts.py); this file
shows they hold where it matters, between processes. One federation for the module (starting
processes is most of the cost); each test compares with what it found, and the forged
acknowledgement, which stops and restarts the township, comes last.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.domain.messages import StatsMessage, StatsReportPart, StatsRowPart
from govnet.node.domain.people import Role
from govnet.node.domain.statistics import COUNTERS
from govnet.node.process.tls import node_name
from govnet.node.rpc.client import ClientError, GovnetClient
from govnet.node.store import outbox
from govnet.ops import pki
from govnet.ops.processes import CA_ENV, NodeProcess, free_ports
from govnet.sync.envelope import PROTOCOL_VERSION
from govnet.v1 import cases_pb2, cases_pb2_grpc, stats_pb2, sync_pb2, sync_pb2_grpc

from support.accounts import add_account, signed_in, spawn_node
from support.helpers import ID_NUMBER, PHONE, item, store_of, submit, wait_for
from support.stores import init_node

pytestmark = pytest.mark.slow

CITY, COUNTY, TOWN, OTHER_TOWN = "371100", "371102", "371102001", "371102002"
SYNC = {"flush_interval_s": 0.1, "digest_interval_s": 600.0}
STATISTICS = {"flush_interval_s": 0.1}
CODE = "SJ-0001"  # immediate, decided at the county: a township's application goes up, decisions come down
DEPT = item(CODE).department  # 市场监督管理局
OTHER_DEPT = item("HB-0005").department  # 生态环境局
CALL_S = 5.0
S = grpc.StatusCode


@dataclass
class Fed:
    county: NodeProcess
    town: NodeProcess
    town_dir: Path
    case: str  # an application made at the township, escalated to the county (which owns it now)

    def client(self, node: NodeProcess) -> GovnetClient:
        return GovnetClient(node.address, timeout=CALL_S)


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    base = tmp_path_factory.mktemp("attacks-processes")
    county_port, town_port = free_ports(2)
    county_dir = init_node(base / "county", COUNTY, "county", "127.0.0.1:1", listen=f"127.0.0.1:{county_port}",
                           sync=SYNC, statistics=STATISTICS, http_listen="127.0.0.1:0")  # its city is nowhere
    town_dir = init_node(base / "town", TOWN, "township", f"127.0.0.1:{county_port}",
                         listen=f"127.0.0.1:{town_port}", sync=SYNC, statistics=STATISTICS)
    started: list[NodeProcess] = []
    try:
        for data_dir in (county_dir, town_dir):
            started.append(spawn_node(data_dir))
        county, town = started
        with GovnetClient(county.address, timeout=CALL_S) as c:
            assert c.put_catalog(load_catalog_file(sample_catalog_path())).version == 1  # a lone county loads it
        f = Fed(county, town, town_dir, "")
        with f.client(town) as t:
            wait_for(lambda: bool(t.list_items().items), 15, lambda: "the catalog never reached the township")
            f.case = submit(t, CODE).case.receipt
            for action in ("accept", "escalate"):  # decided at the county: the township hands it up
                t.act(f.case, action)
        with f.client(county) as c:
            wait_for(lambda: _owner(c, f.case) == COUNTY, 15,
                     lambda: f"the township's application never reached the county: {_why(c, f.case)}")
            wait_for(lambda: town_stats(f) == own_stats(f), 15,
                     lambda: f"the county's figures for {TOWN} {town_stats(f)} never match the township's "
                             f"{own_stats(f)}")
        yield f
        started.append(f.town)  # the township as the last test restarted it
    finally:
        for proc in started:
            proc.stop(5)  # (a process already stopped: nothing)


def _owner(client: GovnetClient, receipt: str) -> str:
    try:
        return client.get(receipt).owner
    except ClientError as exc:  # NOT_FOUND until the hand-over arrives
        assert exc.code is S.NOT_FOUND, str(exc)
        return ""


def _why(client: GovnetClient, receipt: str) -> str:
    try:
        return f"its owner is {client.get(receipt).owner}"
    except ClientError as exc:
        return str(exc)


def _counters(answer: stats_pb2.StatsAnswer, key: str) -> dict[str, int]:
    for group in answer.groups:
        if group.key == key:
            return {name: getattr(group.counters, name) for name in COUNTERS}
    return {}


def town_stats(f: Fed) -> dict[str, int]:
    """What the county says about the township (its subtree's statistics, by node)."""
    with f.client(f.county) as c:
        return _counters(c.stats(by="node"), TOWN)


def own_stats(f: Fed) -> dict[str, int]:
    with f.client(f.town) as t:
        return _counters(t.stats(by="node"), TOWN)


def county_total(f: Fed) -> dict[str, int]:
    with f.client(f.county) as c:
        total = c.stats(by="node").total.counters
    return {name: getattr(total, name) for name in COUNTERS}


def children(f: Fed) -> set[str]:
    with f.client(f.county) as c:
        return {link.neighbour for link in c.sync_status().links if link.direction == "down"}


def metric(f: Fed, name: str, **labels: str) -> float:
    """A sample of the county process's /metrics (0 if it has none yet)."""
    assert f.county.http is not None
    text = httpx.get(f"http://{f.county.http}/metrics", timeout=CALL_S).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


# --- the hostile client's own channels ---


def hostile(f: Fed, folder: Path, key: str, cert: str) -> grpc.Channel:
    """A channel to the county presenting ``folder/cert`` (and its key). It trusts the city's root
    (public: every node's ca.crt), so a failure is the county refusing the client, not the
    client refusing the county."""
    root = (Path(os.environ[CA_ENV]) / "root.crt").read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=root, private_key=(folder / key).read_bytes(),
                                               certificate_chain=(folder / cert).read_bytes())
    return grpc.secure_channel(f.county.address, credentials,
                               options=[("grpc.ssl_target_name_override", node_name(COUNTY))])


def as_node(f: Fed, folder: Path) -> grpc.Channel:
    return hostile(f, folder / "tls", "node.key", "node.crt")


def as_ops_client(f: Fed) -> grpc.Channel:
    return hostile(f, Path(os.environ["GOVNET_CERTS"]), "client.key", "client.crt")


def hello(node: str) -> sync_pb2.HelloRequest:
    return sync_pb2.HelloRequest(node_id=node, level="township", protocol_version=PROTOCOL_VERSION, incarnation=1)


def forged_stats(seq: int, origin: str, about: str, cases: int = 5000) -> sync_pb2.Envelope:
    """A statistics envelope from ``origin`` saying node ``about`` received ``cases`` applications today."""
    day = datetime.now(UTC).date().isoformat()
    counters = dict.fromkeys(COUNTERS, 0) | {"received": cases}
    now = datetime.now(UTC).isoformat()
    payload = StatsMessage(StatsReportPart(about, 10**6, now),
                           (StatsRowPart(about, day, CODE, DEPT, counters, 10**6, now),)).encode()
    return sync_pb2.Envelope(seq=seq, origin=origin, origin_incarnation=1, origin_seq=10**6 + seq, kind="stats",
                             target=CITY, case_key="stats", payload=payload)


def push(channel: grpc.Channel, sender: str, *envelopes: sync_pb2.Envelope) -> sync_pb2.PushResponse:
    request = sync_pb2.PushRequest(sender=sender, sender_incarnation=1, envelopes=list(envelopes))
    [reply] = list(sync_pb2_grpc.SyncServiceStub(channel).Push(iter([request]), timeout=CALL_S))
    return reply


def refused(call: Callable[[], object], code: grpc.StatusCode) -> str:
    """Run ``call``; it must fail with ``code`` and a one-line reason (returned)."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() is code, f"{info.value.code()}: {info.value.details()}"
    details = info.value.details() or ""
    assert "\n" not in details and "Traceback" not in details
    return details


# --- 1. a program with a CA of its own ---


def test_a_township_certificate_from_a_self_made_ca_cannot_even_connect(fed: Fed, tmp_path: Path) -> None:
    own = pki.init_ca(tmp_path / "own-ca", CITY)  # the city's names, another key
    pki.enrol_node(tmp_path / "impostor", TOWN, "township", own.directory)
    figures, heard = town_stats(fed), children(fed)
    with as_node(fed, tmp_path / "impostor") as channel:
        stub = sync_pb2_grpc.SyncServiceStub(channel)
        refused(lambda: stub.Hello(hello(TOWN), timeout=CALL_S), S.UNAVAILABLE)  # the handshake fails
        refused(lambda: push(channel, TOWN, forged_stats(1, TOWN, TOWN)), S.UNAVAILABLE)
    assert town_stats(fed) == figures and children(fed) == heard == {TOWN}
    with fed.client(fed.county) as c:
        assert list(c.quarantine().items) == []


# --- 2. a genuine client certificate claiming to be the township ---


def test_a_client_certificate_claiming_to_be_the_township_is_permission_denied(fed: Fed) -> None:
    figures, total = town_stats(fed), county_total(fed)
    before = metric(fed, "govnet_auth_refused_total", reason="wrong_node")
    with as_ops_client(fed) as channel:
        stub = sync_pb2_grpc.SyncServiceStub(channel)
        assert stub.Status(sync_pb2.SyncStatusRequest(), timeout=CALL_S).node_id == COUNTY  # a genuine ops client
        why = refused(lambda: stub.Hello(hello(TOWN), timeout=CALL_S), S.PERMISSION_DENIED)
        assert "is not a node; only a child node may call Hello" in why, why
        why = refused(lambda: push(channel, TOWN, forged_stats(1, TOWN, TOWN)), S.PERMISSION_DENIED)
        assert "only a child node may call Push" in why, why
        pull = sync_pb2.PullRequest(child=TOWN, child_incarnation=1, parent_incarnation=1, max_envelopes=10)
        refused(lambda: stub.Pull(pull, timeout=CALL_S), S.PERMISSION_DENIED)
    assert metric(fed, "govnet_auth_refused_total", reason="wrong_node") == before + 3
    assert "only a child node may call Push" in (fed.county.data_dir / "node.stderr.log").read_text()  # the log line
    assert town_stats(fed) == figures and county_total(fed) == total  # no 5,000 forged cases
    assert figures["received"] >= 1  # (and there were real figures to overwrite)


# --- 3. a genuine certificate of the sibling township ---


def test_the_sibling_townships_certificate_cannot_speak_for_the_township(fed: Fed, tmp_path: Path) -> None:
    pki.enrol_node(tmp_path / "sibling", OTHER_TOWN, "township", Path(os.environ[CA_ENV]))
    figures, total = town_stats(fed), county_total(fed)
    wrong_node = metric(fed, "govnet_auth_refused_total", reason="wrong_node")
    outside = metric(fed, "govnet_sync_refused_total", reason="outside_subtree")
    mismatch = metric(fed, "govnet_sync_refused_total", reason="payload_mismatch")
    with as_node(fed, tmp_path / "sibling") as channel:
        stub = sync_pb2_grpc.SyncServiceStub(channel)
        why = refused(lambda: stub.Hello(hello(TOWN), timeout=CALL_S), S.PERMISSION_DENIED)
        assert why == f"the certificate names node {OTHER_TOWN}, but the request claims to be {TOWN}"
        refused(lambda: push(channel, TOWN, forged_stats(1, TOWN, TOWN)), S.PERMISSION_DENIED)
        # As itself it is a genuine child of the county: it may say hello ...
        assert stub.Hello(hello(OTHER_TOWN), timeout=CALL_S).node_id == COUNTY
        # ... but push nothing that began in the township: statistics rows, or a case's event.
        why = refused(lambda: push(channel, OTHER_TOWN, forged_stats(1, TOWN, TOWN)), S.PERMISSION_DENIED)
        assert why == (f"child {OTHER_TOWN} may send only what its own subtree created; "
                       f"this stats envelope comes from {TOWN}")
        event = sync_pb2.Envelope(seq=1, origin=TOWN, origin_incarnation=1, origin_seq=10**6, kind="event",
                                  target=COUNTY, case_key=fed.case, payload=b"{}")
        why = refused(lambda: push(channel, OTHER_TOWN, event), S.PERMISSION_DENIED)
        assert f"this event envelope comes from {TOWN}" in why
        # In its own name, rows about the township pass the door (the origin is its own) and are
        # set aside where they are read: acknowledged, quarantined, never counted.
        push(channel, OTHER_TOWN, forged_stats(1, OTHER_TOWN, TOWN))
    with fed.client(fed.county) as c:
        wait_for(lambda: len(c.quarantine().items) == 1, 10, lambda: f"quarantined: {list(c.quarantine().items)}")
        [held] = c.quarantine().items
    assert held.envelope.origin == OTHER_TOWN and f"names node {TOWN}" in held.error, held.error
    assert metric(fed, "govnet_auth_refused_total", reason="wrong_node") == wrong_node + 2
    assert metric(fed, "govnet_sync_refused_total", reason="outside_subtree") == outside + 2
    assert metric(fed, "govnet_sync_refused_total", reason="payload_mismatch") == mismatch + 1
    assert town_stats(fed) == figures == own_stats(fed) and county_total(fed) == total


# --- 5. people: no login, and a clerk posing as the chief representative ---


def test_no_login_reads_no_applicant_and_a_clerk_cannot_act_as_the_chief(fed: Fed) -> None:
    with fed.client(fed.county) as tester:
        receipt = tester.submit(idempotency_key=uuid.uuid4().hex, item_code=CODE, name="张三", id_number=ID_NUMBER,
                                phone=PHONE, materials=[m.name for m in item(CODE).materials]).case.receipt
        history = [(e.action, e.actor) for e in tester.get(receipt).events]
    with as_ops_client(fed) as channel:  # a genuine certificate: the handshake passes, the person is missing
        stub = cases_pb2_grpc.CaseServiceStub(channel)
        why = refused(lambda: stub.Get(cases_pb2.GetCaseRequest(receipt=receipt), timeout=CALL_S), S.UNAUTHENTICATED)
        assert "needs a login" in why, why
        refused(lambda: stub.List(cases_pb2.ListCasesRequest(), timeout=CALL_S), S.UNAUTHENTICATED)
        tracked = stub.Track(cases_pb2.TrackCaseRequest(receipt=receipt), timeout=CALL_S)  # public: progress only
        assert tracked.status == "received" and ID_NUMBER not in str(tracked) and PHONE not in str(tracked)

        add_account(fed.county.data_dir, "liuyang", [Role.WINDOW_CLERK], [OTHER_DEPT], name="刘洋")
        token = signed_in(fed.county.address, "liuyang").token
        assert token
        as_clerk = (("authorization", f"Bearer {token}"),)
        for action in ("accept", "approve"):
            act = cases_pb2.ActRequest(receipt=receipt, action=action, actor="首席代表")
            why = refused(lambda a=act: stub.Act(a, timeout=CALL_S, metadata=as_clerk), S.PERMISSION_DENIED)
            assert f"needs role 窗口人员 for {DEPT}" in why or f"needs role 首席代表 for {DEPT}" in why, why
    with fed.client(fed.county) as tester:
        case = tester.get(receipt)
    assert [(e.action, e.actor) for e in case.events] == history  # nobody new, nothing done
    assert case.status == "received" and all("首席代表" not in e.actor and "liuyang" not in e.actor for e in case.events)


# --- 4. a forged acknowledgement (last: it stops and restarts the township) ---


def test_a_forged_acknowledgement_deletes_nothing_from_the_countys_outbox(fed: Fed) -> None:
    fed.town.stop(10)  # so the decisions below wait in the county's outbox for it
    with fed.client(fed.county) as c:
        for action in ("review", "approve"):  # an escalated case: reviewed, then decided
            c.act(fed.case, action)
    with store_of(fed.county.data_dir) as store, store.reading() as s:
        waiting = [e.seq for e in outbox.pending(s, TOWN, limit=1000)]
        county_incarnation = store.meta.incarnation
    assert len(waiting) >= 2, waiting
    with store_of(fed.town_dir) as store:
        town_incarnation = store.meta.incarnation
    # With the township's own key (the strongest forger there is), a pull whose cursor claims
    # everything up to 10^9 and more above: only positions this link was handed may settle, and
    # it was handed none of these yet.
    with as_node(fed, fed.town_dir) as channel:
        forged = sync_pb2.PullRequest(child=TOWN, child_incarnation=town_incarnation,
                                      parent_incarnation=county_incarnation,
                                      applied=sync_pb2.Cursor(through=10**9, above=[10**9 + 5]), max_envelopes=100)
        handed = sync_pb2_grpc.SyncServiceStub(channel).Pull(forged, timeout=CALL_S)
    assert [e.seq for e in handed.envelopes] == waiting  # answered as the township: the cursor was read
    with store_of(fed.county.data_dir) as store, store.reading() as s:
        assert [e.seq for e in outbox.pending(s, TOWN, limit=1000)] == waiting  # nothing deleted
    # The real township comes back and gets every decision; then, and only then, they settle.
    fed.town = spawn_node(fed.town_dir)
    with fed.client(fed.town) as t:
        wait_for(lambda: [e.action for e in t.get(fed.case).events][-2:] == ["review", "approve"], 15,
                 lambda: f"the township's history: {[e.action for e in t.get(fed.case).events]}")

    def settled() -> bool:
        with store_of(fed.county.data_dir) as store, store.reading() as s:
            return not {e.seq for e in outbox.pending(s, TOWN, limit=1000)} & set(waiting)

    wait_for(settled, 15, lambda: "the county kept the decisions the township has")
