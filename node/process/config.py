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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from govnet.federation.tree import Level, NodeIdError, check_node_id
from govnet.node.app.links import SyncSettings
from govnet.node.domain.audit import ALGORITHMS, DEFAULT_ALGORITHM
from govnet.node.domain.deadlines import SupervisionSettings
from govnet.node.domain.ratelimit import RateSettings
from govnet.node.domain.statistics import StatsSettings
from govnet.sync.batching import DEFAULT_MAX_BYTES, MIN_MAX_BYTES

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
class HttpSettings:
    """The HTTP port's own limits (``[http]``; its address is ``NodeConfig.http_listen``)."""

    # Every request must be answered within this time, or it gets 503: a store read stuck
    # behind a long write must not hold a scraper's connection (or a console clerk) forever.
    handler_timeout_s: float = 10.0
    # A connection must send a whole request head within this time of opening (or of its last
    # answer), else it is closed: silent or trickling clients cannot hold the port's connections.
    head_deadline_s: float = 10.0


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
    audit_hash: str = DEFAULT_ALGORITHM  # the audit chain's hash (sha256 | sm3), for a store with no events yet
    http: HttpSettings = HttpSettings()
    tls: TlsSettings = field(default_factory=lambda: TlsSettings())
    rate: RateSettings = RateSettings()
    # The console (node.console): served here over HTTPS with the node's certificate; None: not served.
    console_listen: Address | None = None
    console_plaintext: bool = False  # plain HTTP for the console (a local demo or test only)

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
        out["http"] = dataclasses.asdict(self.http)
        if self.http_listen is not None:
            out["http"]["listen"] = str(self.http_listen)
        out["tls"] = self.tls.to_toml()
        out["sync"] = dataclasses.asdict(self.sync)
        out["supervision"] = dataclasses.asdict(self.supervision)
        out["statistics"] = dataclasses.asdict(self.statistics)
        out["rate"] = dataclasses.asdict(self.rate)
        if self.audit_hash != DEFAULT_ALGORITHM:
            out["audit"] = {"hash": self.audit_hash}
        if self.console_listen is not None:
            out["console"] = {"listen": str(self.console_listen), "plaintext": self.console_plaintext}
        return out



# The [rate] section with every limit off (0: no limit): for a node whose one client is the load on
# purpose (the intake benchmark, tests that flood a node to test something else).
NO_RATE_LIMITS: dict[str, Any] = {"peer_per_s": 0.0, "account_per_s": 0.0, "sync_per_s": 0.0, "meta_per_s": 0.0}

@dataclass(frozen=True)
class TlsSettings:
    """[tls]: mutual TLS by default. The node's key, its certificate (the leaf, then the issuing
    intermediate if any) and the city's root certificate, relative to the data directory;
    ``plaintext = true`` turns TLS off (a local test or demo only: logged and exported as
    ``govnet_tls_plaintext 1``)."""

    plaintext: bool = False
    ca: str = "tls/ca.crt"
    cert: str = "tls/node.crt"
    key: str = "tls/node.key"

    def to_toml(self) -> dict[str, Any]:
        return {"plaintext": True} if self.plaintext else {"ca": self.ca, "cert": self.cert, "key": self.key}


@dataclass(frozen=True)
class Number:
    """A numeric key: its type in TOML and its bounds (a typo must not become a storm or a stall)."""

    kind: type[int] | type[float]
    low: int | float
    high: int | float


_DUPLICATE_WINDOW = Number(int, 0, 3650)  # intake.duplicate_window_days (its own message: days)
_HTTP_SECONDS = Number(float, 0.1, 300.0)  # http.handler_timeout_s, http.head_deadline_s
_RATE = Number(float, 0.0, 1_000_000.0)  # rate.*_per_s
_BURST = Number(int, 1, 1_000_000)  # rate.*_burst

