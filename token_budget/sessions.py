"""Which session a command means when the user names none: the one given, else the one the caller is running in,
else the session of the latest recorded request."""

from __future__ import annotations

import sqlite3


def resolve_session(db: sqlite3.Connection, *candidates: tuple[str | None, str]) -> tuple[str, str] | None:
    """(session id, where it came from): the first candidate (id, source) with an id, else the latest recorded
    request's session; None when there is none."""
    for session, source in candidates:
        if session:
            return session, source
    row = db.execute("SELECT session_id FROM requests WHERE session_id IS NOT NULL "
                     "ORDER BY timestamp DESC LIMIT 1").fetchone()
    return (row[0], "the latest recorded request") if row else None
