"""Statistics in the store: versioned ``stat_row`` buckets, ``stat_report`` coverage
reports, and what the statistics ledger reads to count (events after its cursor).

A row is one node's counters for one (day, item, department) bucket; a report says up to
when a node's rows are complete and which children it had. Both are upserted only when
the incoming version is higher than the one held (``federation.rollup``: highest version
wins), so a repeat, a reordering or a late copy changes nothing. The ledger keeps its
positions (the last event it looked at, the complaints it has counted) in ``meta``.

Sums for a question are done by SQLite (a city holds a row per node, day, item and
department for years); the tree's groupings run over those few sums in the app.
Functions take the caller's session and never commit.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from govnet.federation.rollup import Report, RowKey, VersionedRow
from govnet.node.domain.statistics import COUNTERS
from govnet.node.store.unit import Unit, execute, query, utc_text

KEY = ("node", "day", "item_code", "department")
ROW_COLUMNS = (*KEY, *COUNTERS, "version", "computed_at")
UPSERT_ROW_SQL = (
    f"INSERT INTO stat_row ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join(':' + c for c in ROW_COLUMNS)}) "
    f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*COUNTERS, "version", "computed_at"))
    + " WHERE excluded.version > stat_row.version"
)
_REPORT_COLUMNS = ("node", "version", "as_of", "children", "received_at")
UPSERT_REPORT_SQL = (
    f"INSERT INTO stat_report ({', '.join(_REPORT_COLUMNS)}) VALUES ({', '.join(':' + c for c in _REPORT_COLUMNS)}) "
    "ON CONFLICT (node) DO UPDATE SET version = excluded.version, as_of = excluded.as_of, "
    "children = excluded.children, received_at = excluded.received_at WHERE excluded.version > stat_report.version"
)
EVENTS_SQL = (
    "SELECT e.id, e.origin, e.superseded, e.action, e.detail, e.happened_at, e.receipt, c.item_code, c.department,"
    " c.accepted_on, c.decided_on, c.due, c.paused_days, c.decision, c.catalog_issuer, c.catalog_version,"
    " c.fees_due_fen"
    " FROM case_event e JOIN case_record c ON c.receipt = e.receipt WHERE e.id > ? ORDER BY e.id LIMIT ?"
)


# --- rows and reports as values ---


def row_columns(row: VersionedRow, computed_at: str) -> dict[str, Any]:
    """A row's columns (also what a ``stats`` envelope carries for it)."""
    k = row.key
    return {"node": k.node, "day": k.day, "item_code": k.item_code, "department": k.department,
            **{c: int(row.counters.get(c, 0)) for c in COUNTERS}, "version": row.version, "computed_at": computed_at}


def row_from(values: dict[str, Any]) -> VersionedRow:
    return VersionedRow(RowKey(values["node"], values["day"], values["item_code"], values["department"]),
                        int(values["version"]), {c: int(values.get(c, 0)) for c in COUNTERS})


def _report_columns(report: Report, received_at: datetime) -> dict[str, Any]:
    return {"node": report.node, "version": report.version, "as_of": utc_text(report.as_of),
            "children": json.dumps(list(report.children)), "received_at": utc_text(received_at)}


# --- keeping them (highest version wins) ---


def keep_row(s: Unit, row: VersionedRow, computed_at: str) -> dict[str, Any]:
    """Upsert ``row`` where newer than the one held; returns its columns."""
    columns = row_columns(row, computed_at)
    execute(s, UPSERT_ROW_SQL, columns)
    return columns


def keep_report(s: Unit, report: Report, received_at: datetime) -> None:
    """Upsert ``report`` where newer than the one held."""
    execute(s, UPSERT_REPORT_SQL, _report_columns(report, received_at))


# --- what the ledger reads to count ---


def cursor(s: Unit, key: str) -> int:
    """One of the ledger's durable positions in ``meta`` (0: none yet)."""
    rows = query(s, "SELECT value FROM meta WHERE key = ?", (key,))
    return int(rows[0][0]) if rows else 0


