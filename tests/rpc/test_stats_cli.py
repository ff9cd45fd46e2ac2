"""`govnet stats` over real gRPC: a county's work shows in the city's totals, with coverage.

Two real nodes on loopback (a city and a county whose parent it is), each with its own
SQLite store and its statistics flusher running as in `govnet node serve`. Cases are
decided at the county; the city's answer is polled (bounded) until it has them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from click.testing import CliRunner

from govnet.node.domain.people import Role
from govnet.node.rpc.client import ClientError, GovnetClient
from govnet.ops.cli import main

from support.accounts import staff
from support.helpers import CHIEF, CLERK, core_materials, submit

FAST = {"sync": {"flush_interval_s": 0.05}, "statistics": {"flush_interval_s": 0.05}}
DAY = "2026-03-10"  # the clock fixture's Tuesday


def wait_for(what: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


@pytest.fixture
def city_and_county(make_node):
    city, city_client = make_node("371100", "city", **FAST)
    county, county_client = make_node("371102", "county", parent=city.address, catalog=False, **FAST)
    # The catalog comes down from the city; wait for it before taking cases at the county.
    assert wait_for(lambda: county_client.list_items().items), "catalog never reached the county"
    return city, city_client, county, county_client


def decide_two_cases(client: GovnetClient) -> tuple[str, str]:
    """An immediate case approved, completed and delivered at the window; one returned."""
    done = submit(client, "SJ-0001").case.receipt
    for action, actor in (("accept", CLERK), ("approve", CHIEF), ("complete", CLERK), ("deliver", CLERK)):
        client.act(done, action, actor=actor)
    returned = submit(client, "SJ-0001", core_materials("SJ-0001")[:-1]).case.receipt
    client.act(returned, "return", actor=CLERK)
    return done, returned


def test_the_city_counts_the_countys_cases_with_coverage(city_and_county) -> None:
    _, city_client, _, county_client = city_and_county
    decide_two_cases(county_client)
    answer = wait_for(lambda: (a := city_client.stats()) and a.total.counters.completed == a.total.counters.returned == 1 and a)
    assert answer, f"the county's work never reached the city: {city_client.stats()}"
    c = answer.total.counters
    assert (c.received, c.accepted, c.immediate, c.completed, c.on_time, c.returned) == (2, 1, 1, 1, 1, 1)
    assert answer.total.rates.on_time == 1.0 and answer.total.rates.immediate == 1.0
    assert not answer.total.rates.HasField("satisfaction")  # nobody rated: unknown, not 0 %
    assert [g.key for g in answer.groups] == ["371102"] and answer.node == "371100" and answer.by == "node"

    cov = answer.coverage
    assert cov.nodes_known == 2 and cov.nodes_reported == 2 and list(cov.missing) == []
    assert {r.node for r in cov.reports} == {"371100", "371102"} and cov.oldest.node in {"371100", "371102"}
    assert [ch.child for ch in cov.children] == ["371102"] and cov.children[0].last_heard

    # The county answers for itself the same way; grouped by item and by day.
    here = county_client.stats(by="item")
    assert [(g.key, g.counters.received) for g in here.groups] == [("SJ-0001", 2)]
    by_day = city_client.stats(by="day", from_day=DAY, to_day=DAY)
    assert [(g.key, g.counters.received) for g in by_day.groups] == [(DAY, 2)]
    assert city_client.stats(from_day="2026-03-11").total.counters.received == 0
    by_child = city_client.stats(by="child")
    assert [(g.key, g.counters.returned) for g in by_child.groups] == [("371102", 1)]


def test_ratings_and_complaints_count_for_the_node_concerned(city_and_county) -> None:
    _, city_client, county, county_client = city_and_county
    delivered, returned = decide_two_cases(county_client)
    staff(county, "kiosk", Role.TERMINAL).evaluate(delivered, "basically_satisfied", "还行")  # the applicant, at a terminal
    county_client.file_complaint("退件理由说不清", receipt=returned)
    answer = wait_for(lambda: (a := city_client.stats()) and a.total.counters.complaints == 1 and a)
    assert answer, f"the rating and the complaint never reached the city: {city_client.stats()}"
    c = answer.total.counters
    assert (c.eval_basically_satisfied, c.complaints, c.received) == (1, 1, 2)
    assert answer.total.rates.satisfaction == 1.0
    assert [(g.key, g.counters.complaints) for g in answer.groups] == [("371102", 1)]


def test_cli_prints_a_table_with_its_coverage_and_json_for_scripts(city_and_county) -> None:
    city, city_client, _, county_client = city_and_county
    decide_two_cases(county_client)
    assert wait_for(lambda: city_client.stats().total.counters.returned == 1)

    runner = CliRunner()
    table = runner.invoke(main, ["stats", "--node", city.address, "--by", "level"])
    assert table.exit_code == 0, table.output
    assert "节点 371100 及其下级的办件统计（by level：按层级）" in table.output
    lines = table.output.splitlines()
    county_line = next(line for line in lines if line.startswith("county"))
    assert county_line.split()[1:5] == ["2", "1", "1", "1"]  # received, accepted, immediate, completed
    assert "覆盖：已知 2 个节点，2 个已上报" in table.output
    assert "下级 371102：最近联系 2026-03-10" in table.output and "最早的上报：节点" in table.output

    run = runner.invoke(main, ["stats", "--node", city.address, "--by", "item", "--from", DAY, "--to", DAY, "--json"])
    assert run.exit_code == 0, run.output
    out = json.loads(run.output)
    assert out["by"] == "item" and out["from_day"] == DAY and out["to_day"] == DAY
    assert out["total"]["counters"]["received"] == "2"  # int64 is a string in proto JSON
    assert out["groups"][0]["key"] == "SJ-0001" and out["coverage"]["nodes_reported"] == 2


@pytest.mark.parametrize("args, says", [
    (["--by", "window"], "'window' is not one of"),
    (["--from", "2026-13-01"], "'2026-13-01' is not a date (YYYY-MM-DD)"),
    (["--from", "2026-03-11", "--to", "2026-03-10"], "--from 2026-03-11 is after --to 2026-03-10"),
])
def test_cli_refuses_a_bad_question_in_one_line(args: list[str], says: str) -> None:
    run = CliRunner().invoke(main, ["stats", "--node", "127.0.0.1:1", *args])
    assert run.exit_code == 2
    assert says in run.output and len(run.output.strip().splitlines()) == 1


def test_cli_says_when_the_node_is_not_there() -> None:
    run = CliRunner().invoke(main, ["stats", "--node", "127.0.0.1:1"])
    assert run.exit_code == 3 and "not reachable" in run.output and len(run.output.strip().splitlines()) == 1


@pytest.mark.parametrize("question, says", [
    ({"by": "window"}, "by: 'window' is not one of level, child, node"),
    ({"from_day": "10/03/2026"}, "from: '10/03/2026' is not a date"),
    ({"from_day": "2026-03-11", "to_day": "2026-03-10"}, "from 2026-03-11 is after to 2026-03-10"),
])
def test_rpc_refuses_a_bad_question_with_invalid_argument(make_node, question: dict[str, str], says: str) -> None:
    _, client = make_node("371100", "city", catalog=False)
    with pytest.raises(ClientError) as err:
        client.stats(**question)
    assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and says in str(err.value)


def test_the_table_says_which_nodes_are_missing_and_how_old_the_oldest_report_is() -> None:
    from govnet.node.cli.stats import format_stats
    from govnet.v1 import stats_pb2

    old = stats_pb2.NodeReport(node="371102001201", version=3, as_of="2026-03-10T01:00:00+00:00")
    answer = stats_pb2.StatsAnswer(
        node="371102", by="node", from_day="2026-03-10", answered_at="2026-03-10T03:00:00+00:00",
        groups=[stats_pb2.StatsGroup(key="371102001201", counters=stats_pb2.Counters(received=4))],
        total=stats_pb2.StatsGroup(key="total", counters=stats_pb2.Counters(received=4)),
        coverage=stats_pb2.Coverage(nodes_known=3, nodes_reported=1, missing=["371102", "371102001"], oldest=old,
                                    reports=[old], children=[stats_pb2.ChildHeard(child="371102001")]),
    )
    text = format_stats(answer)
    assert "（by node：按节点），自 2026-03-10 起" in text
    assert "覆盖：已知 3 个节点，1 个已上报" in text
    assert "从未上报（不在合计内）：371102、371102001" in text
    assert "最早的上报：节点 371102001201，数据完整至 2026-03-10 09:00:00 北京时间（2.0 小时前）" in text
    assert "下级 371102001：最近联系 从未" in text
