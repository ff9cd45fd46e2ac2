"""``govnet demo``: a working day of a whole federation, on this machine, in about a minute.

It writes a topology of 15 nodes — city 371100, counties 371101 and 371102, two
townships under each, two villages under each township — into a directory it names,
starts them as real processes with the launcher (``ops.launcher``, as ``govnet up``
does), loads the sample catalog at the city and drives a day the way people would:

1. **morning intake**: village agents carry applications (代办) for items decided at every
   level; windows at townships and counties take applications too, and return one that
   lacks a core material;
2. **a township is cut off** (its process stops): its villages keep taking applications,
   which wait in their outboxes;
3. **decisions at every level**: each node's clerks accept, review, run joint reviews,
   approve, complete and deliver the cases it owns; two county windows escalate cases
   that the city decides;
4. **the township comes back**: its villages' backlog drains and its cases are decided;
5. **supervision**: a township window back-fills three paper applications it took during an
   outage six weeks ago (entered with the time they happened): past their due dates, they
   get red cards; yellow cards for cases close to their due dates (the demo's nodes warn
   30 working days ahead, so a day's cases get them); applicants rate delivered cases,
   one rating is dissatisfied, and one complaint is filed;
6. **the end of the day**: the city's rollup (``govnet stats`` at the city) and the tree
   with each node's health, sync lag and open alarms (``govnet status``), then every node
   is stopped cleanly.

Every call is made by a signed-in person (``DEMO_ACCOUNTS``, written into each new data
directory; the demo prints how to log in): the window (a comprehensive window with the chief
representative's signing power), the village agents, ops with supervision, and applicants
who rate with the one-time code printed on their receipt.

Every node serves its console (``[console]``, HTTPS with its certificate); at the end the demo
prints the console addresses of a village, a township and the city with the accounts to sign in
as, and, run on a terminal, keeps the federation serving until Ctrl-C so a newcomer can click
through the day (without a terminal it stops every node by itself).

The topology stays in the directory: ``govnet up DIR/topology.toml`` starts the same
federation again on the data the day left.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from govnet.node.domain.catalog import ItemType, ServiceItem, load_catalog_file, sample_catalog_path
from govnet.node.domain.fees import yuan
from govnet.node.rpc.client import ClientError, GovnetClient
from govnet.ops.applicants import fake_applicant
from govnet.ops.launcher import Federation, LaunchError, Member, format_status, read_statuses
from govnet.ops.processes import AccountSpec, free_ports
from govnet.ops.topology import NodeSpec, Topology, TopologyError, city_topology, dump_topology, load_topology

CITY = "371100"
SETTINGS = {
    # A township back after its cut-off is tried again within seconds, not the minutes of a real link.
    "sync": {"flush_interval_s": 0.25, "digest_interval_s": 10.0, "retry_cap_s": 2.0},
    "supervision": {"scan_interval_s": 1.0, "warn_working_days": 30},
    "statistics": {"flush_interval_s": 0.5},
}
CUT_OFF = "371102002"  # the township whose link goes down mid-day
WAIT_S = 30.0  # the longest any one step waits for the federation to settle
DEMO_PASSWORD = "govnet-demo"  # a demo on loopback: printed, known, never for a real node
WINDOW, AGENT, ADMIN = "window", "daiban", "admin"


def demo_accounts(spec: NodeSpec) -> list[AccountSpec]:
    """The people of each demo node (same password everywhere)."""
    people = [AccountSpec(ADMIN, ("ops", "supervisor"), DEMO_PASSWORD, name="运维 周磊"),
              AccountSpec(WINDOW, ("window_clerk", "chief_representative"), DEMO_PASSWORD, name="综合窗口 王敏",
                          departments=("*",))]
    if spec.level.value == "village":
        people.append(AccountSpec(AGENT, ("village_agent",), DEMO_PASSWORD, name="代办员 李娟"))
    return people


def write_topology(base: Path) -> Path:
    """The demo's 15 nodes on free loopback ports (kept if the directory already has one)."""
    path = base / "topology.toml"
    if path.exists():
        return path
    document = city_topology(CITY, counties=2, townships=2, villages=2)
    ports = iter(free_ports(3 * len(document["node"])))
    for node in document["node"]:
        node["listen"], node["http"] = f"127.0.0.1:{next(ports)}", f"127.0.0.1:{next(ports)}"
        node["console"] = f"127.0.0.1:{next(ports)}"  # the console's pages, HTTPS with the node's certificate
    document["defaults"].update(SETTINGS)
    base.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_topology(document), encoding="utf-8")
    return path