def set_cursor(s: Unit, key: str, value: int) -> None:
    execute(s, "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, str(value)))


def last_event_id(s: Unit) -> int:
    """The id of the newest ``case_event`` row (0: none)."""
    return int(query(s, "SELECT coalesce(max(id), 0) FROM case_event")[0][0])


def events_after(s: Unit, event_id: int, limit: int) -> list[tuple[Any, ...]]:
    """Up to ``limit`` events after ``event_id``, each with the case columns counting needs
    (in ``EVENTS_SQL``'s order)."""
    return query(s, EVENTS_SQL, (event_id, limit))


def first_accepted_at(s: Unit, receipt: str, origin: str) -> str | None:
    """When ``origin`` accepted the case (its first accept that was not superseded)."""
    accepted = query(s, "SELECT happened_at FROM case_event WHERE receipt = ? AND action = 'accept' AND origin = ? "
                        "AND superseded = 0 ORDER BY seq LIMIT 1", (receipt, origin))
    return str(accepted[0][0]) if accepted else None


def own_counters(s: Unit, node: str, bucket: tuple[str, str, str]) -> dict[str, int]:
    """The counters held for ``node`` in a (day, item, department) bucket (empty: none)."""
    found = query(s, f"SELECT {', '.join(COUNTERS)} FROM stat_row WHERE node = ? AND day = ? AND item_code = ? "
                     "AND department = ?", (node, *bucket))
    return dict(zip(COUNTERS, found[0])) if found else {}


def complaint_buckets(s: Unit, node: str) -> dict[tuple[str, str, str], int]:
    """The buckets of ``node`` that count complaints, with their count."""
    return {(d, i, p): n for d, i, p, n in query(
        s, "SELECT day, item_code, department, complaints FROM stat_row WHERE node = ? AND complaints > 0", (node,))}


def report_as_of(s: Unit, node: str) -> datetime | None:
    """Up to when ``node``'s held report says its rows are complete (None: no report)."""
    held = query(s, "SELECT as_of FROM stat_report WHERE node = ?", (node,))
    return datetime.fromisoformat(held[0][0]) if held else None


def oldest_report_as_of(s: Unit) -> datetime | None:
    """The oldest ``as_of`` over every report held (None: no report)."""
    oldest = query(s, "SELECT min(as_of) FROM stat_report")[0][0]
    return datetime.fromisoformat(oldest) if oldest else None


def children(s: Unit) -> tuple[str, ...]:
    """This node's registered children, in id order."""
    return tuple(r[0] for r in query(s, "SELECT child_id FROM child_link ORDER BY child_id"))


# --- answering ---


def nodes_with_rows(s: Unit) -> list[str]:
    return [n for (n,) in query(s, "SELECT DISTINCT node FROM stat_row")]


def sums_by_node(s: Unit, first_day: str, last_day: str) -> list[tuple[Any, ...]]:
    """(node, one sum per counter) over the days from ``first_day`` to ``last_day``."""
    sums = ", ".join(f"sum({c})" for c in COUNTERS)
    return query(s, f"SELECT node, {sums} FROM stat_row WHERE day >= ? AND day <= ? GROUP BY node",
                 (first_day, last_day))


def sums_by_column(s: Unit, column: str, nodes: list[str], first_day: str, last_day: str) -> list[tuple[Any, ...]]:
    """(value of ``column``, one sum per counter) over the rows of ``nodes`` in those days."""
    if column not in KEY:
        raise ValueError(f"stat_row has no grouping column {column!r}")
    sums = ", ".join(f"sum({c})" for c in COUNTERS)
    return query(s, f"SELECT {column}, {sums} FROM stat_row WHERE day >= ? AND day <= ? "
                    "AND node IN (SELECT value FROM json_each(?)) " f"GROUP BY {column}",
                 (first_day, last_day, json.dumps(nodes)))


_REPORTS = "SELECT node, version, as_of, children FROM stat_report"


def _reports(rows: list[tuple[Any, ...]]) -> list[Report]:
    return [Report(n, v, datetime.fromisoformat(a), tuple(json.loads(c))) for n, v, a, c in rows]


def reports(s: Unit) -> list[Report]:
    """Every report held (this node's and its subtree's)."""
    return _reports(query(s, _REPORTS))


def children_heard(s: Unit) -> dict[str, datetime | None]:
    """When each registered child was last heard from (None: never)."""
    return {c: datetime.fromisoformat(t) if t else None
            for c, t in query(s, "SELECT child_id, last_seen FROM child_link")}


def columns_of(s: Unit, node: str) -> list[dict[str, Any]]:
    """Every row held for ``node``, as its columns (what a ``stats`` envelope carries), by key."""
    raw = query(s, f"SELECT {', '.join(ROW_COLUMNS)} FROM stat_row WHERE node = ? "
                   f"ORDER BY {', '.join(KEY)}", (node,))
    return [dict(zip(ROW_COLUMNS, r)) for r in raw]


def rows_of(s: Unit, node: str) -> list[VersionedRow]:
    """Every row held for ``node``."""
    return [row_from(values) for values in columns_of(s, node)]


def report_of(s: Unit, node: str) -> Report | None:
    """The report held for ``node`` (None: none yet)."""
    return next(iter(_reports(query(s, _REPORTS + " WHERE node = ?", (node,)))), None)
