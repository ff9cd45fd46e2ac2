"""A store's file copied while its node serves, and a copy brought back as a new incarnation.

**Snapshot** (``snapshot``): SQLite's online backup API on a read-only connection of its
own copies the whole file in one step, so the copy is one consistent snapshot (a single
read transaction: every commit that returned before it began is in it, and no half of a
later one), and the node keeps serving meanwhile (WAL: readers never block the writer).
The copy is a single self-contained file (journal mode DELETE).

**The restore-as-new-incarnation step** (``restore_as_new_incarnation``), ARCHITECTURE
rule 3. A restored store has forgotten whatever it did after the backup, so its counters
rewind, and only a new incarnation keeps the receipt numbers and message identities it
issues from colliding with the ones it issued before. So the step checks the copy
(``PRAGMA integrity_check``), gives it its new incarnation, and renumbers its outbox from
1 on every link, because a neighbour tracks each incarnation's stream with a cursor of
its own that starts at 0: a stream that began at, say, 57 would leave a gap the cursor
could never close. Identities (origin, incarnation, sequence) are untouched, so whatever
the neighbour already applied from the old incarnation is still recognised end to end
and not applied twice. It runs on the copied file, in one transaction, before any node
opens it (ops' ``govnet restore`` chooses the incarnation and moves the files). A node below
the city is also marked as catching up (``node.store.links.CATCHING_UP``): it raises no
deadline alarm until it has pulled and applied what its parent sends back, so an alarm on a
case it forgot the end of never collides with the history coming back.

These work on files, not on an open ``Store``: the node is stopped, or not ours to touch.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from govnet.federation.tree import parent_id
from govnet.node.store.links import CATCHING_UP
from govnet.node.store.unit import StoreError


class DamagedStore(StoreError):
    """The file fails SQLite's integrity check."""


@dataclass(frozen=True)
class Snapshot:
    """What a snapshot holds: whose store, which incarnation and schema, how many cases."""

    node_id: str
    level: str
    incarnation: int
    schema_revision: str
    cases: int


def _meta(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT key, value FROM meta").fetchall())


def snapshot(source: Path, target: Path) -> Snapshot:
    """Copy the store file ``source`` (possibly in use by its node) to ``target``.

    ``StoreError`` (its text is SQLite's) when it cannot be read or written."""
    try:
        # A read-only connection: the backup only reads the node's file, under one read
        # transaction, while the node goes on writing to its WAL.
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step: one snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
            meta = _meta(dst)
            revision = dst.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            cases = int(dst.execute("SELECT count(*) FROM case_record").fetchone()[0])
        finally:
            dst.close()
            src.close()
    except sqlite3.Error as exc:
        raise StoreError(str(exc)) from None
    return Snapshot(meta["node_id"], meta["level"], int(meta["incarnation"]), revision, cases)


def incarnation_of(path: Path) -> int:
    """The incarnation of the store file at ``path`` (0: none, or unreadable)."""
    if not path.is_file():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(_meta(db).get("incarnation", 0))
        finally:
            db.close()
    except (sqlite3.Error, ValueError):
        return 0


def restore_as_new_incarnation(path: Path, incarnation: int) -> dict[str, int]:
    """Make the copied store file at ``path`` the given new incarnation of its node and
    renumber its outbox from 1 per link (see the module docstring). Returns the number of
    envelopes waiting on each link. ``DamagedStore`` (nothing changed) when the file fails
    SQLite's integrity check."""
    db = sqlite3.connect(path)
    try:
        if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise DamagedStore(f"{path} fails SQLite's integrity check")
        return _reincarnate(db, incarnation)
    finally:
        db.close()


def _reincarnate(db: sqlite3.Connection, incarnation: int) -> dict[str, int]:
    """The new incarnation and the renumbered outbox, in one transaction."""
    waiting: dict[str, int] = {}
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'incarnation'", (str(incarnation),))
        node_id = db.execute("SELECT value FROM meta WHERE key = 'node_id'").fetchone()[0]
        if parent_id(node_id) is not None:  # what it forgot comes back from its neighbours first
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, '1')", (CATCHING_UP,))
        links = [r[0] for r in db.execute("SELECT DISTINCT link FROM outbox")]
        counters = [r[0] for r in db.execute("SELECT name FROM counter WHERE name LIKE 'link:%'")]
        for link in links:
            seqs = [r[0] for r in db.execute("SELECT seq FROM outbox WHERE link = ? ORDER BY seq", (link,))]
            # Two passes so that no new number collides with an old one still in place.
            db.execute("UPDATE outbox SET seq = -seq WHERE link = ?", (link,))
            for new, old in enumerate(seqs, 1):
                db.execute("UPDATE outbox SET seq = ? WHERE link = ? AND seq = ?", (new, link, -old))
            waiting[link] = len(seqs)
        for name in {*counters, *(f"link:{link}" for link in links)}:
            count = waiting.get(name.removeprefix("link:"), 0)
            db.execute("INSERT INTO counter (name, value) VALUES (?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, count))
    return waiting