# Every key of govnet.toml, by section: text, or a number with its bounds. Checking a file,
# converting an environment override (always text) and building the settings all read this.
SCHEMA: dict[str, dict[str, type[str] | type[bool] | Number]] = {
    "node": {"id": str, "level": str, "listen": str, "parent": str},
    "intake": {"duplicate_window_days": _DUPLICATE_WINDOW},
    "calendar": {"override_dir": str},
    "log": {"level": str},
    "sync": {
        "flush_interval_s": Number(float, 0.01, 60.0),
        "batch_max": Number(int, 1, 10_000),
        "admission_limit": Number(int, 1, 1_000),
        "digest_interval_s": Number(float, 1.0, 86_400.0),
        "retry_cap_s": Number(float, 1.0, 3_600.0),
        # A batch's bytes on the wire: at least what an ordinary case needs, at most the parent's
        # gRPC receive limit less room for the request's framing (sync.batching).
        "batch_max_bytes": Number(int, MIN_MAX_BYTES, DEFAULT_MAX_BYTES),
    },
    "http": {"listen": str, "handler_timeout_s": _HTTP_SECONDS, "head_deadline_s": _HTTP_SECONDS},
    "audit": {"hash": str},
    "console": {"listen": str, "plaintext": bool},
    "tls": {"plaintext": bool, "ca": str, "cert": str, "key": str},
    "supervision": {
        "warn_working_days": Number(int, 0, 30),
        "scan_interval_s": Number(float, 0.05, 86_400.0),
        "rectification_days": Number(int, 1, 250),
        "complaint_days": Number(int, 1, 250),
        "joint_opinion_days": Number(int, 1, 250),
        "backfill_after_s": Number(float, 0.0, 31_536_000.0),
    },
    # A change at a village should reach the city in seconds.
    "statistics": {
        "flush_interval_s": Number(float, 0.01, 60.0),
        "heartbeat_s": Number(float, 1.0, 86_400.0),
    },
    # Calls a second (0: no limit) and bursts, per peer and per account, by class of call
    # (node.domain.ratelimit).
    "rate": {
        "peer_per_s": _RATE,
        "peer_burst": _BURST,
        "account_per_s": _RATE,
        "account_burst": _BURST,
        "sync_per_s": _RATE,
        "sync_burst": _BURST,
        "meta_per_s": _RATE,
        "meta_burst": _BURST,
        "max_keys": Number(int, 100, 1_000_000),
    },
}
# The sections that are settings objects, one key per field; a topology's [defaults] shares them.
SETTINGS: dict[str, type[SyncSettings] | type[SupervisionSettings] | type[StatsSettings] | type[RateSettings]] = {
    "sync": SyncSettings, "supervision": SupervisionSettings, "statistics": StatsSettings, "rate": RateSettings,
}
ENV_PREFIX = "GOVNET_"


def check_number(key: str, value: Any, rule: Number) -> int | float:
    """``value`` if it is a number of the rule's kind within its bounds (a boolean is not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (rule.kind is int and not isinstance(value, int)):
        raise ConfigError(f"{key}: {value!r} is not a {'whole ' if rule.kind is int else ''}number")
    if not rule.low <= value <= rule.high:
        raise ConfigError(f"{key}: {value} is outside {rule.low} … {rule.high}")
    return rule.kind(value)


def build_settings(section: str, raw: Mapping[str, Any]) -> Any:
    """The settings object of ``section`` (sync, supervision, statistics, rate) from its TOML table;
    keys not given keep their defaults."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{section}: {raw!r} is not a table of settings")
    values: dict[str, Any] = {}
    for key, rule in SCHEMA[section].items():
        if key in raw:
            assert isinstance(rule, Number)
            values[key] = check_number(f"{section}.{key}", raw[key], rule)
    return SETTINGS[section](**values)


def env_name(section: str, key: str) -> str:
    """The environment variable that overrides ``section.key`` (e.g. GOVNET_SYNC_FLUSH_INTERVAL_S)."""
    return f"{ENV_PREFIX}{section}_{key}".upper()


