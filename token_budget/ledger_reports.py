"""What reports, the usage log, the dashboard and the CLI's listings read from the ledger: the SQLite backend of
storage.ReportStore and of the listing methods of UsageStore, AlertStore and EventStore. Part of ledger.py's
Ledger, loaded at the first use of one of these methods (ledger._DefinedIn): no hook decision runs them. Each
function is a Ledger method; its contract is in storage.py."""

from __future__ import annotations

from .lean_sqlite import dict_rows, sqlite3
from .models import Alert
from .reconcile import SOURCE as RECONCILED  # the source of the rows reconciliation adds

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

ALERT_COLUMNS = "key, scope, level, threshold, period, used, limit_tokens, workflow, recommendation, created_at"


def _alert(row: Sequence[Any]) -> Alert:
    _key, scope, level, threshold, period, used, limit, workflow, recommendation, created_at = row[:10]
    return Alert(scope, level, threshold, period, used, limit, created_at, workflow, recommendation)


def rows(self, *, since: str | None = None, until: str | None = None, session: str | None = None,
         limit: int | None = None, newest_first: bool = False) -> list[sqlite3.Row]:
    """Request rows, oldest first; `since`/`until` are UTC ISO bounds (inclusive, exclusive)."""
    where, args = _filters(since, until, session)
    order = "DESC" if newest_first else "ASC"
    sql = f"SELECT * FROM requests{where} ORDER BY timestamp {order}, message_id {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    cursor = self.db.execute(sql, args)
    cursor.row_factory = sqlite3.Row
    return cursor.fetchall()


def totals(self, *, since: str | None = None, until: str | None = None,
           session: str | None = None) -> dict[Any, dict[str, int]]:
    """Sum every token class and cost over a time range (keyed None, the one group)."""
    where, args = _filters(since, until, session)
    sql = (
        "SELECT NULL, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_5m_tokens), "
        f"SUM(cache_creation_1h_tokens), SUM(cache_read_tokens), SUM(cost_micros) FROM requests{where} GROUP BY 1"
    )
    result: dict[Any, dict[str, int]] = {}
    for row in self.db.execute(sql, args):
        result[row[0]] = dict(zip(
            ("requests", "input", "output", "cache_creation_5m", "cache_creation_1h", "cache_read", "cost_micros"),
            (v or 0 for v in row[1:]), strict=True,
        ))
        result[row[0]]["cache_creation"] = result[row[0]]["cache_creation_5m"] + result[row[0]]["cache_creation_1h"]
    return result


def _filters(since: str | None, until: str | None, session: str | None) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if since:
        clauses.append("timestamp >= ?")
        args.append(since)
    if until:
        clauses.append("timestamp < ?")
        args.append(until)
    if session:
        clauses.append("session_id = ?")
        args.append(session)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def count(self) -> int:
    return self.db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]  # type: ignore[no-any-return]


def latest_session(self) -> str | None:
    row = self.db.execute("SELECT session_id FROM requests WHERE session_id IS NOT NULL "
                          "ORDER BY timestamp DESC LIMIT 1").fetchone()
    return row[0] if row else None


def report_rows(self, start: str, end: str) -> list[tuple[Any, ...]]:
    return self.db.execute(
        "SELECT timestamp, model, workflow, cost_status, input_tokens, output_tokens, cache_creation_5m_tokens, "
        "cache_creation_1h_tokens, cache_read_tokens, speed, session_id, agent_id, cost_micros "
        "FROM requests WHERE timestamp >= ? AND timestamp < ? ORDER BY timestamp", (start, end)).fetchall()


def subagent_starts(self, sessions: Sequence[str]) -> list[tuple[str, str, str, str]]:
    found: list[tuple[str, str, str, str]] = []
    unique = sorted(set(sessions))
    for begin in range(0, len(unique), 400):
        chunk = unique[begin : begin + 400]
        marks = ",".join("?" * len(chunk))
        found += self.db.execute(
            f"SELECT session_id, agent_id, MIN(timestamp), model FROM requests WHERE agent_id IS NOT NULL "
            f"AND session_id IN ({marks}) GROUP BY session_id, agent_id", chunk).fetchall()
    return sorted(found, key=lambda row: row[2])


def reconciled_usage(self, start: str, end: str) -> tuple[int, int, int]:
    requests, tokens, micros = self.db.execute(
        "SELECT COUNT(*), COALESCE(SUM(input_tokens + output_tokens + cache_creation_5m_tokens + "
        "cache_creation_1h_tokens + cache_read_tokens), 0), COALESCE(SUM(cost_micros), 0) FROM requests "
        "WHERE source = ? AND timestamp >= ? AND timestamp < ?", (RECONCILED, start, end)).fetchone()
    return requests, tokens, micros


def load_alert(self, key: str) -> Alert | None:
    row = self.db.execute(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE key = ?", (key,)).fetchone()
    return _alert(row) if row else None


def list_alerts(self, *, limit: int | None = None,
                unacknowledged: bool = False) -> list[tuple[Alert, str | None]]:
    sql = f"SELECT {ALERT_COLUMNS}, acked_at FROM alerts"
    if unacknowledged:
        sql += " WHERE acked_at IS NULL"
    sql += " ORDER BY created_at DESC, key"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [(_alert(row), row[-1]) for row in self.db.execute(sql).fetchall()]


def open_alert_keys(self, *, key: str | None = None, limit: int | None = None) -> list[str]:
    sql = "SELECT key FROM alerts WHERE acked_at IS NULL" + (" AND key = ?" if key else "")
    sql += " ORDER BY created_at DESC, key" + (f" LIMIT {int(limit)}" if limit is not None else "")
    return [r[0] for r in self.db.execute(sql, (key,) if key else ())]


def list_events(self, *, limit: int | None = 50, since: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT id, created_at, level, kind, scope, session_id, alert_key, message, detail FROM events"
    args: list[Any] = []
    if since:
        sql += " WHERE created_at >= ?"
        args.append(since)
    sql += " ORDER BY id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return dict_rows(self.db.execute(sql, args))[::-1]


def list_degradations(self, *, since: str | None = None, until: str | None = None,
                      kind: str | None = None) -> list[dict[str, Any]]:
    clauses, args = [], []
    for clause, value in (("created_at >= ?", since), ("created_at < ?", until), ("kind = ?", kind)):
        if value:
            clauses.append(clause)
            args.append(value)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    return dict_rows(self.db.execute(
        f"SELECT id, session_id, kind, tool, detail, from_model, to_model, created_at FROM degradations{where} "
        "ORDER BY id", args))


def degradation_counts(self, start: str, end: str) -> dict[str, int]:
    rows = self.db.execute("SELECT kind, COUNT(*) FROM degradations WHERE created_at >= ? AND created_at < ? "
                           "GROUP BY kind ORDER BY kind", (start, end))
    return dict(rows.fetchall())


def downgrades(self, until: str) -> list[tuple[str, str, str, str]]:
    return self.db.execute(
        "SELECT session_id, created_at, from_model, to_model FROM degradations WHERE from_model IS NOT NULL "
        "AND to_model IS NOT NULL AND from_model != to_model AND session_id IS NOT NULL AND created_at < ? "
        "ORDER BY created_at, rowid", (until,),
    ).fetchall()
