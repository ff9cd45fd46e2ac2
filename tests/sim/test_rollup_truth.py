"""Ground truth: the city's rollup equals a brute-force recount over every node's own store.

A 4-level tree (the city, one county, two townships, four villages) runs a random
caseload: applications at villages (carried by agents) and at township windows, then
random legal decisions at whichever node owns each case (accept, return, review,
supplement requests and supplements, joint opinions, extensions, escalations, approvals,
rejections, completions, deliveries, withdrawals, requests from the applicant's window),
over several days. The network loses requests and answers, duplicates calls and
delivers copies late (out of order); one township is cut off from its county for a
third of the run. Supervision scans raise yellow and red cards, applicants rate delivered
cases at their window, complaints are filed about cases and windows anywhere. Nodes count
and send their statistics at random moments in between.
At the end every statistics envelope seen on the way is delivered to the city again, twice,
in a random order (old versions after new ones), past the link cursors that would drop
them, as a restore from backup could.

At the end, once the network heals and every node has flushed, the city's rows must
equal, field by field, a recount done here from scratch: plain SQL over each node's own
SQLite file, counting the events that node originated (``node.domain.statistics`` states the
rules; this file re-implements them without using that code), and the city's coverage
must list every node as reported. While the township is cut off, the city must NOT yet
have its villages' later work — and must say so in its coverage.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from govnet.node.app.complaints import FileCommand
from govnet.node.app.desk import DeskError
from govnet.node.app.statistics_ledger import StatsLedger, answer
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.domain.lifecycle import TRANSITIONS
from govnet.node.domain.statistics import COUNTERS, RATINGS
from govnet.ops.simulation.harness import Federation, _calendar, applicant, depth_first
from govnet.sync.envelope import Envelope
from govnet.sync.transport.memory import Faults

CATALOG = load_catalog_file(sample_catalog_path())
CAL = _calendar()
CITY, COUNTY = "371100", "371102"
TOWNS = ["371102001", "371102002"]
VILLAGES = [f"{t}{v}" for t in TOWNS for v in ("201", "202")]
NODES = [CITY, COUNTY, *TOWNS, *VILLAGES]
OFFLINE = TOWNS[0]
# What an agent carries from a village (decided at the village, township, county, city) and
# what a township window takes itself (its own items, and higher ones it escalates).
# ZR-0003 and GA-0002 charge fees; ZR-0002 and ZJ-0001 are joint.
AT_VILLAGE = ["MZ-0005", "WJ-0004", "YB-0001", "SJ-0002", "MZ-0001", "RS-0002", "ZR-0002", "SJ-0001", "HB-0003",
              "ZR-0003", "ZJ-0001", "HB-0001"]
AT_TOWNSHIP = ["SJ-0002", "MZ-0001", "MZ-0002", "HB-0002", "SJ-0001", "GA-0002", "ZR-0003", "HB-0004"]
WEIGHTS = {"accept": 6, "approve": 5, "review": 5, "complete": 6, "deliver": 5, "escalate": 4, "start_joint": 4,
           "opinion": 6, "supplement": 5, "return": 1, "reject": 1, "request_supplement": 2, "extend": 1,
           "withdraw": 1, "pay": 5, "waive_fee": 1, "green_channel": 1}


def item(code: str) -> Any:
    found = CATALOG.get(code)
    assert found is not None, code
    return found


def params_for(action: str, state: Any) -> dict[str, Any]:
    """Parameters a clerk would give for ``action`` on a case in ``state``."""
    it = item(state.item_code)
    if action in ("return", "reject", "withdraw"):
        return {"reason": "不符合条件"}
    if action == "request_supplement":
        return {"materials": [it.core_materials[-1]]}
    if action == "supplement":
        return {"materials": list(state.requested_materials + state.pending_materials)}
    if action == "opinion":
        pending = [d for d, o, _ in state.joint if o == "pending"]
        return {"department": pending[0] if pending else "", "agree": True}
    if action == "extend":
        return {"approver": "局长", "reason": "情况复杂"}
    if action == "pay":  # at the collection point: all that is due, or the first part of it
        owed = state.fees_due_fen - state.fees_paid_fen
        return {"amount_fen": owed if owed < 2000 else owed // 2, "method": "wechat", "number": f"WX{owed}"}
    if action == "waive_fee":
        return {"reason": "低保对象免收"}
    if action == "green_channel":
        return {"reason": "市重点项目"}
    return {}


def current_owner(fed: Federation, receipt: str, origin: str) -> tuple[str, Any] | None:
    """The node that holds the case as its owner, and the case there (None while a hand-over
    is in transit): follow the owner each holder names, from the applicant's window."""
    node = origin
    for _ in range(len(NODES)):
        try:
            state = fed.core(node).desk.get(receipt)[0].state
        except DeskError:
            return None  # not arrived yet
        if state.owner == node:
            return node, state
        node = state.owner
    return None