def env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The settings the environment overrides, converted to their TOML types.

    A variable under a section's prefix that names no key is refused rather than ignored,
    because a misspelt override that silently does nothing is worse than none.
    """
    out: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        prefix = f"{ENV_PREFIX}{section.upper()}_"
        for var, text in environ.items():
            if not var.startswith(prefix):
                continue
            key = var[len(prefix):].lower()
            if key not in keys:
                known = ", ".join(env_name(section, k) for k in sorted(keys))
                raise ConfigError(f"{var}: no setting {section}.{key}; known for [{section}]: {known}")
            rule = keys[key]
            kind = rule.kind if isinstance(rule, Number) else rule
            if kind is bool:
                if text.strip().lower() not in ("true", "false", "1", "0"):
                    raise ConfigError(f"{var} ({section}.{key}): {text!r} is not true or false")
                out.setdefault(section, {})[key] = text.strip().lower() in ("true", "1")
                continue
            try:
                value: Any = kind(text.strip()) if kind is not str else text
            except ValueError:
                what = "a whole number" if kind is int else "a number" if kind is float else "text"
                raise ConfigError(f"{var} ({section}.{key}): {text!r} is not {what}") from None
            out.setdefault(section, {})[key] = value
    return out

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
    http: dict[str, Any] | None = None,
    supervision: dict[str, Any] | None = None,
    statistics: dict[str, Any] | None = None,
    audit_hash: str = DEFAULT_ALGORITHM,
    tls: dict[str, Any] | None = None,
    rate: dict[str, Any] | None = None,
    console: dict[str, Any] | None = None,
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
    try:
        check_number("intake.duplicate_window_days", duplicate_window_days, _DUPLICATE_WINDOW)
    except ConfigError:
        raise ConfigError(f"intake.duplicate_window_days: {duplicate_window_days!r} is not a whole number of days "
                          f"from {_DUPLICATE_WINDOW.low} to {_DUPLICATE_WINDOW.high}") from None
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"log.level: {log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    if audit_hash not in ALGORITHMS:
        raise ConfigError(f"audit.hash: {audit_hash!r} is not one of {', '.join(ALGORITHMS)}")
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
        sync=build_settings("sync", sync or {}),
        supervision=build_settings("supervision", supervision or {}),
        statistics=build_settings("statistics", statistics or {}),
        http_listen=parse_address(http_listen, "http.listen") if http_listen else None,
        audit_hash=audit_hash,
        http=_http_settings(http or {}),
        tls=build_tls(tls or {}),
        rate=build_settings("rate", rate or {}),
        **_console(console or {}),
    )


def _console(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``[console]``: its address, and whether it is plain HTTP (HTTPS with the node's certificate otherwise)."""
    listen, plaintext = raw.get("listen"), raw.get("plaintext", False)
    if not isinstance(plaintext, bool):
        raise ConfigError(f"console.plaintext: {plaintext!r} is not true or false")
    text = _text(listen, "console.listen")
    return {"console_listen": parse_address(text, "console.listen") if text else None, "console_plaintext": plaintext}


def build_tls(raw: Mapping[str, Any]) -> TlsSettings:
    """The [tls] section, each key of its type (a file name is text; plaintext is true or false)."""
    for key, value in raw.items():
        expected = SCHEMA["tls"].get(key)
        if expected is bool and not isinstance(value, bool):
            raise ConfigError(f"tls.{key}: {value!r} is not true or false")
        if expected is str and (not isinstance(value, str) or not value):
            raise ConfigError(f"tls.{key}: {value!r} is not a file name")
    return TlsSettings(**dict(raw))


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
        if section not in SCHEMA:
            raise ConfigError(f"{path}: unknown section [{section}]; known: {', '.join(SCHEMA)}")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {section} must be a [{section}] table")
        for key in value:
            if key not in SCHEMA[section]:
                raise ConfigError(f"{path}: unknown key {section}.{key}; known: {', '.join(sorted(SCHEMA[section]))}")
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
            audit_hash=str(raw.get("audit", {}).get("hash", DEFAULT_ALGORITHM)),
            http={k: v for k, v in raw.get("http", {}).items() if k != "listen"},
            tls=raw.get("tls", {}),
            rate=raw.get("rate", {}),
            console=raw.get("console", {}),
        )
    except ConfigError as exc:
        # Name the variable when the bad value came from the environment, not the file.
        key = str(exc).split(":", 1)[0]
        section, _, name = key.partition(".")
        if name in overrides.get(section, {}):
            raise ConfigError(f"{exc} (set by {env_name(section, name)})") from None
        raise ConfigError(f"{path}: {exc}") from None


def _http_settings(raw: Mapping[str, Any]) -> HttpSettings:
    """``[http]`` without its ``listen`` (``NodeConfig.http_listen``); keys not given keep their defaults."""
    return HttpSettings(**{key: float(check_number(f"http.{key}", raw[key], _HTTP_SECONDS))
                           for key in ("handler_timeout_s", "head_deadline_s") if key in raw})


def _text(value: Any, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(f"{key}: {value!r} is not text like \"127.0.0.1:9100\"")


def write_config(config: NodeConfig) -> Path:
    path = config.data_dir / CONFIG_FILE
    path.write_text(tomli_w.dumps(config.to_toml()), encoding="utf-8")
    return path