class Progress:
    """Live progress: each line says how long the day has been running."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.1f} s] {text}", flush=True)


def wait_until(check: Callable[[], bool], limit: float = WAIT_S) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


class Day:
    """The clerks, agents and applicants of the demo, talking to the nodes over gRPC."""

    def __init__(self, federation: Federation, rng: random.Random) -> None:
        self.federation, self.rng = federation, rng
        self.items = load_catalog_file(sample_catalog_path()).items
        self.clients: dict[tuple[str, str], GovnetClient] = {}
        self.receipts: dict[str, str] = {}  # receipt -> node where the applicant applied
        self.codes: dict[str, str] = {}  # receipt -> the rating code printed on it (the applicant's)
        self.refused: Counter[str] = Counter()
        self.why: dict[str, str] = {}  # the first refusal of each kind, to show what the desk said

    def client(self, node_id: str, login: str = WINDOW) -> GovnetClient:
        """A client of the node, signed in as ``login`` (the window by default)."""
        if (node_id, login) not in self.clients:
            spec = self.federation.topology.get(node_id)
            assert spec is not None
            certs = self.federation.pki.client if self.federation.pki is not None else None
            client = GovnetClient(str(spec.listen), timeout=10, token="", certs=certs)
            client.login(login, DEMO_PASSWORD)
            self.clients[(node_id, login)] = client
        return self.clients[(node_id, login)]

    def close(self) -> None:
        for c in self.clients.values():
            c.close()

    def nodes(self, level: str) -> list[str]:
        return [n.node_id for n in self.federation.topology.nodes if n.level.value == level]

    def items_at(self, level: str, proxy: bool = False) -> list[ServiceItem]:
        return [i for i in self.items if i.authority_level.value == level and (i.proxy or not proxy)]

    def submit(self, node_id: str, item: ServiceItem, agent: bool = False, complete: bool = True) -> str | None:
        """An application at the node's window, or carried by its village agent (``agent``)."""
        materials = list(item.core_materials) if complete else list(item.core_materials)[:-1]
        try:
            done = self.client(node_id, AGENT if agent else WINDOW).submit(
                idempotency_key=f"demo-{node_id}-{len(self.receipts)}-{self.rng.random()}", item_code=item.code,
                materials=materials, **asdict(fake_applicant(self.rng)))
        except ClientError as exc:
            self.refused[exc.code.name] += 1
            return None
        self.receipts[done.case.receipt] = node_id
        self.codes[done.case.receipt] = done.rating_code
        return done.case.receipt

    def act(self, node_id: str, receipt: str, action: str, **params: Any) -> Any:
        try:
            params.pop("actor", None)  # who acts is who signed in
            return self.client(node_id).act(receipt, action, **params)
        except ClientError as exc:
            self.refused[exc.code.name] += 1
            self.why.setdefault(exc.code.name, f"{action} on {receipt}: {exc}")
            return None

    # --- the day's work ---

    def village_intake(self, villages: Iterable[str], per_village: int) -> int:
        levels = ("village", "township", "township", "county", "city")
        count = 0
        for village in villages:
            for i in range(per_village):
                pool = self.items_at(levels[i % len(levels)], proxy=True)
                if pool and self.submit(village, self.rng.choice(pool), agent=True):
                    count += 1
        return count

    def window_intake(self) -> int:
        count = 0
        for township in self.nodes("township"):
            if township == CUT_OFF:
                continue
            for item in self.items_at("township")[:2]:
                count += bool(self.submit(township, item))
        for county in self.nodes("county"):
            for item in [i for i in self.items_at("county") if i.item_type is ItemType.JOINT][:1] + \
                    [i for i in self.items_at("county") if i.item_type is ItemType.PROMISED][:2]:
                count += bool(self.submit(county, item))
            returned = self.submit(county, self.items_at("county")[0], complete=False)
            if returned:
                self.act(county, returned, "return", reason="缺少核心材料")
            # A city item at a county window: reviewed here first, then escalated.
            escalated = self.submit(county, self.items_at("city")[0])
            if escalated:
                self.act(county, escalated, "accept")
                self.act(county, escalated, "review", actor="初审 科员")
                self.act(county, escalated, "escalate", actor="初审 科员", reason="市级权限")
                count += 1
        return count

    def decide_everything(self, skip: Iterable[str] = ()) -> Counter[str]:
        """Every node's clerks work through the cases it owns that are waiting for them."""
        done: Counter[str] = Counter()
        for node in (n.node_id for n in self.federation.topology.nodes if n.node_id not in set(skip)):
            page = self.client(node).list(limit=1000)
            for case in page.cases:
                waiting = case.owner == node and case.status in ("received", "accepted", "escalated")
                if waiting and self.work_through(node, case):
                    done[node] += 1
        return done

    def work_through(self, node: str, case: Any) -> bool:
        """Accept, review (jointly when the item says so), approve, complete and deliver."""
        r = case.receipt
        kind = next((i.item_type for i in self.items if i.code == case.item_code), ItemType.PROMISED)
        if case.status == "received" and self.act(node, r, "accept") is None:
            return False
        needs_review = kind is not ItemType.IMMEDIATE and case.status != "under_review"
        if needs_review and self.act(node, r, "review", actor="科室 审核员") is None:
            return False
        if kind is ItemType.JOINT:
            started = self.act(node, r, "start_joint", actor="牵头部门")
            for opinion in getattr(started, "joint", []):
                self.act(node, r, "opinion", actor="会审", department=opinion.department, agree=True)
        if self.act(node, r, "approve", actor="首席代表") is None:
            return False
        if self.rng.random() < 0.8:
            completed = self.act(node, r, "complete", actor="窗口 王敏")
            owed = getattr(completed, "fees_outstanding_fen", 0)
            if owed:  # 统一收费: paid at the collection point before the result is handed over
                self.pay(node, r, owed)
            self.act(node, r, "deliver", actor="窗口 王敏")
        return True

    def pay(self, node_id: str, receipt: str, fen: int) -> Any:
        method = self.rng.choice(("wechat", "alipay", "cash", "card"))
        try:
            return self.client(node_id).pay_fee(receipt, yuan(fen), method, f"SF-{receipt[-8:]}")
        except ClientError as exc:
            self.refused[exc.code.name] += 1
            self.why.setdefault(exc.code.name, f"pay on {receipt}: {exc}")
            return None

    def paper_applications(self, township: str, weeks_ago: int = 6) -> list[str]:
        """Applications a township window took on paper during an outage weeks ago, entered now
        with the time they happened (back-filled) and accepted then: their promised limit has
        run out, so the owner's scanner gives them red cards."""
        then = datetime.now(UTC) - timedelta(weeks=weeks_ago)
        entered = []
        promised = [i for i in self.items_at("township") if i.item_type is ItemType.PROMISED]
        for n in range(3 if promised else 0):
            item = promised[n % len(promised)]
            try:
                done = self.client(township).submit(
                    idempotency_key=f"demo-paper-{township}-{n}", item_code=item.code,
                    materials=list(item.core_materials), happened_at=then.isoformat(),
                    **asdict(fake_applicant(self.rng)))
            except ClientError as exc:
                self.refused[exc.code.name] += 1
                continue
            receipt = done.case.receipt
            self.receipts[receipt] = township
            if self.act(township, receipt, "accept", happened_at=(then + timedelta(hours=1)).isoformat()):
                entered.append(receipt)
        return entered

    def red_cards(self, node: str) -> int:
        return sum(1 for a in self.client(node, ADMIN).alarms(open_only=True).alarms if a.card == "red")

    def evaluations_and_a_complaint(self) -> tuple[Counter[str], str]:
        ratings: Counter[str] = Counter()
        delivered = [(r, at) for r, at in self.receipts.items()]
        self.rng.shuffle(delivered)
        for receipt, at in delivered:
            try:
                case = self.client(at).get(receipt)
            except ClientError:
                continue
            if case.status != "delivered" or sum(ratings.values()) >= 12:
                continue
            rating = "dissatisfied" if not ratings["dissatisfied"] else self.rng.choice(
                ("very_satisfied", "satisfied", "satisfied", "basically_satisfied"))
            try:  # the applicant, with the code printed on the receipt (no login)
                certs = self.federation.pki.client if self.federation.pki is not None else None
                with GovnetClient(self.client(at).address, timeout=10, token="", certs=certs) as applicant:
                    applicant.evaluate(receipt, rating, comment="排队时间长" if rating == "dissatisfied" else "",
                                       rating_code=self.codes.get(receipt, ""))
                ratings[rating] += 1
            except ClientError as exc:
                self.refused[exc.code.name] += 1
        complaint = ""
        for receipt, at in self.receipts.items():
            if at.startswith(CUT_OFF):
                try:
                    filed = self.client(at).file_complaint("网络中断期间办理进度查询不到", receipt=receipt)
                    complaint = f"{filed.complaint_id} about {receipt} (supervised by {filed.supervisor})"
                    break
                except ClientError as exc:
                    self.refused[exc.code.name] += 1
        return ratings, complaint


