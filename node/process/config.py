"""A node's configuration: ``govnet.toml`` in its data directory.

Every node runs the same program; this file says which node it is (its administrative
division code and level), where it listens, where its parent is, and how it behaves.
It is validated as a whole before anything starts, and every problem is reported as
one line naming the key and what to fix.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from govnet.federation.tree import Level, NodeIdError, check_node_id
from govnet.node.app.links import SyncSettings
from govnet.node.domain.deadlines import SupervisionSettings
from govnet.node.domain.statistics import StatsSettings

CONFIG_FILE = "govnet.toml"
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """One line: which key is wrong and what is expected."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, key: str) -> Address:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6); port 0 asks the system for a free one."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{key}: {text!r} is not HOST:PORT (for example 127.0.0.1:50051)")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{key}: port {port!r} in {text!r} is not a number from 0 to 65535")
    return Address(host, int(port))


@dataclass(frozen=True)
class NodeConfig:
    node_id: str
    level: Level
    listen: Address
    parent: Address | None
    data_dir: Path
    duplicate_window_days: int = 30
    calendar_dir: Path | None = None  # yearly holiday override files (YYYY.toml)
    log_level: str = "info"
    sync: SyncSettings = SyncSettings()
    supervision: SupervisionSettings = SupervisionSettings()
    statistics: StatsSettings = StatsSettings()
    http_listen: Address | None = None  # /metrics, /healthz, /readyz, /status (None: not served)

    def to_toml(self) -> dict[str, Any]:
        node: dict[str, Any] = {"id": self.node_id, "level": self.level.value, "listen": str(self.listen)}
        if self.parent is not None:
            node["parent"] = str(self.parent)
        out: dict[str, Any] = {
            "node": node,
            "intake": {"duplicate_window_days": self.duplicate_window_days},
            "log": {"level": self.log_level},
        }
        if self.calendar_dir is not None:
            out["calendar"] = {"override_dir": str(self.calendar_dir)}
        if self.http_listen is not None:
            out["http"] = {"listen": str(self.http_listen)}
        out["sync"] = {
            "flush_interval_s": self.sync.flush_interval_s,
            "batch_max": self.sync.batch_max,
            "admission_limit": self.sync.admission_limit,
            "digest_interval_s": self.sync.digest_interval_s,
        }
        out["supervision"] = dataclasses.asdict(self.supervision)
        out["statistics"] = dataclasses.asdict(self.statistics)
        return out


# (key, type, low, high) of [supervision]
_SUPERVISION_KEYS = (
    ("warn_working_days", int, 0, 30),
    ("scan_interval_s", float, 0.05, 86_400.0),
    ("rectification_days", int, 1, 250),
    ("complaint_days", int, 1, 250),
    ("joint_opinion_days", int, 1, 250),
    ("backfill_after_s", float, 0.0, 31_536_000.0),
)

# (key, type, low, high) of [statistics]: a change at a village should reach the city in seconds.
_STATISTICS_KEYS = (
    ("flush_interval_s", float, 0.01, 60.0),
    ("heartbeat_s", float, 1.0, 86_400.0),
)

_SECTIONS: dict[str, set[str]] = {
    "node": {"id", "level", "listen", "parent"},
    "intake": {"duplicate_window_days"},
    "calendar": {"override_dir"},
    "log": {"level"},
    "sync": {"flush_interval_s", "batch_max", "admission_limit", "digest_interval_s"},
    "http": {"listen"},
    "supervision": {k for k, *_ in _SUPERVISION_KEYS},
    "statistics": {k for k, *_ in _STATISTICS_KEYS},
}
# The type each key has in TOML, so an environment override (always text) can be converted.
_NUMERIC: dict[str, type] = {"intake.duplicate_window_days": int, "sync.flush_interval_s": float,
                             "sync.batch_max": int, "sync.admission_limit": int, "sync.digest_interval_s": float}
