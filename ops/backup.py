"""Backing up a node while it serves, and bringing a backup back.

**Backup** copies a (possibly serving) node's store as one consistent snapshot with
SQLite's online backup API (``node.store.backup.snapshot``: WAL readers never block the
writer, so the node keeps serving). The backup directory holds ``govnet.db``, the node's
``govnet.toml`` and ``backup.json`` (node, incarnation, schema revision, when, how many
cases, the database's SHA-256).

**Restore** checks the backup (manifest, checksum, then SQLite's integrity check), refuses
to overwrite a directory that holds anything unless ``--force``, and brings the store
back under a NEW incarnation (ARCHITECTURE rule 3) through the store's
restore-as-new-incarnation step (``node.store.backup.restore_as_new_incarnation``, which
also renumbers the outbox; its docstring says why). The incarnation is one more than the
highest this directory or the backup has seen (``--incarnation`` can set a higher one when
the node was restored elsewhere since). All of this happens on a copied file before any
node opens it.

What the sync layer recovers afterwards (tests/test_restore_sync.py, tests/test_backup.py):
a restored node's cursor on a neighbour's stream is older than what its pre-restore self
acknowledged, and the neighbour has deleted those envelopes. Every push and pull carries
the sender's lowest position still held, so that cursor moves up to it instead of
waiting forever. What those envelopes did is sent again by the neighbours, which notice
the new incarnation at hello: children re-send every case they handed over to its owner
(a restored *owner*, say a township, takes back the cases transferred to it after the
backup, with their events, and the decisions it forgot on the ones it kept); the parent
sends every case it owns from the restored node's subtree back to the origin (a restored
*village* gets back the cases it took after the backup, and their decisions).

Known limits: cases that originated under the restored node but are owned above its
parent come back to it only as summaries (periodic digest); requests, ratings,
complaints and statistics rows the restored node had received after the backup and not
yet applied or passed on are not sent again; an owner that records events on a case
after the restore and before the re-sent copy arrives (a supervision alarm in its first
seconds) numbers them where its former self had other events: the copy is then
quarantined (the histories differ) rather than merged, for ops to see.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from govnet.node.process.config import CONFIG_FILE
from govnet.node.store.backup import DamagedStore, incarnation_of, restore_as_new_incarnation, snapshot
from govnet.node.store.engine import DB_FILE, STORE_FILES
from govnet.node.store.unit import StoreError, utc_text

MANIFEST = "backup.json"


class BackupError(Exception):
    """The backup or restore cannot be done; ``str()`` says what to fix (nothing was written)."""


@dataclass(frozen=True)
class Manifest:
    node_id: str
    level: str
    incarnation: int
    schema_revision: str
    taken_at: str
    cases: int
    sha256: str


@dataclass(frozen=True)
class Restored:
    node_id: str
    incarnation: int  # the new one
    backup_incarnation: int
    renumbered: dict[str, int]  # link -> envelopes waiting on it


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_empty(directory: Path) -> bool:
    return not directory.exists() or not any(directory.iterdir())


def backup(data_dir: Path, out: Path, now: datetime) -> Manifest:
    """Copy a (possibly serving) node's store and configuration into ``out`` (new or empty)."""
    source = data_dir / DB_FILE
    if not source.is_file():
        raise BackupError(f"no store at {source}: DIR must be a node's data directory")
    if not (data_dir / CONFIG_FILE).is_file():
        raise BackupError(f"no {CONFIG_FILE} in {data_dir}: DIR must be a node's data directory")
    if not _is_empty(out):
        raise BackupError(f"{out} is not empty: give a new or empty directory for the backup")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"{out}: cannot create it ({exc.strerror})") from None
    target = out / DB_FILE
    try:
        taken = snapshot(source, target)
    except StoreError as exc:
        shutil.rmtree(out, ignore_errors=True)
        raise BackupError(f"cannot back up {source}: {exc}") from None
    shutil.copy2(data_dir / CONFIG_FILE, out / CONFIG_FILE)
    manifest = Manifest(taken.node_id, taken.level, taken.incarnation, taken.schema_revision, utc_text(now),
                        taken.cases, _sha256(target))
    (out / MANIFEST).write_text(json.dumps(asdict(manifest), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return manifest


def read_manifest(backup_dir: Path) -> Manifest:
    path = backup_dir / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(**raw)
    except FileNotFoundError:
        raise BackupError(f"{backup_dir} is not a govnet backup: it has no {MANIFEST}") from None
    except (ValueError, TypeError) as exc:
        raise BackupError(f"{path} is damaged: {exc}") from None


def _check_backup(backup_dir: Path) -> Manifest:
    manifest = read_manifest(backup_dir)
    for name in (DB_FILE, CONFIG_FILE):
        if not (backup_dir / name).is_file():
            raise BackupError(f"{backup_dir} is incomplete: {name} is missing")
    if _sha256(backup_dir / DB_FILE) != manifest.sha256:
        raise BackupError(f"{backup_dir / DB_FILE} does not match its checksum in {MANIFEST}: the backup is damaged")
    return manifest


def restore(backup_dir: Path, data_dir: Path, *, force: bool = False, incarnation: int | None = None) -> Restored:
    """Bring a backup back into ``data_dir`` as a new incarnation of its node."""
    manifest = _check_backup(backup_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise BackupError(f"{data_dir} is not a directory")
    if not _is_empty(data_dir) and not force:
        raise BackupError(f"{data_dir} is not empty: restore into an empty directory, or add --force to replace "
                          "the node's store and configuration there (stop the node first)")
    newest = max(manifest.incarnation, incarnation_of(data_dir / DB_FILE))
    chosen = newest + 1 if incarnation is None else incarnation
    if chosen <= newest:
        raise BackupError(f"--incarnation {chosen} is not new: this node has used incarnations up to {newest}")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        staging = data_dir / (DB_FILE + ".restoring")
        shutil.copyfile(backup_dir / DB_FILE, staging)
    except OSError as exc:
        raise BackupError(f"{data_dir}: cannot write here ({exc.strerror})") from None
    try:
        renumbered = restore_as_new_incarnation(staging, chosen)
    except DamagedStore:
        staging.unlink()
        raise BackupError(f"{backup_dir / DB_FILE} fails SQLite's integrity check: the backup is damaged") from None
    for name in STORE_FILES:  # the old store's WAL must not be replayed onto the restored file
        (data_dir / name).unlink(missing_ok=True)
    staging.replace(data_dir / DB_FILE)
    shutil.copy2(backup_dir / CONFIG_FILE, data_dir / CONFIG_FILE)
    return Restored(manifest.node_id, chosen, manifest.incarnation, renumbered)
