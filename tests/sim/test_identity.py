"""The in-memory transport carries who is at its end, as a TLS connection does: a node that
claims to be another is refused before its parent applies anything (the gRPC side of the same
rule is tests/rpc/test_tls.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from govnet.node.store.models import ChildLink
from govnet.ops.simulation.harness import Federation
from govnet.sync.cursor import Cursor
from govnet.sync.envelope import PROTOCOL_VERSION
from govnet.sync.transport.base import Hello, Refused
from govnet.sync.transport.memory import MemoryTransport

from support.helpers import push_one

CITY, COUNTY, TOWN, VILLAGE, VILLAGE2 = "371100", "371102", "371102001", "371102001201", "371102001202"


def test_a_village_claiming_to_be_its_neighbour_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    fed = Federation(tmp_path, [CITY, COUNTY, TOWN, VILLAGE, VILLAGE2], seed=5)
    try:
        asyncio.run(fed.settle())  # the honest links carry their own identity and sync as before
        impostor = MemoryTransport(fed.core(TOWN).children, identity=VILLAGE2)
        with pytest.raises(Refused, match=f"names node {VILLAGE2}, but the request claims to be {VILLAGE}"):
            asyncio.run(impostor.hello(Hello(VILLAGE, "village", PROTOCOL_VERSION, 0, 99)))
        with pytest.raises(Refused, match="claims to be"):
            asyncio.run(push_one(impostor, VILLAGE, 99, []))
        with pytest.raises(Refused, match="claims to be"):
            asyncio.run(impostor.pull(VILLAGE, 99, 1, Cursor(), 10))
        with fed.core(TOWN).store.reading() as s:
            row = s.get(ChildLink, VILLAGE)
            assert row is not None and row.incarnation != 99  # the real village's registration stands
    finally:
        fed.close()