_NUMERIC.update({f"supervision.{k}": kind for k, kind, *_ in _SUPERVISION_KEYS})
_NUMERIC.update({f"statistics.{k}": kind for k, kind, *_ in _STATISTICS_KEYS})
ENV_PREFIX = "GOVNET_"


def env_name(section: str, key: str) -> str:
    """The environment variable that overrides ``section.key`` (e.g. GOVNET_SYNC_FLUSH_INTERVAL_S)."""
    return f"{ENV_PREFIX}{section}_{key}".upper()


def env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The settings the environment overrides, converted to their TOML types.

    A variable under a section's prefix that names no key is refused rather than ignored,
    because a misspelt override that silently does nothing is worse than none.
    """
    out: dict[str, dict[str, Any]] = {}
    for section, keys in _SECTIONS.items():
        prefix = f"{ENV_PREFIX}{section.upper()}_"
        for var, text in environ.items():
            if not var.startswith(prefix):
                continue
            key = var[len(prefix):].lower()
            if key not in keys:
                known = ", ".join(env_name(section, k) for k in sorted(keys))
                raise ConfigError(f"{var}: no setting {section}.{key}; known for [{section}]: {known}")
            kind = _NUMERIC.get(f"{section}.{key}", str)
            try:
                value: Any = kind(text.strip()) if kind is not str else text
            except ValueError:
                what = "a whole number" if kind is int else "a number" if kind is float else "text"
                raise ConfigError(f"{var} ({section}.{key}): {text!r} is not {what}") from None
            out.setdefault(section, {})[key] = value
    return out

# (key, type, low, high): bounds keep a typo from turning into a storm or a stall.
_SYNC_KEYS = (
    ("flush_interval_s", float, 0.01, 60.0),
    ("batch_max", int, 1, 10_000),
    ("admission_limit", int, 1, 1_000),
    ("digest_interval_s", float, 1.0, 86_400.0),
)


def build_sync_settings(raw: dict[str, Any]) -> SyncSettings:
    values: dict[str, Any] = {}
    for key, kind, low, high in _SYNC_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise ConfigError(f"sync.{key}: {value!r} is not a {'whole ' if kind is int else ''}number")
        if not low <= value <= high:
            raise ConfigError(f"sync.{key}: {value} is outside {low} … {high}")
        values[key] = kind(value)
    return SyncSettings(**values)


def build_supervision_settings(raw: dict[str, Any]) -> SupervisionSettings:
    values: dict[str, Any] = {}
    for key, kind, low, high in _SUPERVISION_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise ConfigError(f"supervision.{key}: {value!r} is not a {'whole ' if kind is int else ''}number")
        if not low <= value <= high:
            raise ConfigError(f"supervision.{key}: {value} is outside {low} … {high}")
        values[key] = kind(value)
    return SupervisionSettings(**values)


def build_statistics_settings(raw: dict[str, Any]) -> StatsSettings:
    values: dict[str, Any] = {}
    for key, kind, low, high in _STATISTICS_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"statistics.{key}: {value!r} is not a number")
        if not low <= value <= high:
            raise ConfigError(f"statistics.{key}: {value} is outside {low} … {high}")
        values[key] = kind(value)
    return StatsSettings(**values)


def build_config(
    data_dir: Path,
    *,
    node_id: str,
    level: str,
    listen: str,
    parent: str | None,
    duplicate_window_days: int = 30,
    calendar_dir: str | None = None,
    log_level: str = "info",
    sync: dict[str, Any] | None = None,
    http_listen: str | None = None,
    supervision: dict[str, Any] | None = None,
    statistics: dict[str, Any] | None = None,
) -> NodeConfig:
    """Validate the parts of a configuration and assemble it."""
    try:
        lvl = Level.parse(level)
    except NodeIdError as exc:
        raise ConfigError(f"node.level: {exc}") from None
    try:
        check_node_id(node_id, lvl)
    except NodeIdError as exc:
        raise ConfigError(f"node.id: {exc}") from None
    if lvl is Level.CITY and parent:
        raise ConfigError("node.parent: a city is the top of the tree and has no parent; remove it")
    if lvl is not Level.CITY and not parent:
        raise ConfigError(f"node.parent: a {lvl} node needs its parent's address (HOST:PORT)")
    if isinstance(duplicate_window_days, bool) or not isinstance(duplicate_window_days, int) or not (
        0 <= duplicate_window_days <= 3650
    ):
        raise ConfigError(
            f"intake.duplicate_window_days: {duplicate_window_days!r} is not a whole number of days from 0 to 3650"
        )
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"log.level: {log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    cal = None
    if calendar_dir:
        cal = Path(calendar_dir)
        cal = cal if cal.is_absolute() else data_dir / cal
    return NodeConfig(
        node_id=node_id,
        level=lvl,
        listen=parse_address(listen, "node.listen"),
        parent=parse_address(parent, "node.parent") if parent else None,
        data_dir=data_dir,
        duplicate_window_days=duplicate_window_days,
        calendar_dir=cal,
        log_level=log_level,
        sync=build_sync_settings(sync or {}),
        supervision=build_supervision_settings(supervision or {}),
        statistics=build_statistics_settings(statistics or {}),
        http_listen=parse_address(http_listen, "http.listen") if http_listen else None,
    )


def load_config(data_dir: Path, environ: Mapping[str, str] | None = None) -> NodeConfig:
    """The node's configuration: ``govnet.toml`` with the environment's overrides on top
    (``GOVNET_<SECTION>_<KEY>``; ``environ`` defaults to this process's environment)."""
    path = data_dir / CONFIG_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no configuration here; create one with 'govnet node init {data_dir} …'") from None
    except PermissionError:
        raise ConfigError(f"{path}: not readable by this user; fix its permissions") from None
    except NotADirectoryError:
        raise ConfigError(f"{data_dir}: not a directory") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for section, value in raw.items():
        if section not in _SECTIONS:
            raise ConfigError(f"{path}: unknown section [{section}]; known: {', '.join(_SECTIONS)}")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {section} must be a [{section}] table")
        for key in value:
            if key not in _SECTIONS[section]:
                raise ConfigError(f"{path}: unknown key {section}.{key}; known: {', '.join(sorted(_SECTIONS[section]))}")
    overrides = env_overrides(os.environ if environ is None else environ)
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    node = raw.get("node", {})
    for key in ("id", "level", "listen"):
        if not isinstance(node.get(key), str):
            raise ConfigError(f"{path}: node.{key} is missing or not a string")
    try:
        return build_config(
            data_dir,
            node_id=node["id"],
            level=node["level"],
            listen=node["listen"],
            parent=node.get("parent"),
            duplicate_window_days=raw.get("intake", {}).get("duplicate_window_days", 30),
            calendar_dir=raw.get("calendar", {}).get("override_dir"),
            log_level=raw.get("log", {}).get("level", "info"),
            sync=raw.get("sync", {}),
            supervision=raw.get("supervision", {}),
            statistics=raw.get("statistics", {}),
            http_listen=_text(raw.get("http", {}).get("listen"), "http.listen"),
        )
    except ConfigError as exc:
        # Name the variable when the bad value came from the environment, not the file.
        key = str(exc).split(":", 1)[0]
        section, _, name = key.partition(".")
        if name in overrides.get(section, {}):
            raise ConfigError(f"{exc} (set by {env_name(section, name)})") from None
        raise ConfigError(f"{path}: {exc}") from None


def _text(value: Any, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(f"{key}: {value!r} is not text like \"127.0.0.1:9100\"")


def write_config(config: NodeConfig) -> Path:
    path = config.data_dir / CONFIG_FILE
    path.write_text(tomli_w.dumps(config.to_toml()), encoding="utf-8")
    return path
