"""Environment overrides of ``govnet.toml`` (GOVNET_<SECTION>_<KEY>), validated with the rest."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from govnet.node.process.config import ConfigError, env_name, env_overrides, load_config
from govnet.ops.processes import govnet_command, init_node

from support.accounts import spawn_node
from support.helpers import store_snapshot


@pytest.mark.parametrize("environ, expected", [
    ({}, {}),
    ({"GOVNET_SYNC_FLUSH_INTERVAL_S": "0.2"}, {"sync": {"flush_interval_s": 0.2}}),
    ({"GOVNET_SYNC_BATCH_MAX": " 50 "}, {"sync": {"batch_max": 50}}),
    ({"GOVNET_LOG_LEVEL": "debug", "GOVNET_HTTP_LISTEN": "127.0.0.1:9100"},
     {"log": {"level": "debug"}, "http": {"listen": "127.0.0.1:9100"}}),
    ({"GOVNET_INTAKE_DUPLICATE_WINDOW_DAYS": "7"}, {"intake": {"duplicate_window_days": 7}}),
    # Other GOVNET_ variables (the CLI's own GOVNET_NODE, GOVNET_ACTOR) are not settings.
    ({"GOVNET_NODE": "127.0.0.1:50051", "GOVNET_ACTOR": "王芳", "PATH": "/bin"}, {}),
])
def test_overrides_are_read_with_their_toml_types(environ: dict[str, str], expected: dict) -> None:
    assert env_overrides(environ) == expected


@pytest.mark.parametrize("environ, message", [
    ({"GOVNET_SYNC_BATCH_MAX": "many"}, "GOVNET_SYNC_BATCH_MAX (sync.batch_max): 'many' is not a whole number"),
    ({"GOVNET_SYNC_FLUSH_INTERVAL_S": "soon"}, "GOVNET_SYNC_FLUSH_INTERVAL_S (sync.flush_interval_s): 'soon' is not a number"),
    ({"GOVNET_SYNC_FLUSH": "1"}, "GOVNET_SYNC_FLUSH: no setting sync.flush; known for [sync]: GOVNET_SYNC_ADMISSION_LIMIT"),
])
def test_an_override_that_is_not_a_setting_or_not_its_type_is_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        env_overrides(environ)
    assert str(info.value).startswith(message)


def test_env_name_follows_the_section_and_key() -> None:
    assert env_name("sync", "flush_interval_s") == "GOVNET_SYNC_FLUSH_INTERVAL_S"


@pytest.fixture
def county_dir(tmp_path: Path) -> Path:
    return init_node(tmp_path / "county", "371102", "county", "127.0.0.1:1")


def test_an_override_wins_over_the_file(county_dir: Path) -> None:
    config = load_config(county_dir, {"GOVNET_SYNC_FLUSH_INTERVAL_S": "0.2", "GOVNET_NODE_PARENT": "127.0.0.1:2"})
    assert config.sync.flush_interval_s == 0.2 and str(config.parent) == "127.0.0.1:2"
    assert load_config(county_dir, {}).sync.flush_interval_s == 0.5  # the file itself is unchanged
    assert load_config(county_dir, {"GOVNET_HTTP_HANDLER_TIMEOUT_S": "2.5"}).http.handler_timeout_s == 2.5
    assert load_config(county_dir, {}).http.handler_timeout_s == 10.0


@pytest.mark.parametrize("var, text, message", [
    ("GOVNET_SYNC_FLUSH_INTERVAL_S", "100", "sync.flush_interval_s: 100.0 is outside 0.01 … 60.0 (set by GOVNET_SYNC_FLUSH_INTERVAL_S)"),
    ("GOVNET_LOG_LEVEL", "loud", "log.level: 'loud' is not one of debug, info, warning, error (set by GOVNET_LOG_LEVEL)"),
    ("GOVNET_HTTP_LISTEN", "nowhere", "http.listen: 'nowhere' is not HOST:PORT (for example 127.0.0.1:50051) (set by GOVNET_HTTP_LISTEN)"),
    ("GOVNET_HTTP_HANDLER_TIMEOUT_S", "0", "http.handler_timeout_s: 0.0 is outside 0.1 … 300.0 (set by GOVNET_HTTP_HANDLER_TIMEOUT_S)"),
    ("GOVNET_NODE_LEVEL", "province", "node.level: "),
])
def test_a_bad_override_names_its_key_and_variable(county_dir: Path, var: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(county_dir, {var: text})
    assert str(info.value).startswith(message)
    assert var in str(info.value)


def test_a_bad_value_in_the_file_still_names_the_file(county_dir: Path) -> None:
    path = county_dir / "govnet.toml"
    path.write_text(path.read_text().replace("batch_max = 200", "batch_max = 0"))
    with pytest.raises(ConfigError) as info:
        load_config(county_dir, {})
    assert str(info.value) == f"{path}: sync.batch_max: 0 is outside 1 … 10000"


@pytest.mark.slow
def test_node_serve_refuses_a_bad_override_in_one_line_and_writes_nothing(county_dir: Path) -> None:
    before = store_snapshot(county_dir)
    done = subprocess.run([*govnet_command(), "node", "serve", str(county_dir)], capture_output=True, text=True,
                          timeout=60, check=False, env={**_env(), "GOVNET_SYNC_BATCH_MAX": "0"})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "govnet: error: sync.batch_max: 0 is outside 1 … 10000 (set by GOVNET_SYNC_BATCH_MAX)"]
    assert store_snapshot(county_dir) == before


@pytest.mark.slow
def test_node_serve_takes_its_http_address_from_the_environment(tmp_path: Path) -> None:
    data = init_node(tmp_path / "city", "371100", "city")
    proc = spawn_node(data)
    try:
        assert proc.http is None  # nothing configured: no HTTP endpoint
    finally:
        proc.terminate()
    proc = spawn_node(data, env={"GOVNET_HTTP_LISTEN": "127.0.0.1:0"})
    try:
        assert proc.http is not None and proc.http.startswith("127.0.0.1:")
    finally:
        proc.terminate()


def _env() -> dict[str, str]:
    """This process's environment without any GOVNET_ overrides a developer may have set."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GOVNET_")}
