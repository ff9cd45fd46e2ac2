"""The real Rizhao tree shipped with govnet: its ids fit the tree's rules, its uneven fan-out is
kept, and ``govnet topology city --real rizhao`` writes it with names that ``govnet status`` shows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from govnet.federation.tree import Level, level_of, parent_id
from govnet.ops.launcher import format_status
from govnet.ops.topology import TopologyError, load_topology, real_city

from support.helpers import govnet


def test_rizhao_has_its_real_divisions_with_valid_ids_and_uneven_fan_out() -> None:
    tree = real_city("rizhao")
    levels = Counter(d.level for d in tree)
    assert (levels[Level.CITY], levels[Level.COUNTY], levels[Level.TOWNSHIP], levels[Level.VILLAGE]) == (
        1, 5, 56, 1679)
    ids = {d.node_id for d in tree}
    assert len(ids) == len(tree) == 1741
    for d in tree:
        assert level_of(d.node_id) is d.level
        assert d.level is Level.CITY or parent_id(d.node_id) in ids
    names = {d.node_id: d.name for d in tree}
    assert names["371100"] == "日照市" and names["371102"] == "东港区"
    fan_out = Counter(parent_id(d.node_id) for d in tree if d.level is Level.VILLAGE)
    assert min(fan_out.values()) == 1 and max(fan_out.values()) == 120
    with pytest.raises(TopologyError, match="unknown city 'qingdao'"):
        real_city("qingdao")


def test_topology_city_real_writes_the_named_tree_and_status_shows_the_names(tmp_path: Path) -> None:
    out = tmp_path / "rizhao.toml"
    done = govnet("topology", "city", str(out), "--real", "rizhao")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"1741 nodes written to {out}"
    topology = load_topology(out)
    assert [n.name for n in topology.nodes[:2]] == ["日照市", "东港区"]
    shown = format_status(topology, dict.fromkeys((n.node_id for n in topology.nodes), None))
    assert shown.splitlines()[0].startswith("371100 日照市 city  DOWN")
    assert "  371102 东港区 county  DOWN" in shown
    # The uniform synthetic tree is still written as before, without names.
    plain = tmp_path / "plain.toml"
    assert govnet("topology", "city", str(plain), "--counties", "1", "--townships", "1", "--villages", "1").returncode == 0
    assert [n.name for n in load_topology(plain).nodes] == ["", "", "", ""]