def _outbox(statuses: dict[str, dict[str, Any] | None], nodes: Iterable[str]) -> int:
    total = 0
    for node in nodes:
        status = statuses.get(node) or {}
        total += sum(link["outbox_depth"] for link in status.get("links", []) if link["direction"] == "up")
    return total


def run_demo(directory: Path | None = None, seed: int = 7) -> int:
    rng = random.Random(seed)
    base = directory or Path(tempfile.mkdtemp(prefix="govnet-demo-"))
    say = Progress()
    try:
        topology = load_topology(write_topology(base))
    except TopologyError as exc:
        print(f"govnet demo: {exc}")
        return 1
    print(f"data directory: {base} (topology: {topology.path})")
    federation = Federation(topology, accounts=demo_accounts)
    try:
        created = federation.prepare()
    except LaunchError as exc:
        print(f"govnet demo: {exc}")
        return 1
    assert federation.pki is not None
    say(f"{len(created)} data directories created; starting {len(topology.nodes)} nodes, parents first …")
    say(f"mutual TLS: city CA in {federation.pki.ca}, client certificate in {federation.pki.client} "
        f"(govnet --certs {federation.pki.client} case list --node …)")
    started: list[Member] = []
    federation.start(on_started=started.append)
    say(f"{len(started)} nodes serving: 1 city, 2 counties, 4 townships, 8 villages")
    city = topology.get(CITY)
    assert city is not None
    say(f"how to log in: every node has the accounts {ADMIN} (运维, 监察员), {WINDOW} (综合窗口, 首席代表) and, at "
        f"villages, {AGENT} (村代办员); password '{DEMO_PASSWORD}'. E.g. "
        f"'govnet login --user {WINDOW} --node {city.listen}', then 'govnet case list --node {city.listen}'")
    day = Day(federation, rng)
    try:
        code = _the_day(day, federation, say)
        print_consoles(topology)
        if code == 0 and sys.stdin.isatty() and sys.stdout.isatty():
            say("the federation keeps serving so you can click through the consoles; Ctrl-C stops it")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print()
        return code
    finally:
        day.close()
        codes = federation.stop()
        clean = sum(1 for c in codes.values() if c == 0)
        say(f"{clean} of {len(codes)} nodes stopped cleanly; data stays in {base} "
            f"('govnet up {topology.path}' starts them again)")


