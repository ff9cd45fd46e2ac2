"""A federation described in one TOML file: which nodes, where they listen, where their data lives.

```toml
[defaults]                       # optional
data_root = "data"               # a node's data dir defaults to DATA_ROOT/ID (relative: to this file)
log_level = "info"
sync = { flush_interval_s = 0.5 }  # also [defaults.supervision], [defaults.statistics]: as in govnet.toml

[[node]]
id = "371100"                    # administrative division code; the level follows from it
listen = "127.0.0.1:51000"       # gRPC
http = "127.0.0.1:52000"         # /metrics, /healthz, /readyz, /status

[[node]]
id = "371102"
level = "county"                 # optional; checked against the id when given
listen = "127.0.0.1:51001"
http = "127.0.0.1:52001"
data = "/srv/govnet/371102"      # optional
# parent = "10.0.0.5:51000"      # only when the parent is not in this file
```

A node's parent is the node whose id is its ``parent_id`` (the tree shows in the ids), so
the parent's address is read from its entry; a ``parent`` address is needed only for a
node whose parent runs elsewhere. Ports must be fixed (not 0): children dial their
parent's port and ``govnet status`` reads every node's HTTP port from this file.

Everything is checked before anything starts; each problem is one line naming the node
and the key. ``city_topology`` writes a file for a whole city (about 1,900 nodes).
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from govnet.federation.tree import Level, NodeIdError, check_node_id, level_of, parent_id
from govnet.node.process.config import LOG_LEVELS, SETTINGS, Address, ConfigError, build_settings, parse_address

_NODE_KEYS = {"id", "level", "listen", "http", "data", "parent", "log_level", "console", "name"}
SETTING_SECTIONS = tuple(SETTINGS)  # govnet.toml tables every node shares
_DEFAULT_KEYS = {"data_root", "log_level", *SETTING_SECTIONS}


class TopologyError(ValueError):
    """One line: which node and key is wrong and what is expected."""


@dataclass(frozen=True)
class NodeSpec:
    node_id: str
    level: Level
    listen: Address
    http: Address
    data_dir: Path
    parent_id: str | None  # None for a city
    parent_address: Address | None  # None for a city
    log_level: str = "info"
    console: Address | None = None  # the console's address (HTTPS), when the node serves one
    name: str = ""  # the division's name (日照市, 东港区 …), shown beside the id; "" when not given


@dataclass(frozen=True)
class Topology:
    path: Path
    nodes: tuple[NodeSpec, ...]  # parents before their children
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # section -> key -> value, for every node

    def get(self, node_id: str) -> NodeSpec | None:
        return next((n for n in self.nodes if n.node_id == node_id), None)

    def children(self, node_id: str | None) -> list[NodeSpec]:
        """The nodes directly under ``node_id`` in this file (None: the roots of the file)."""
        ids = {n.node_id for n in self.nodes}
        if node_id is None:
            return [n for n in self.nodes if n.parent_id not in ids]
        return [n for n in self.nodes if n.parent_id == node_id]

    def walk(self) -> Iterator[tuple[int, NodeSpec]]:
        """(depth, node) in tree order: every node after its parent, siblings by id."""

        def down(node: NodeSpec, depth: int) -> Iterator[tuple[int, NodeSpec]]:
            yield depth, node
            for child in sorted(self.children(node.node_id), key=lambda n: n.node_id):
                yield from down(child, depth + 1)

        for root in sorted(self.children(None), key=lambda n: n.node_id):
            yield from down(root, 0)


def _fixed(text: Any, where: str) -> Address:
    if not isinstance(text, str):
        raise TopologyError(f"{where}: expected \"HOST:PORT\" text, got {text!r}")
    try:
        address = parse_address(text, where)
    except ConfigError as exc:
        raise TopologyError(str(exc)) from None
    if address.port == 0:
        raise TopologyError(f"{where}: port 0 is not allowed in a topology; give a fixed port")
    return address


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > 64 or not value.isprintable():
        raise TopologyError(f"{where}: name must be printable text of at most 64 characters")
    return value


def parse_topology(text: str, path: Path) -> Topology:
    """Validate a topology document (``path`` anchors relative data dirs and names the file)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(raw) - {"defaults", "node"}
    if unknown:
        raise TopologyError(f"{path}: unknown section {min(unknown)!r}; known: [defaults], [[node]]")
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict) or set(defaults) - _DEFAULT_KEYS:
        raise TopologyError(f"{path}: [defaults] takes only {', '.join(sorted(_DEFAULT_KEYS))}")
    base = path.parent
    data_root = Path(defaults.get("data_root", "data"))
    data_root = data_root if data_root.is_absolute() else base / data_root
    default_log = defaults.get("log_level", "info")
    if default_log not in LOG_LEVELS:
        raise TopologyError(f"{path}: defaults.log_level: {default_log!r} is not one of {', '.join(LOG_LEVELS)}")
    settings = {section: defaults[section] for section in SETTING_SECTIONS if section in defaults}
    try:  # validated exactly as a node's govnet.toml is
        for section, values in settings.items():
            build_settings(section, values)
    except ConfigError as exc:
        raise TopologyError(f"{path}: defaults.{exc}") from None
    entries = raw.get("node", [])
    if not isinstance(entries, list) or not entries:
        raise TopologyError(f"{path}: no nodes; add a [[node]] table for each node")
    specs: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(entries, 1):
        where = f"{path}: node #{index}"
        if not isinstance(entry, dict):
            raise TopologyError(f"{where}: must be a [[node]] table")
        node_id = entry.get("id")
        if not isinstance(node_id, str):
            raise TopologyError(f"{where}: id is missing or not text (an administrative division code)")
        where = f"{path}: node {node_id}"
        extra = set(entry) - _NODE_KEYS
        if extra:
            raise TopologyError(f"{where}: unknown key {min(extra)!r}; known: {', '.join(sorted(_NODE_KEYS))}")
        try:
            level = level_of(node_id)
            if "level" in entry:
                check_node_id(node_id, Level.parse(str(entry["level"])))
        except NodeIdError as exc:
            raise TopologyError(f"{where}: {exc}") from None
        if node_id in specs:
            raise TopologyError(f"{where}: listed twice")
        for key in ("listen", "http"):
            if key not in entry:
                raise TopologyError(f"{where}: {key} is missing (HOST:PORT)")
        log_level = entry.get("log_level", default_log)
        if log_level not in LOG_LEVELS:
            raise TopologyError(f"{where}: log_level {log_level!r} is not one of {', '.join(LOG_LEVELS)}")
        data = Path(entry["data"]) if "data" in entry else data_root / node_id
        specs[node_id] = {
            "node_id": node_id, "level": level, "listen": _fixed(entry["listen"], f"{where}: listen"),
            "http": _fixed(entry["http"], f"{where}: http"), "data_dir": data if data.is_absolute() else base / data,
            "parent_id": parent_id(node_id), "log_level": log_level, "parent_text": entry.get("parent"),
            "console": _fixed(entry["console"], f"{where}: console") if "console" in entry else None,
            "name": _name(entry.get("name", ""), where),
        }
    seen: dict[tuple[str, int], str] = {}
    for spec in specs.values():
        for key in ("listen", "http", "console"):
            addr = spec[key]
            if addr is None:
                continue
            other = seen.get((addr.host, addr.port))
            if other is not None:
                raise TopologyError(f"{path}: node {spec['node_id']}: {key} {addr} is already used by {other}")
            seen[(addr.host, addr.port)] = f"node {spec['node_id']}"
    dirs: dict[Path, str] = {}
    nodes = []
    for spec in specs.values():
        where = f"{path}: node {spec['node_id']}"
        if spec["data_dir"] in dirs:
            raise TopologyError(f"{where}: data dir {spec['data_dir']} is also node {dirs[spec['data_dir']]}'s")
        dirs[spec["data_dir"]] = spec["node_id"]
        text, parent = spec.pop("parent_text"), spec["parent_id"]
        if parent is None:
            if text is not None:
                raise TopologyError(f"{where}: a city has no parent; remove parent")
            address = None
        elif parent in specs:
            if text is not None:
                raise TopologyError(f"{where}: parent {parent} is in this file; remove parent (its address is read from there)")
            address = specs[parent]["listen"]
        elif text is None:
            raise TopologyError(f"{where}: its parent {parent} is not in this file; add it, or give parent = \"HOST:PORT\"")
        else:
            address = _fixed(text, f"{where}: parent")
        nodes.append(NodeSpec(parent_address=address, **spec))
    ordered = sorted(nodes, key=lambda n: (n.level.rank, n.node_id))
    return Topology(path, tuple(ordered), settings)


