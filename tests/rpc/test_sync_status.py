"""What ops see of sync over the real gRPC service: link status (CLI and API), a refusal
shown in the child's status, and a busy parent answering RESOURCE_EXHAUSTED with a hint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.rpc.client import GovnetClient
from govnet.sync.envelope import PROTOCOL_VERSION
from govnet.sync.transport.base import Hello, ParentBusy

from support.accounts import start_in_process
from support.helpers import govnet, push_one, uplink_as, wait_for
from support.inprocess import BackgroundLoop, InProcessNode, in_process_nodes

FAST = {"flush_interval_s": 0.1, "digest_interval_s": 5.0}


@pytest.fixture
def nodes(loop: BackgroundLoop, tmp_path: Path) -> Iterator[Callable[..., InProcessNode]]:
    """Nodes on the real clock (the link driver's backoff runs on it)."""
    yield from in_process_nodes(loop, tmp_path, FAST, start=start_in_process)


def status_json(address: str) -> dict:
    out = govnet("sync", "status", "--node", address, "--json", timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def up_link(address: str) -> dict:
    return next(link for link in status_json(address)["links"] if link["direction"] == "up")


def test_status_shows_a_link_connected_then_offline_with_what_waits(nodes) -> None:
    city = nodes("371100", "city")
    county = nodes("371102", "county", parent=city.address)
    with GovnetClient(city.address) as c:
        c.put_catalog(load_catalog_file(sample_catalog_path()))
    wait_for(lambda: up_link(county.address)["state"] == "connected", 15, lambda: str(up_link(county.address)))
    down = [link for link in status_json(city.address)["links"] if link["direction"] == "down"]
    assert [(link["neighbour"], link["state"]) for link in down] == [("371102", "connected")]
    wait_for(lambda: GovnetClient(county.address).list_items().version == 1, 15, lambda: "catalog did not arrive")

    city.stop()
    with GovnetClient(county.address) as c:  # works offline: the case is accepted, its summary waits
        done = c.submit(idempotency_key="s1", item_code="SJ-0001", name="张三", id_number="11010519491231002X",
                        phone="13812345678", actor="clerk")
        assert done.case.status == "received"
    wait_for(lambda: up_link(county.address)["state"] in ("retrying", "offline"), 15,
             lambda: str(up_link(county.address)))
    link = up_link(county.address)
    assert int(link["outbox_depth"]) >= 1 and link["oldest_age_s"] > 0
    assert "UNAVAILABLE" in link["last_error"] and link["last_success"]
    human = govnet("sync", "status", "--node", county.address, timeout=30).stdout
    assert "371100" in human and ("retrying" in human or "offline" in human)


def test_a_parent_that_refuses_the_child_is_shown_in_the_childs_status(nodes) -> None:
    stranger = nodes("371103", "county", parent="127.0.0.1:1")  # not 371102's parent
    county = nodes("371102", "county", parent=stranger.address)
    wait_for(lambda: "refused" in up_link(county.address)["last_error"], 15, lambda: str(up_link(county.address)))
    # over mutual TLS the child refuses first: the certificate there names 371103, not its parent 371100
    assert "not node 371100" in up_link(county.address)["last_error"]


def test_a_busy_parent_answers_resource_exhausted_with_a_retry_hint(nodes, tmp_path: Path) -> None:
    county = nodes("371102", "county", parent="127.0.0.1:1", sync_options={"admission_limit": 1})

    async def push_while_full() -> float:
        transport = uplink_as("371102001", county.address, tmp_path / "township", retries=1)
        try:
            await transport.hello(Hello("371102001", "township", PROTOCOL_VERSION, 0, 1))
            county.node.core.children.admission.enter()  # the one admitted batch is in progress
            try:
                await push_one(transport, "371102001", 1, [])
            except ParentBusy as exc:
                return exc.retry_after_s
            finally:
                county.node.core.children.admission.leave()
            raise AssertionError("the push was admitted")
        finally:
            await transport.close()

    hint = asyncio.run(push_while_full())
    assert hint > 0
