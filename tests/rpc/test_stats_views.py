"""``govnet stats`` for a city supervisor over real gRPC (issue #13, point 9): counties ranked by
a rate, a drill-down into one county's subtree, per-department figures; bad questions refused
with INVALID_ARGUMENT naming the field.

A city and two counties on loopback, each with its own store and statistics flusher. County
371102 completes a case on time at the window; county 371103 only receives one (its on-time
rate is unknown: nothing completed)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from click.testing import CliRunner

from govnet.node.rpc.client import ClientError, GovnetClient
from govnet.ops.cli import main

from support.helpers import CHIEF, CLERK, submit

FAST = {"sync": {"flush_interval_s": 0.05}, "statistics": {"flush_interval_s": 0.05}}
CITY, BUSY, QUIET = "371100", "371102", "371103"


def wait_for(what: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


@pytest.fixture
def city(make_node) -> tuple[str, GovnetClient, dict[str, GovnetClient]]:
    city, city_client = make_node(CITY, "city", **FAST)
    clients = {}
    for county_id in (BUSY, QUIET):
        _, clients[county_id] = make_node(county_id, "county", parent=city.address, catalog=False, **FAST)
        assert wait_for(lambda c=clients[county_id]: c.list_items().items), f"catalog never reached {county_id}"
    done = submit(clients[BUSY], "SJ-0001").case.receipt
    for action, actor in (("accept", CLERK), ("approve", CHIEF), ("complete", CLERK)):
        clients[BUSY].act(done, action, actor=actor)
    submit(clients[QUIET], "SJ-0001")
    submit(clients[QUIET], "HB-0005")
    # Both counts: the busy county's completion may be counted in a later flush than its intake.
    arrived = wait_for(lambda: {g.key: (g.counters.received, g.counters.completed)
                                for g in city_client.stats(by="child").groups} == {BUSY: (1, 1), QUIET: (2, 0)})
    assert arrived, f"the counties' figures never reached the city: {city_client.stats(by='child')}"
    return city.address, city_client, clients


def test_counties_ranked_by_a_rate_either_way_unknown_last(city) -> None:
    _, client, _ = city
    ranked = client.stats(by="child", rank_by="on_time")
    assert [g.key for g in ranked.groups] == [BUSY, QUIET] and ranked.rank_by == "on_time"
    assert ranked.groups[0].rates.on_time == 1.0 and not ranked.groups[1].rates.HasField("on_time")
    # Ascending: still unknown last (nothing completed is neither best nor worst).
    assert [g.key for g in client.stats(by="child", rank_by="on_time", ascending=True).groups] == [BUSY, QUIET]
    assert [g.key for g in client.stats(by="child", rank_by="received").groups] == [QUIET, BUSY]
    assert [g.key for g in client.stats(by="child", rank_by="received", ascending=True).groups] == [BUSY, QUIET]


def test_drill_down_into_a_county_and_per_department(city) -> None:
    _, client, _ = city
    whole = client.stats(by="department")
    below = client.stats(subtree=QUIET, by="department")
    assert (below.node, below.answered_by) == (QUIET, CITY)
    assert below.total.counters.received == 2 and whole.total.counters.received == 3
    # Per department (window), the city's figures are the sums of the counties' own.
    busy = {g.key: g.counters.received for g in client.stats(subtree=BUSY, by="department").groups}
    quiet = {g.key: g.counters.received for g in below.groups}
    assert {g.key: g.counters.received for g in whole.groups} == {k: busy.get(k, 0) + quiet.get(k, 0)
                                                                  for k in {*busy, *quiet}}
    assert len(quiet) == 2  # SJ-0001 and HB-0005 belong to two departments
    children = client.stats(subtree=QUIET, by="child")
    assert [g.key for g in children.groups] == ["(own)"] and children.coverage.nodes_reported == 1


def test_cli_ranks_and_drills_down(city) -> None:
    address, _, _ = city
    runner = CliRunner()
    ranked = runner.invoke(main, ["stats", "--node", address, "--rank-by", "on_time"])
    assert ranked.exit_code == 0, ranked.output
    assert "按下级" in ranked.output and "按 on_time 排名（从高到低" in ranked.output
    lines = ranked.output.splitlines()
    assert lines[2].split()[0] == "名次"
    assert [line.split()[:2] for line in lines[4:6]] == [["1", BUSY], ["2", QUIET]]

    drilled = runner.invoke(main, ["stats", "--node", address, "--subtree", QUIET, "--json"])
    assert drilled.exit_code == 0, drilled.output
    out = json.loads(drilled.output)
    assert (out["node"], out["answered_by"], out["by"]) == (QUIET, CITY, "child")
    assert out["total"]["counters"]["received"] == "2"


@pytest.mark.parametrize("question, field, says", [
    ({"subtree": "371200"}, "subtree", "not in the subtree of node 371100"),
    ({"subtree": "37110"}, "subtree", "is not a node id"),
    ({"rank_by": "speed"}, "rank_by", "'speed' is not one of on_time, immediate, satisfaction"),
])
def test_a_bad_drill_down_or_ranking_is_invalid_argument_naming_the_field(city, question, field, says) -> None:
    _, client, _ = city
    with pytest.raises(ClientError) as err:
        client.stats(**question)
    assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and err.value.field == field
    assert says in str(err.value)


def test_a_county_cannot_drill_into_its_sibling(city) -> None:
    _, _, counties = city
    assert counties[BUSY].stats(subtree=BUSY).total.counters.received == 1  # itself: allowed
    with pytest.raises(ClientError) as err:
        counties[BUSY].stats(subtree=QUIET)
    assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and err.value.field == "subtree"
    assert f"node {QUIET} is not in the subtree of node {BUSY}" in str(err.value)