def random_step(fed: Federation, receipt: str, origin: str, rng: random.Random) -> bool:
    """One random legal-looking action on the case at its owner (or, for a supplement or a
    withdrawal, sometimes as a request from the applicant's window). Refusals are fine."""
    found = current_owner(fed, receipt, origin)
    if found is None:
        return False
    owner, state = found
    moves = [a.value for a in TRANSITIONS[state.status]]
    if not moves:
        return False
    action = rng.choices(moves, [WEIGHTS.get(m, 1) for m in moves])[0]
    at = origin if action in ("supplement", "withdraw") and origin != owner and rng.random() < 0.4 else owner
    try:
        fed.act(at, receipt, action, **params_for(action, state))
    except DeskError:
        return False
    return True


def supervision_step(fed: Federation, receipts: list[tuple[str, str]], rng: random.Random) -> None:
    """Now and then: a supervision scan somewhere (yellow and red cards), a rating at the
    applicant's window, a complaint about a case or a window. Refusals are fine."""
    r = rng.random()
    receipt, origin = rng.choice(receipts)
    try:
        if r < 0.15:
            fed.scan(rng.choice(NODES))
        elif r < 0.35:
            fed.evaluate(origin, receipt, rng.choice(RATINGS))
        elif r < 0.42:
            fed.complaints[rng.choice(NODES)].file(FileCommand("窗口态度差", receipt=receipt))
        elif r < 0.45:
            fed.complaints[origin].file(FileCommand("排队太久", about_node=rng.choice(NODES), department="民政局"))
    except DeskError:
        pass


