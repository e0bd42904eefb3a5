"""Workflow runs: a named stretch of a session (a trigger command the adapter recognises, `tokens workflow start`, or
$TOKEN_BUDGET_WORKFLOW) that every request in it is attributed to, with its current phase.

A run ends with `tokens workflow end`, another run's start in the same session, or the session's end. The ledger
attributes each request to the run open at its timestamp (Ledger._row); the phase a request records is the run's
phase when the request was recorded, which the hooks do at every event. Standard library only (the hook uses it).
"""

from __future__ import annotations

import sqlite3

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from typing import Any

    from .config import Config

PRIORITIES = ("critical", "normal", "low")


def active_runs(db: sqlite3.Connection, session_id: str | None = None) -> list[dict[str, Any]]:
    """Open runs: the session's (at most one), or every open run when no session is given (newest first)."""
    sql = "SELECT id, session_id, name, phase, started_at, source FROM workflow_runs WHERE ended_at IS NULL"
    args: tuple[Any, ...] = ()
    if session_id is not None:
        sql += " AND session_id = ?"
        args = (session_id,)
    cursor = db.execute(sql + " ORDER BY started_at DESC, id DESC", args)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def start_run(db: sqlite3.Connection, session_id: str, name: str, now: str, *, phase: str | None = None,
              source: str = "cli") -> int:
    """End the session's open run (if any) and open a new one; call inside a write transaction."""
    end_runs(db, session_id, now)
    cursor = db.execute(
        "INSERT INTO workflow_runs (session_id, name, phase, started_at, source) VALUES (?, ?, ?, ?, ?)",
        (session_id, name, phase, now, source),
    )
    return int(cursor.lastrowid or 0)


def set_phase(db: sqlite3.Connection, session_id: str, phase: str) -> dict[str, Any] | None:
    runs = active_runs(db, session_id)
    if not runs:
        return None
    db.execute("UPDATE workflow_runs SET phase = ? WHERE id = ?", (phase, runs[0]["id"]))
    return {**runs[0], "phase": phase}


def end_runs(db: sqlite3.Connection, session_id: str, now: str) -> int:
    return db.execute(
        "UPDATE workflow_runs SET ended_at = ? WHERE session_id = ? AND ended_at IS NULL", (now, session_id)
    ).rowcount


def has_runs(db: sqlite3.Connection, session_id: str) -> bool:
    return db.execute("SELECT 1 FROM workflow_runs WHERE session_id = ? LIMIT 1", (session_id,)).fetchone() is not None


def priority(config: Config, name: str) -> str:
    value = config.get("workflows", name, "priority", default="normal")
    return value if value in PRIORITIES else "normal"


def workflow_for_command(config: Config, command: str) -> str | None:
    """The configured workflow that `command` (a name in its `commands`, or its own name) triggers, if any."""
    for name, spec in (config.get("workflows", default={}) or {}).items():
        commands = (spec or {}).get("commands") or [name]
        if command in commands or command == name:
            return name
    return None