CONSOLE_NODES = (("city", CITY), ("township", "371101001"), ("village", "371101001201"))


def print_consoles(topology: Topology) -> None:
    """Where a newcomer clicks through the day: the console of a village, a township and the city,
    with the accounts to sign in as (the certificate is the demo city's own: the browser warns)."""
    print()
    print(f"consoles (HTTPS; the demo city's own certificate, so the browser asks once; password '{DEMO_PASSWORD}'):")
    for level, node_id in CONSOLE_NODES:
        spec = topology.get(node_id)
        if spec is None or spec.console is None:
            continue
        who = f"{AGENT} (村代办员), {WINDOW} (综合窗口)" if level == "village" else f"{WINDOW} (综合窗口), {ADMIN} (监察员)"
        print(f"  {level:8} {node_id:12}  https://{spec.console}/  log in as {who}")
    print()


def _the_day(day: Day, federation: Federation, say: Progress) -> int:
    topology = federation.topology
    catalog = load_catalog_file(sample_catalog_path())
    put = day.client(CITY, ADMIN).put_catalog(catalog)
    everywhere = wait_until(lambda: all(day.client(n.node_id).list_items().releases for n in topology.nodes))
    say(f"catalog version {put.version} ({put.item_count} items) loaded at the city"
        + (" and in force at every node" if everywhere else " (still travelling down)"))

    villages = day.nodes("village")
    n = day.village_intake(villages, per_village=5)
    n += day.window_intake()
    say(f"morning intake: {n} cases at 8 village agent points and the township and county windows")

    federation.stop_node(CUT_OFF)
    cut_villages = [v for v in villages if v.startswith(CUT_OFF)]
    say(f"township {CUT_OFF} is cut off; its villages {', '.join(cut_villages)} keep working")
    n = day.village_intake(cut_villages, per_village=4)
    wait_until(lambda: _outbox(read_statuses(topology, 1.0), cut_villages) >= n, 5)
    waiting = _outbox(read_statuses(topology, 1.0), cut_villages)
    say(f"{n} more cases at the cut-off villages; {waiting} messages wait in their outboxes")

    wait_until(lambda: _outbox(read_statuses(topology, 1.0), [v for v in villages if v not in cut_villages]) == 0, 10)
    decided = day.decide_everything(skip=[CUT_OFF])
    say(f"decisions at every level: {sum(decided.values())} cases decided by "
        f"{len(decided)} nodes ({', '.join(f'{k} {v}' for k, v in sorted(decided.items()))})")

    federation.start_node(CUT_OFF)
    drained = wait_until(lambda: _outbox(read_statuses(topology, 1.0), cut_villages) == 0)
    say(f"township {CUT_OFF} reconnected: its villages' backlog " + ("drained" if drained else "still draining"))
    # Escalated cases reach the city; the reconnected township's cases wait there: decide what is left.
    wait_until(lambda: all(_outbox(read_statuses(topology, 1.0), [n.node_id]) == 0 for n in topology.nodes), 10)
    decided = day.decide_everything()
    say(f"afternoon: {sum(decided.values())} more cases decided, including the reconnected township's")

    paper_at = next(t for t in day.nodes("township") if t != CUT_OFF)
    paper = day.paper_applications(paper_at)
    # The township's scanner runs every second; on a loaded machine its round may take longer.
    overdue = wait_until(lambda: day.red_cards(paper_at) >= len(paper), 30)
    say(f"{len(paper)} paper applications from an outage six weeks ago back-filled at township {paper_at}: "
        + (f"past their due dates, {day.red_cards(paper_at)} red cards (overdue)" if overdue and paper
           else "no red cards yet"))

    wait_until(lambda: all(_outbox(read_statuses(topology, 1.0), [n.node_id]) == 0 for n in topology.nodes), 10)
    ratings, complaint = day.evaluations_and_a_complaint()
    say("evaluations: " + (", ".join(f"{k} {v}" for k, v in sorted(ratings.items())) or "none (no case delivered)"))
    say("complaint filed: " + (complaint or "none"))
    alarms = sum((s or {}).get("open_alarms", 0) for s in read_statuses(topology, 1.0).values())
    say(f"supervision: {alarms} open alarms (red cards for overdue cases; yellow cards for cases within "
        "30 working days of their due date)")
    if day.refused:
        say("refused calls (the desk said no, as it should): "
            + ", ".join(f"{k} {v}" for k, v in sorted(day.refused.items())))
        for why in day.why.values():
            say(f"  e.g. {why}")

    # The city's rollup: totals exact, with how fresh they are and which nodes they cover.
    from govnet.node.cli.stats import format_stats

    def rolled_up() -> bool:
        got = day.client(CITY, ADMIN).stats(by="level")
        c = got.total.counters
        rated = sum(getattr(c, f"eval_{r}") for r in ("very_satisfied", "satisfied", "basically_satisfied",
                                                       "dissatisfied", "very_dissatisfied"))
        return (got.coverage.nodes_reported >= len(topology.nodes) and rated >= sum(ratings.values())
                and c.complaints >= (1 if complaint else 0))

    say("the city's rollup " + ("has everything" if wait_until(rolled_up, 15) else "is still catching up"))
    print()
    print(format_stats(day.client(CITY, ADMIN).stats(by="level")))
    print()
    statuses = read_statuses(topology, 2.0)
    print("each node and its links (govnet status):")
    print(format_status(topology, statuses))
    return 0
