"""The events log (threshold crossings, blocks, the 70% warnings) and the degradations record, both in the ledger
database. Append-only; `tokens events` reads the first, reports read the second. Standard library only.
"""

from __future__ import annotations

import sqlite3

from .models import Degradation

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from typing import Any


def record_event(db: sqlite3.Connection, *, level: str, kind: str, message: str, created_at: str,
                 scope: str | None = None, session_id: str | None = None, alert_key: str | None = None,
                 detail: str | None = None, shown_at: str | None = None) -> None:
    """Append an event. Only control events (limit, mode, ack: controls.py) leave shown_at empty, so that the next
    hook shows them to the user; the rest are shown (or not) when they happen."""
    db.execute(
        "INSERT INTO events (created_at, level, kind, scope, session_id, alert_key, message, detail, shown_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (created_at, level, kind, scope, session_id, alert_key, message, detail,
         shown_at if shown_at is not None or kind in ("limit_change", "mode_change", "ack") else created_at),
    )


def record_degradation(db: sqlite3.Connection, step: Degradation, created_at: str) -> None:
    db.execute(
        "INSERT INTO degradations (session_id, kind, tool, detail, from_model, to_model, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (step.session_id, step.kind, step.tool, step.detail, step.from_model, step.to_model, created_at),
    )


def has_degradation(db: sqlite3.Connection, session_id: str | None, kind: str, since: str | None = None) -> bool:
    sql = "SELECT 1 FROM degradations WHERE session_id IS ? AND kind = ?"
    args: list[Any] = [session_id, kind]
    if since:
        sql += " AND created_at >= ?"
        args.append(since)
    return db.execute(sql + " LIMIT 1", args).fetchone() is not None


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def list_events(db: sqlite3.Connection, *, limit: int | None = 50, since: str | None = None) -> list[dict[str, Any]]:
    """Events, oldest first (the newest `limit`)."""
    sql = "SELECT id, created_at, level, kind, scope, session_id, alert_key, message, detail FROM events"
    args: list[Any] = []
    if since:
        sql += " WHERE created_at >= ?"
        args.append(since)
    sql += " ORDER BY id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return _dicts(db.execute(sql, args))[::-1]


def list_degradations(db: sqlite3.Connection, *, since: str | None = None, until: str | None = None,
                      kind: str | None = None) -> list[dict[str, Any]]:
    clauses, args = [], []
    for clause, value in (("created_at >= ?", since), ("created_at < ?", until), ("kind = ?", kind)):
        if value:
            clauses.append(clause)
            args.append(value)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    return _dicts(db.execute(
        f"SELECT id, session_id, kind, tool, detail, from_model, to_model, created_at FROM degradations{where} "
        "ORDER BY id", args))
