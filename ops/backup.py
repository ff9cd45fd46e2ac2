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

**Encryption** (issue #12: a backup holds every applicant of the node): ``--key-file F``
encrypts the database into ``govnet.db.enc`` with AES-256-GCM under the 32-byte key in F
(``govnet backup-key F`` makes one, readable by its owner only). The stream is cut in 1 MiB
chunks, each sealed with its own nonce (a random prefix per backup and the chunk's number)
and its number and "last" flag as associated data, so a chunk altered, dropped, reordered or
cut off is refused; the plain database exists only as a temporary file in the node's own
(owner-only) data directory while it is encrypted, never in OUT. Restore with the same
``--key-file``: a wrong key or a tampered backup is refused in one line, before anything is
written. Every file a backup writes is created readable by its owner only.

Known limits: cases that originated under the restored node but are owned above its
parent come back to it only as summaries (periodic digest); requests, ratings,
complaints and statistics rows the restored node had received after the backup and not
yet applied or passed on are not sent again; an owner that records events on a case
after the restore and before the re-sent copy arrives (a supervision alarm in its first
seconds) numbers them where its former self had other events: the copy is then
quarantined (the histories differ) rather than merged, for ops to see.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import struct
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from govnet.node.process.config import CONFIG_FILE
from govnet.node.store.backup import DamagedStore, incarnation_of, restore_as_new_incarnation, snapshot
from govnet.node.store.engine import DB_FILE, STORE_FILES, create_private
from govnet.node.store.unit import StoreError, utc_text

MANIFEST = "backup.json"
ENCRYPTED_FILE = DB_FILE + ".enc"
_MAGIC = b"GOVNETB1"
_CHUNK = 1 << 20


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
    sha256: str  # of the file the backup holds (the encrypted one if encrypted)
    encrypted: bool = False


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


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def new_key_file(path: Path) -> None:
    """A new backup key (32 random bytes, base64), readable by its owner only; never overwrites."""
    try:
        _write_private(path, base64.b64encode(os.urandom(32)) + b"\n")
    except FileExistsError:
        raise BackupError(f"{path} already exists: a key file is never overwritten (backups made with it "
                          "would become unreadable)") from None
    except OSError as exc:
        raise BackupError(f"{path}: cannot write it ({exc.strerror})") from None


def read_key_file(path: Path) -> bytes:
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except FileNotFoundError:
        raise BackupError(f"{path}: no key file here (make one with 'govnet backup-key {path}')") from None
    except ValueError:
        key = b""
    if len(key) != 32:
        raise BackupError(f"{path} is not a govnet backup key (32 bytes in base64, from 'govnet backup-key')")
    return key


def _aad(index: int, last: bool) -> bytes:
    return _MAGIC + struct.pack(">QB", index, last)


def encrypt_file(source: Path, target: Path, key: bytes) -> None:
    """``source`` encrypted into ``target`` (new, 0600): header, then sealed 1 MiB chunks."""
    aead, prefix = AESGCM(key), os.urandom(4)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
        out.write(_MAGIC + prefix)
        index, chunk = 0, src.read(_CHUNK)
        while True:
            following = src.read(_CHUNK)
            last = not following
            box = aead.encrypt(prefix + struct.pack(">Q", index), chunk, _aad(index, last))
            out.write(struct.pack(">I", len(box)) + box)
            if last:
                return
            index, chunk = index + 1, following


def decrypt_file(source: Path, target: Path, key: bytes) -> None:
    """``source`` decrypted into ``target``; ``BackupError`` for a wrong key or an altered file."""
    refused = BackupError(f"{source} does not decrypt with this key file: a wrong key, or the backup was altered")
    aead = AESGCM(key)
    with open(source, "rb") as src, open(target, "wb") as out:
        head = src.read(len(_MAGIC) + 4)
        if head[:len(_MAGIC)] != _MAGIC:
            raise BackupError(f"{source} is not an encrypted govnet backup")
        prefix, index = head[len(_MAGIC):], 0
        while True:
            size = src.read(4)
            if len(size) != 4:
                raise refused  # cut off before its last chunk
            box = src.read(struct.unpack(">I", size)[0])
            last = not src.peek(1)
            try:
                out.write(aead.decrypt(prefix + struct.pack(">Q", index), box, _aad(index, last)))
            except InvalidTag:
                raise refused from None
            if last:
                return
            index += 1


def _is_empty(directory: Path) -> bool:
    return not directory.exists() or not any(directory.iterdir())


def backup(data_dir: Path, out: Path, now: datetime, key_file: Path | None = None) -> Manifest:
    """Copy a (possibly serving) node's store and configuration into ``out`` (new or empty);
    with ``key_file``, the store encrypted."""
    key = read_key_file(key_file) if key_file is not None else None
    source = data_dir / DB_FILE
    if not source.is_file():
        raise BackupError(f"no store at {source}: DIR must be a node's data directory")
    if not (data_dir / CONFIG_FILE).is_file():
        raise BackupError(f"no {CONFIG_FILE} in {data_dir}: DIR must be a node's data directory")
    if not _is_empty(out):
        raise BackupError(f"{out} is not empty: give a new or empty directory for the backup")
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"{out}: cannot create it ({exc.strerror})") from None
    # Encrypted: the plain snapshot only ever lies in the node's own directory, and briefly.
    target = out / DB_FILE if key is None else data_dir / (DB_FILE + ".backup-plain")
    try:
        target.unlink(missing_ok=True)
        create_private(target)
        taken = snapshot(source, target)
        if key is not None:
            encrypt_file(target, out / ENCRYPTED_FILE, key)
    except StoreError as exc:
        shutil.rmtree(out, ignore_errors=True)
        raise BackupError(f"cannot back up {source}: {exc}") from None
    finally:
        if key is not None:
            target.unlink(missing_ok=True)
    held = out / (DB_FILE if key is None else ENCRYPTED_FILE)
    _write_private(out / CONFIG_FILE, (data_dir / CONFIG_FILE).read_bytes())
    manifest = Manifest(taken.node_id, taken.level, taken.incarnation, taken.schema_revision, utc_text(now),
                        taken.cases, _sha256(held), key is not None)
    _write_private(out / MANIFEST, (json.dumps(asdict(manifest), ensure_ascii=False, indent=2) + "\n").encode())
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


def _check_backup(backup_dir: Path, key_file: Path | None) -> Manifest:
    manifest = read_manifest(backup_dir)
    held = ENCRYPTED_FILE if manifest.encrypted else DB_FILE
    if manifest.encrypted and key_file is None:
        raise BackupError(f"{backup_dir} is encrypted: give the key file it was made with (--key-file)")
    for name in (held, CONFIG_FILE):
        if not (backup_dir / name).is_file():
            raise BackupError(f"{backup_dir} is incomplete: {name} is missing")
    if _sha256(backup_dir / held) != manifest.sha256:
        raise BackupError(f"{backup_dir / held} does not match its checksum in {MANIFEST}: the backup is damaged")
    return manifest


def restore(backup_dir: Path, data_dir: Path, *, force: bool = False, incarnation: int | None = None,
            key_file: Path | None = None) -> Restored:
    """Bring a backup back into ``data_dir`` as a new incarnation of its node (``key_file``: the
    key an encrypted backup was made with)."""
    manifest = _check_backup(backup_dir, key_file)
    key = read_key_file(key_file) if manifest.encrypted and key_file is not None else None
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
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = data_dir / (DB_FILE + ".restoring")
        staging.unlink(missing_ok=True)
        create_private(staging)
        if key is None:
            with open(backup_dir / DB_FILE, "rb") as src, open(staging, "wb") as dst:
                shutil.copyfileobj(src, dst)
    except OSError as exc:
        raise BackupError(f"{data_dir}: cannot write here ({exc.strerror})") from None
    if key is not None:
        try:
            decrypt_file(backup_dir / ENCRYPTED_FILE, staging, key)
        except BackupError:
            staging.unlink()
            raise
    try:
        renumbered = restore_as_new_incarnation(staging, chosen)
    except DamagedStore:
        staging.unlink()
        raise BackupError(f"{backup_dir / DB_FILE} fails SQLite's integrity check: the backup is damaged") from None
    for name in STORE_FILES:  # the old store's WAL must not be replayed onto the restored file
        (data_dir / name).unlink(missing_ok=True)
    staging.replace(data_dir / DB_FILE)
    (data_dir / CONFIG_FILE).unlink(missing_ok=True)
    _write_private(data_dir / CONFIG_FILE, (backup_dir / CONFIG_FILE).read_bytes())
    return Restored(manifest.node_id, chosen, manifest.incarnation, renumbered)