def load_topology(path: Path) -> Topology:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError(f"{path}: no such file; write one (see 'govnet up --help') or generate one") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TopologyError(f"{path}: cannot read it: {exc}") from None
    return parse_topology(text, path.resolve())


# --- generating one ---


def city_topology(city: str = "371100", counties: int = 10, townships: int = 10, villages: int = 18,
                  host: str = "127.0.0.1", first_port: int = 40000, data_root: str = "data",
                  sync: dict[str, Any] | None = None) -> dict[str, Any]:
    """A topology document for a whole city: ``counties`` × ``townships`` × ``villages``
    (the defaults give 1 + 10 + 100 + 1,800 = 1,911 nodes). Node i listens on
    ``first_port + 2i`` and serves HTTP on the port after it."""
    if level_of(city) is not Level.CITY:
        raise TopologyError(f"{city} is not a city id (6 digits ending in 00)")
    for name, count, most in (("counties", counties, 99), ("townships", townships, 999), ("villages", villages, 999)):
        if not 0 <= count <= most:
            raise TopologyError(f"{name}: {count} is outside 0 … {most}")
    ids = [city]
    for c in range(1, counties + 1):
        county = f"{city[:4]}{c:02d}"
        ids.append(county)
        for t in range(1, townships + 1):
            township = f"{county}{t:03d}"
            ids.append(township)
            ids.extend(f"{township}{200 + v:03d}" for v in range(1, villages + 1))
    return _document([(node_id, "") for node_id in ids], host, first_port, data_root, sync)


