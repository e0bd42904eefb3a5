"""Alerts: claimed once per (scope, threshold, period) in the ledger database, then delivered through channels.

A hook only claims (and enqueues); delivery happens elsewhere, so a slow webhook never slows a hook.
"""

from __future__ import annotations

import sqlite3

from .models import Alert


def claim(db: sqlite3.Connection, alert: Alert) -> bool:
    """Record the alert unless this (scope, threshold, period) already fired; True when this call claimed it.

    Call it inside the ledger's write transaction: the primary key then makes concurrent hooks agree on one winner.
    """
    cursor = db.execute(
        "INSERT OR IGNORE INTO alerts (key, scope, level, threshold, period, used, limit_tokens, workflow, "
        "recommendation, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (alert.key, alert.scope, alert.level, alert.threshold, alert.period, alert.used, alert.limit, alert.workflow,
         alert.recommendation, alert.created_at),
    )
    return cursor.rowcount == 1


def acknowledge(db: sqlite3.Connection, key: str | None, now: str) -> int:
    """Acknowledge one alert by key, or every unacknowledged one; returns how many."""
    if key:
        return db.execute("UPDATE alerts SET acked_at = ? WHERE key = ? AND acked_at IS NULL", (now, key)).rowcount
    return db.execute("UPDATE alerts SET acked_at = ? WHERE acked_at IS NULL", (now,)).rowcount