def brute_force(db: Path, node: str) -> dict[tuple[str, str, str, str], dict[str, int]]:
    """Recount ``node``'s own facts from its own store, from scratch."""
    # A recount from the raw facts, independent of the ledger's own reads: SQL on purpose.
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        events = conn.execute("""
            SELECT date(e.happened_at, '+8 hours'), c.item_code, c.department, e.action,
                   json_extract(e.detail, '$.rating'), c.accepted_on, c.decided_on, c.due, c.paused_days, c.decision,
                   (SELECT count(*) FROM case_event a WHERE a.receipt = e.receipt AND a.action = 'accept'
                      AND a.origin = e.origin AND NOT a.superseded
                      AND date(a.happened_at, '+8 hours') = date(e.happened_at, '+8 hours')),
                   (SELECT coalesce(sum(json_extract(f.value, '$.amount_fen')
                                        * max(0, 1 - coalesce(json_extract(f.value, '$.free_units'), 0))), 0)
                      FROM catalog_release_item i, json_each(i.data, '$.fees') f
                      WHERE i.issuer = c.catalog_issuer AND i.version = c.catalog_version AND i.code = c.item_code),
                   json_extract(e.detail, '$.agent'), json_extract(e.detail, '$.case_type'),
                   json_extract(e.detail, '$.amount_fen'), json_extract(e.detail, '$.waived_fen')
            FROM case_event e JOIN case_record c ON c.receipt = e.receipt
            WHERE e.origin = ? AND NOT e.superseded""", (node,)).fetchall()
        complaints = conn.execute("""
            SELECT filed_on, coalesce(item_code, ''), department, count(*) FROM complaint WHERE about_node = ?
            GROUP BY 1, 2, 3""", (node,)).fetchall()
    finally:
        conn.close()
    out: dict[tuple[str, str, str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    plain = {"submit": "received", "accept": "accepted", "complete": "completed", "return": "returned",
             "escalate": "escalated", "request_supplement": "supplement_requests", "warn": "warnings",
             "overdue": "overdue", "green_channel": "green_channel"}
    for (day, code, dept, action, rating, accepted, decided, due, paused, decision, same_day_accept, fees, agent,
         kind, paid, waived) in events:
        row = out[(node, day, code, dept)]
        if action == "submit":  # carried and kind: two facts of one intake
            row["carried"] += int(bool(agent))
            if kind in ("immediate", "promised", "joint", "escalated"):
                row[f"kind_{kind}"] += 1
        if action == "pay":
            row["fees_collected_fen"] += paid
        if action == "waive_fee":
            row["fees_waived_fen"] += waived
        if action in plain:
            row[plain[action]] += 1
        if action in ("approve", "reject") and same_day_accept:
            row["immediate"] += 1
        if action == "evaluate":
            row[f"eval_{rating}"] += 1
        if action == "complete":
            row["on_time"] += int(decided is not None and due is not None and decided <= due)
            if decision == "approved":
                row["fees_fen"] += fees
            d, worked = date.fromisoformat(accepted), 0
            while d < date.fromisoformat(decided):
                d += timedelta(days=1)
                worked += CAL.is_working_day(d)
            row["processing_days"] += max(0, worked - paused)
    for day, code, dept, n in complaints:
        out[(node, day, code, dept)]["complaints"] += n
    return {k: v for k, v in out.items() if any(v.values())}


def stats_in_outbox(fed: Federation, node: str) -> list[Envelope]:
    """The stats envelopes waiting in ``node``'s outbox, as they travel (the test decodes them itself)."""
    return [env for link in fed.neighbours(node) for env in fed.outbox(node, link) if env.kind == "stats"]


def city_rows(fed: Federation) -> dict[tuple[str, str, str, str], dict[str, int]]:
    # The city's stored rows, to compare with the recount above without the query code under test.
    conn = sqlite3.connect(f"file:{fed.core(CITY).store.path}?mode=ro", uri=True)
    try:
        rows = conn.execute(f"SELECT node, day, item_code, department, {', '.join(COUNTERS)} FROM stat_row").fetchall()
    finally:
        conn.close()
    return {tuple(r[:4]): dict(zip(COUNTERS, r[4:])) for r in rows if any(r[4:])}  # type: ignore[misc]


def truth(fed: Federation) -> dict[tuple[str, str, str, str], dict[str, int]]:
    out: dict[tuple[str, str, str, str], dict[str, int]] = {}
    for n in NODES:
        out.update(brute_force(fed.core(n).store.path, n))
    return out


async def run(base: Path, seed: int, cases: int, steps: int, exercised: tuple[str, ...] = ()) -> None:
    rng = random.Random(seed)
    faults = Faults(drop_request=0.1, drop_reply=0.1, duplicate=0.25, delay=0.25)
    with Federation(base, NODES, seed=seed, faults=faults, durable=False) as fed:
        ledgers = {n: StatsLedger(fed.core(n).store, CAL) for n in NODES}

        sent: dict[tuple[str, int], Envelope] = {}  # every stats envelope seen in an outbox

        def flush_some() -> None:
            if rng.random() < 0.35:
                node = rng.choice(NODES)
                ledgers[node].flush_now(fed.clock.now(), report=rng.random() < 0.3)
                for env in stats_in_outbox(fed, node):
                    sent[(env.origin, env.origin_seq)] = env

        fed.publish(CITY, CATALOG)
        await fed.settle()
        fed.resume_faults()
        receipts: list[tuple[str, str]] = []
        for i in range(cases):
            if rng.random() < 0.6:
                node, code, agent = rng.choice(VILLAGES), rng.choice(AT_VILLAGE), "代办员"
            else:
                node, code, agent = rng.choice(TOWNS), rng.choice(AT_TOWNSHIP), ""
            it = item(code)
            materials = [m.name for m in it.materials]
            if rng.random() < 0.15:
                materials = materials[1:]  # something missing: a return (one-time notice) is likely
            done = fed.submit(node, code, f"key-{i}", **applicant(i), materials=materials, agent=agent)
            receipts.append((done.record.state.receipt, node))
            flush_some()
            if rng.random() < 0.5:
                await fed.churn(1, rng, most=3)
        cut_from, cut_to = steps // 3, 2 * steps // 3
        snapshot_while_cut: dict[str, Any] = {}
        for step in range(steps):
            if step == cut_from:
                fed.partition(OFFLINE, True)
            if step == cut_to:
                # Before the link comes back: everything counted at the cut-off subtree is
                # still short at the city, and the city's coverage shows how old its word is.
                for n in [*VILLAGES[:2], OFFLINE]:
                    ledgers[n].flush_now(fed.clock.now(), report=True)
                snapshot_while_cut["city"] = city_rows(fed)
                snapshot_while_cut["truth"] = truth(fed)
                snapshot_while_cut["answer"] = answer(fed.core(CITY).store, "node", "", "", fed.clock.now())
                snapshot_while_cut["now"] = fed.clock.now()
                fed.partition(OFFLINE, False)
            if step in (steps // 4, steps // 2, 3 * steps // 4):
                fed.clock.advance(timedelta(days=1))  # decisions on later days: not immediate
            supervision_step(fed, receipts, rng)
            for _ in range(4):  # a few tries to find a case that can still move
                receipt, origin = rng.choice(receipts)
                if random_step(fed, receipt, origin, rng):
                    break
            flush_some()
            if rng.random() < 0.6:
                await fed.churn(1, rng, most=4)

        # The end: heal, let everything arrive, every node counts what is left, settle again.
        await fed.settle()
        for n in depth_first(NODES):
            ledgers[n].flush_now(fed.clock.now(), report=True)
        await fed.settle()

        # Replays past the link cursors (as after a restore from backup): every stats envelope
        # seen on the way, again, old ones after new ones, in a random order, at the city.
        replay = list(sent.values()) * 2
        rng.shuffle(replay)
        city = fed.core(CITY)
        with city.store.transaction() as s:
            for env in replay:
                city.replicator.process(s, env, fed.clock.now())

        expected = truth(fed)
        got = city_rows(fed)
        assert len(sent) > 10
        assert sum(r["received"] for r in expected.values()) == cases
        assert sum(r["completed"] for r in expected.values()) > 0 and sum(r["accepted"] for r in expected.values()) > 0
        # Fees, carriage and the green channel really happened, so their exact sums are tested too.
        for counter in exercised:
            assert sum(r[counter] for r in expected.values()) > 0, counter
        assert set(got) == set(expected)
        for key in sorted(expected):
            assert got[key] == expected[key], key
        final = answer(fed.core(CITY).store, "node", "", "", fed.clock.now())
        assert final.coverage.missing == () and {r.node for r in final.coverage.reports} == set(NODES)
        for n in NODES:  # the grouped totals are the same sums
            assert final.groups.get(n, dict.fromkeys(COUNTERS, 0)) == {
                c: sum(v[c] for k, v in expected.items() if k[0] == n) for c in COUNTERS}
        for by, part in (("item", 2), ("day", 1)):  # and so are the sums by item and by day
            grouped = answer(fed.core(CITY).store, by, "", "", fed.clock.now()).groups
            wanted: dict[str, dict[str, int]] = {}
            for k, v in expected.items():
                into = wanted.setdefault(k[part], dict.fromkeys(COUNTERS, 0))
                for c in COUNTERS:
                    into[c] += v[c]
            assert grouped == dict(sorted(wanted.items()))
        assert fed.counts.link_down > 0  # the faults really happened

        # While the township was cut off, the city lacked work done under it, and knew it.
        cut_off = [OFFLINE, *VILLAGES[:2]]
        was = snapshot_while_cut
        behind = {k for k in was["truth"] if k[0] in cut_off and was["city"].get(k) != was["truth"][k]}
        assert behind, "the cut-off subtree's recent work should not have reached the city yet"
        reports = {r.node: r for r in was["answer"].coverage.reports}
        stale = [n for n in cut_off if n not in reports or reports[n].as_of < was["now"]]
        assert stale, "the city's coverage should show the cut-off nodes' reports as old or missing"


def test_city_rollup_equals_brute_force_recount(tmp_path: Path) -> None:
    asyncio.run(run(tmp_path, seed=20261121, cases=40, steps=260,
                    exercised=("fees_fen", "fees_collected_fen", "carried", "kind_escalated", "green_channel")))


def test_city_rollup_equals_brute_force_recount_another_seed(tmp_path: Path) -> None:
    asyncio.run(run(tmp_path, seed=7, cases=25, steps=160))