def _document(named: list[tuple[str, str]], host: str, first_port: int, data_root: str,
              sync: dict[str, Any] | None) -> dict[str, Any]:
    """The topology document for (id, name) pairs, parents first: node i listens on
    ``first_port + 2i`` and serves HTTP on the port after it."""
    if first_port + 2 * len(named) > 65535:
        raise TopologyError(f"{len(named)} nodes need {2 * len(named)} ports from {first_port}: start lower")
    nodes = []
    for i, (node_id, name) in enumerate(named):
        entry = {"id": node_id, "listen": f"{host}:{first_port + 2 * i}", "http": f"{host}:{first_port + 2 * i + 1}"}
        if name:
            entry["name"] = name
        nodes.append(entry)
    defaults: dict[str, Any] = {"data_root": data_root}
    if sync:
        defaults["sync"] = sync
    return {"defaults": defaults, "node": nodes}


# --- real cities: the statistical division codes shipped in ops/data (see ops/data/NOTICE) ---


@dataclass(frozen=True)
class Division:
    """One node of a real city's tree: its division code (the node id), name and level."""

    node_id: str
    name: str
    level: Level


# name -> (city id, city name, the extract in ops/data); the city itself is not a row of it.
REAL_CITIES: dict[str, tuple[str, str, str]] = {
    "rizhao": ("371100", "日照市", "rizhao_3711_divisions.csv"),
}


def real_city(name: str) -> list[Division]:
    """The whole real tree of city ``name`` (the city first, then by level and id), every id
    checked against its level and its parent in the tree."""
    if name not in REAL_CITIES:
        raise TopologyError(f"unknown city {name!r}; known: {', '.join(sorted(REAL_CITIES))}")
    city_id, city_name, file = REAL_CITIES[name]
    text = (resources.files("govnet.ops") / "data" / file).read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line and not line.startswith("#")]
    out = [Division(city_id, city_name, Level.CITY)]
    seen = {city_id}
    for number, row in enumerate(csv.DictReader(rows), 2):
        try:
            level = Level.parse(row["level"])
            check_node_id(row["code"], level)
        except NodeIdError as exc:
            raise TopologyError(f"{file} row {number}: {exc}") from None
        if parent_id(row["code"]) != row["parent"] or row["parent"] not in seen:
            raise TopologyError(f"{file} row {number}: {row['code']}'s parent {row['parent']} is not above it")
        seen.add(row["code"])
        out.append(Division(row["code"], row["name"], level))
    return sorted(out, key=lambda d: (d.level.rank, d.node_id))


def real_city_topology(name: str, host: str = "127.0.0.1", first_port: int = 40000, data_root: str = "data",
                       sync: dict[str, Any] | None = None) -> dict[str, Any]:
    """A topology document for the real city ``name`` (``rizhao``: 1,741 nodes), with names."""
    return _document([(d.node_id, d.name) for d in real_city(name)], host, first_port, data_root, sync)


def dump_topology(document: dict[str, Any]) -> str:
    return tomli_w.dumps(document)
