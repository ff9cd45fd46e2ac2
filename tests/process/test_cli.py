"""The ``govnet`` command line, run for real.

End-to-end checks run ``python -m node.cli`` as a subprocess, against real in-process nodes
(loopback, port 0) where a node is needed; the matrix of pure-argument ``node init``
errors uses click's CliRunner. An error must be exactly one line on stderr starting with
``govnet: error:``, with no trace and a non-zero exit code (1 refused, 3 unreachable).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from govnet.node.domain.catalog import sample_catalog_path
from govnet.node.domain.receipt import Receipt
from govnet.node.process.config import load_config
from govnet.ops.cli import main
from govnet.ops.processes import free_port, init_node

from support.accounts import TESTER_ACTOR
from support.helpers import ID_NUMBER, NAME, PHONE, all_materials, submit

ACTOR = "窗口-王芳"
def govnet(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # The environment as it is now: the session's token file is set by conftest.py.
    env = {k: v for k, v in os.environ.items() if k != "GOVNET_NODE"} | {"GOVNET_ACTOR": ACTOR}
    return subprocess.run(
        [sys.executable, "-m", "govnet.ops.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd,
    )


def assert_one_line_error(result, *fragments: str, exit_code: int | None = None) -> str:
    """Non-zero exit, exactly one line on stderr starting 'govnet: error:', no trace anywhere."""
    stderr = result.stderr
    out = result.stdout if hasattr(result, "stdout") else result.output
    assert result.returncode != 0 if hasattr(result, "returncode") else result.exit_code != 0
    if exit_code is not None:
        got = result.returncode if hasattr(result, "returncode") else result.exit_code
        assert got == exit_code, (got, stderr)
    assert "Traceback" not in stderr and "Traceback" not in out
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    line = lines[0]
    assert line.startswith("govnet: error: "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


# --- node init ------------------------------------------------------------------------


def test_node_init_writes_config_and_store(tmp_path: Path) -> None:
    target = tmp_path / "county"
    result = govnet("node", "init", str(target), "--id", "371102", "--level", "county",
                    "--listen", "127.0.0.1:0", "--parent", "127.0.0.1:50051")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "371102" in result.stdout and "county" in result.stdout
    assert (target / "govnet.toml").is_file() and (target / "govnet.db").is_file()

    config = load_config(target)
    assert (config.node_id, config.level.value, str(config.listen), str(config.parent)) == (
        "371102", "county", "127.0.0.1:0", "127.0.0.1:50051",
    )
    raw = tomllib.loads((target / "govnet.toml").read_text(encoding="utf-8"))
    assert raw["node"]["id"] == "371102"
    assert raw["intake"]["duplicate_window_days"] == 30


def _unwritable(tmp_path: Path) -> Path:
    """A directory this user cannot create or write, also when the tests run as root."""
    if os.geteuid() == 0:
        blocker = tmp_path / "file.txt"
        blocker.write_text("not a directory")
        return blocker / "sub"
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return locked / "sub"


INIT_ERRORS = [
    ("unknown-level", ["--id", "371102", "--level", "province", "--listen", "127.0.0.1:0", "--parent", "127.0.0.1:1"],
     ("node.level", "province")),
    ("village-without-parent", ["--id", "371102001201", "--level", "village", "--listen", "127.0.0.1:0"],
     ("node.parent", "village")),
    ("city-with-parent", ["--id", "371100", "--level", "city", "--listen", "127.0.0.1:0", "--parent", "127.0.0.1:1"],
     ("node.parent", "city")),
    ("township-id-with-6-digits", ["--id", "371102", "--level", "township", "--listen", "127.0.0.1:0", "--parent", "127.0.0.1:1"],
     ("node.id", "371102")),
    ("county-id-ending-00", ["--id", "371100", "--level", "county", "--listen", "127.0.0.1:0", "--parent", "127.0.0.1:1"],
     ("node.id", "371100")),
    ("listen-without-port", ["--id", "371102", "--level", "county", "--listen", "localhost", "--parent", "127.0.0.1:1"],
     ("node.listen", "localhost")),
    ("listen-port-too-big", ["--id", "371102", "--level", "county", "--listen", "127.0.0.1:70000", "--parent", "127.0.0.1:1"],
     ("node.listen", "70000")),
    ("parent-malformed", ["--id", "371102", "--level", "county", "--listen", "127.0.0.1:0", "--parent", "parent-host"],
     ("node.parent", "parent-host")),
    ("duplicate-window-negative", ["--id", "371102", "--level", "county", "--listen", "127.0.0.1:0", "--parent", "127.0.0.1:1",
                                   "--duplicate-window-days", "-1"],
     ("duplicate_window_days",)),
]


@pytest.mark.parametrize(("args", "fragments"), [c[1:] for c in INIT_ERRORS], ids=[c[0] for c in INIT_ERRORS])
def test_node_init_refuses_bad_arguments(tmp_path: Path, args, fragments) -> None:
    target = tmp_path / "node"
    result = CliRunner().invoke(main, ["node", "init", str(target), *args])
    assert isinstance(result.exception, SystemExit), result.exception  # no uncaught exception
    assert_one_line_error(result, *fragments, exit_code=1)
    assert not (target / "govnet.toml").exists()
    assert not (target / "govnet.db").exists()


def test_node_init_refuses_bad_arguments_as_a_real_process(tmp_path: Path) -> None:
    target = tmp_path / "node"
    result = govnet("node", "init", str(target), "--id", "371102001", "--level", "township",
                    "--listen", "127.0.0.1:0")
    assert_one_line_error(result, "node.parent", exit_code=1)
    assert not target.exists()


def test_node_init_into_an_unwritable_directory(tmp_path: Path) -> None:
    target = _unwritable(tmp_path)
    result = govnet("node", "init", str(target), "--id", "371102", "--level", "county",
                    "--listen", "127.0.0.1:0", "--parent", "127.0.0.1:1")
    assert_one_line_error(result, str(target), "cannot write", exit_code=1)
    assert not (target / "govnet.toml").exists()


def test_node_init_twice_in_the_same_directory(tmp_path: Path) -> None:
    target = tmp_path / "county"
    args = ["node", "init", str(target), "--id", "371102", "--level", "county", "--listen", "127.0.0.1:0",
            "--parent", "127.0.0.1:1"]
    assert govnet(*args).returncode == 0
    config_before = (target / "govnet.toml").read_bytes()
    db_before = (target / "govnet.db").read_bytes()

    again = govnet(*args[:3], "--id", "371103", "--level", "county", "--listen", "127.0.0.1:0", "--parent", "127.0.0.1:1")
    assert_one_line_error(again, "govnet.toml", "already", exit_code=1)
    assert (target / "govnet.toml").read_bytes() == config_before
    assert (target / "govnet.db").read_bytes() == db_before


# --- node serve -----------------------------------------------------------------------


def _serve_must_fail(directory: Path) -> subprocess.CompletedProcess[str]:
    result = govnet("node", "serve", str(directory), timeout=30)
    assert "serving on" not in result.stdout, "the node started when it should have refused"
    return result


def test_serve_refuses_a_port_held_by_another_socket(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        init_node(tmp_path / "n", "371102", "county", parent="127.0.0.1:1", listen=f"127.0.0.1:{port}")
        result = _serve_must_fail(tmp_path / "n")
    assert_one_line_error(result, str(port), "node.listen", exit_code=1)


def test_serve_refuses_the_port_of_a_running_node(make_node, tmp_path: Path) -> None:
    running, _ = make_node("371102", "county", catalog=False)
    port = running.node.port
    second = tmp_path / "second"
    init_node(second, "371103", "county", parent="127.0.0.1:1", listen=f"127.0.0.1:{port}")
    result = _serve_must_fail(second)
    assert_one_line_error(result, str(port), exit_code=1)


def test_serve_a_missing_directory(tmp_path: Path) -> None:
    result = _serve_must_fail(tmp_path / "nowhere")
    assert_one_line_error(result, str(tmp_path / "nowhere"), "no such directory", exit_code=1)


CONFIG_EDITS = [
    ("bad-toml", lambda text: text + "\n[node\nid = ", ("govnet.toml", "not valid TOML")),
    ("unknown-key", lambda text: text.replace("[node]\n", '[node]\ncolour = "red"\n'), ("govnet.toml", "node.colour")),
    ("unknown-section", lambda text: text + '\n[metrics]\nport = 9100\n', ("[metrics]",)),
    ("bad-level", lambda text: text.replace('level = "county"', 'level = "province"'), ("node.level", "province")),
    ("window-as-text", lambda text: text.replace("duplicate_window_days = 30", 'duplicate_window_days = "30"'),
     ("duplicate_window_days",)),
]


def _corrupt(tmp_path: Path, edit) -> Path:
    directory = init_node(tmp_path / "n", "371102", "county", parent="127.0.0.1:1")
    path = directory / "govnet.toml"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    return directory


@pytest.mark.parametrize(("edit", "fragments"), [c[1:] for c in CONFIG_EDITS[:2]], ids=[c[0] for c in CONFIG_EDITS[:2]])
def test_serve_a_corrupted_config(tmp_path: Path, edit, fragments) -> None:
    assert_one_line_error(_serve_must_fail(_corrupt(tmp_path, edit)), *fragments, exit_code=1)


@pytest.mark.parametrize(("edit", "fragments"), [c[1:] for c in CONFIG_EDITS], ids=[c[0] for c in CONFIG_EDITS])
def test_serve_a_corrupted_config_in_process(tmp_path: Path, edit, fragments) -> None:
    # The configuration is checked before anything starts, so the command returns at once.
    result = CliRunner().invoke(main, ["node", "serve", str(_corrupt(tmp_path, edit))])
    assert isinstance(result.exception, SystemExit), result.exception
    assert_one_line_error(result, *fragments, exit_code=1)


def test_serve_refuses_a_store_that_belongs_to_another_node(tmp_path: Path) -> None:
    directory = init_node(tmp_path / "n", "371102", "county", parent="127.0.0.1:1")
    path = directory / "govnet.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('"371102"', '"371103"'), encoding="utf-8")
    assert_one_line_error(_serve_must_fail(directory), "371102", "371103", exit_code=1)


# --- against a running node -----------------------------------------------------------


def _table_lines(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    assert len(lines) >= 2, stdout
    assert set(lines[1]) <= {"-", " "} and "-" in lines[1], f"second line is not a dashes line: {lines[1]!r}"
    return lines


def test_catalog_and_case_commands_end_to_end(make_node) -> None:
    node, client = make_node("371102", "county", catalog=False)
    at = ["--node", node.address]

    loaded = govnet("catalog", "load", str(sample_catalog_path()), *at)
    assert loaded.returncode == 0, loaded.stderr
    assert "catalog version 1" in loaded.stdout

    listing = govnet("catalog", "list", "--json", *at)
    assert listing.returncode == 0, listing.stderr
    data = json.loads(listing.stdout)
    assert int(data["version"]) == 1 and data["issuer"] == "371100"  # int64 is a JSON string in proto3
    assert len(data["items"]) >= 20
    assert "HB-0005" in {i["code"] for i in data["items"]}

    shown = govnet("catalog", "show", "HB-0005", *at)
    assert shown.returncode == 0, shown.stderr
    assert "HB-0005" in shown.stdout and "建设项目环境保护设施竣工验收" in shown.stdout
    assert "10 working days" in shown.stdout

    material_args = [arg for m in all_materials("HB-0005") for arg in ("--material", m)]
    submitted = govnet("case", "submit", "--item", "HB-0005", "--name", NAME, "--id-number", ID_NUMBER,
                       "--phone", PHONE, *material_args, "--key", "cli-0001", "--json", *at)
    assert submitted.returncode == 0, submitted.stderr
    sub = json.loads(submitted.stdout)
    receipt = sub["receipt"]
    assert str(Receipt.parse(receipt)) == receipt
    assert (sub["status"], sub["case_type"], sub["replayed"]) == ("received", "promised", False)

    again = govnet("case", "submit", "--item", "HB-0005", "--name", NAME, "--id-number", ID_NUMBER,
                   "--phone", PHONE, *material_args, "--key", "cli-0001", "--json", *at)
    assert json.loads(again.stdout)["receipt"] == receipt
    assert json.loads(again.stdout)["replayed"] is True

    acted = govnet("case", "act", receipt, "accept", *at)
    assert acted.returncode == 0, acted.stderr
    assert acted.stdout.strip() == f"{receipt}: accept → accepted, due 2026-03-24"

    case = json.loads(govnet("case", "show", receipt, "--json", *at).stdout)
    assert (case["status"], case["owner"], case["due"]) == ("accepted", "371102", "2026-03-24")
    assert [e["action"] for e in case["events"]] == ["submit", "accept"]
    assert [e["actor"] for e in case["events"]] == [TESTER_ACTOR] * 2  # who signed in, not $GOVNET_ACTOR

    cases = _table_lines(govnet("case", "list", *at).stdout)
    assert cases[0].split() == ["受理编号", "事项", "事项名称", "申请人", "类型", "状态", "承诺期限", "承办节点", "标记"]
    assert len(cases) == 3
    row = cases[2].split()
    assert (row[:2], row[3:7]) == ([receipt, "HB-0005"], [NAME[0] + "*" * (len(NAME) - 1), "promised", "已受理",
                                                         "2026-03-24"])

    tracked = govnet("case", "track", receipt, "--json", *at)
    assert tracked.returncode == 0, tracked.stderr
    assert NAME not in tracked.stdout and ID_NUMBER not in tracked.stdout and PHONE not in tracked.stdout


def test_refusal_from_the_node_is_one_line_and_exit_1(make_node) -> None:
    node, client = make_node("371102", "county")
    at = ["--node", node.address]
    receipt = submit(client, "HB-0005").case.receipt

    illegal = govnet("case", "act", receipt, "complete", *at)
    assert_one_line_error(illegal, "FAILED_PRECONDITION", "received", exit_code=1)
    assert illegal.stdout == ""

    bad_id = govnet("case", "submit", "--item", "HB-0005", "--name", NAME, "--id-number", ID_NUMBER[:17],
                    "--phone", PHONE, *at)
    assert_one_line_error(bad_id, "INVALID_ARGUMENT", "resident ID", exit_code=1)

    unknown = govnet("catalog", "show", "HB-9999", *at)
    assert_one_line_error(unknown, "NOT_FOUND", "HB-9999", exit_code=1)
    assert client.get(receipt).status == "received"


def test_unreachable_node_is_exit_3(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    result = govnet("case", "list", "--node", address)
    assert_one_line_error(result, "UNAVAILABLE", address, exit_code=3)


def test_usage_error_is_exit_2() -> None:
    result = CliRunner().invoke(main, ["case", "act"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
