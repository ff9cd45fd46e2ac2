"""Encrypted backups and owner-only files (issue #12 point 6): a backup made with a key file holds
no applicant in clear, restores with the same key, and is refused in one line with a wrong key
or after tampering. In-process (the backup functions and the CLI's key command), no node serving."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from govnet.node.store.engine import DB_FILE
from govnet.ops.backup import ENCRYPTED_FILE, BackupError, backup, restore
from govnet.ops.cli import main
from govnet.ops.processes import init_node

from support.helpers import MORNING


def private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


@pytest.fixture
def node(tmp_path: Path) -> Path:
    folder = tmp_path / "village"
    init_node(folder, "371102001201", "village", "127.0.0.1:1", tls={"plaintext": True})
    import sqlite3
    db = sqlite3.connect(folder / DB_FILE)  # a recognisable applicant in the store's bytes
    db.execute("CREATE TABLE marker (text TEXT)")
    db.execute("INSERT INTO marker VALUES ('370102199001011237 王小芳 13912345678')")
    db.commit()
    db.close()
    return folder


def test_an_encrypted_backup_restores_with_its_key_and_refuses_a_wrong_or_tampered_one(node: Path,
                                                                                      tmp_path: Path) -> None:
    key, other = tmp_path / "backup.key", tmp_path / "other.key"
    runner = CliRunner()
    made = runner.invoke(main, ["backup-key", str(key)])
    assert made.exit_code == 0, made.output
    assert private(key)
    again = runner.invoke(main, ["backup-key", str(key)])
    assert again.exit_code != 0 and "never overwritten" in again.output and len(again.output.splitlines()) == 1
    runner.invoke(main, ["backup-key", str(other)])

    out = tmp_path / "b"
    manifest = backup(node, out, MORNING, key_file=key)
    assert manifest.encrypted and not (out / DB_FILE).exists()
    assert all(private(p) for p in out.iterdir()) and private(out)
    held = (out / ENCRYPTED_FILE).read_bytes()
    assert b"370102199001011237" not in held and "王小芳".encode() not in held
    assert not list(node.glob("*.backup-plain"))  # the plain snapshot is gone

    with pytest.raises(BackupError, match="is encrypted: give the key file"):
        restore(out, tmp_path / "r0")
    with pytest.raises(BackupError, match="does not decrypt with this key file"):
        restore(out, tmp_path / "r1", key_file=other)
    assert not (tmp_path / "r1" / DB_FILE).exists()

    done = restore(out, tmp_path / "r2", key_file=key)
    assert done.incarnation == 2
    restored = (tmp_path / "r2" / DB_FILE).read_bytes()
    assert b"370102199001011237" in restored and private(tmp_path / "r2" / DB_FILE)

    # One byte changed in the last chunk (the manifest's checksum updated too, as an attacker would).
    import hashlib
    import json
    tampered = bytearray(held)
    tampered[-5] ^= 1
    (out / ENCRYPTED_FILE).write_bytes(bytes(tampered))
    m = json.loads((out / "backup.json").read_text())
    m["sha256"] = hashlib.sha256(bytes(tampered)).hexdigest()
    (out / "backup.json").write_text(json.dumps(m))
    failed = runner.invoke(main, ["restore", str(out), str(tmp_path / "r3"), "--key-file", str(key)])
    assert failed.exit_code != 0 and "does not decrypt" in failed.output and len(failed.output.splitlines()) == 1
