"""Alerts: claimed once per (scope, threshold, period) in the ledger database, then delivered through channels.

A hook only claims (and enqueues); delivery happens elsewhere, so a slow webhook never slows a hook.
"""

from __future__ import annotations

import sqlite3

from .models import Alert

# Claims whose deliveries are not (or, after a re-arm, no longer) in the outbox.
NOT_ENQUEUED = "(enqueued_at IS NULL OR enqueued_at != created_at)"


def backlog(db: sqlite3.Connection) -> tuple[bool, bool]:
    """(a claim waits to be enqueued, a delivery is pending): whether a hook has anything to kick."""
    to_enqueue, pending = db.execute(
        f"SELECT EXISTS (SELECT 1 FROM alerts WHERE {NOT_ENQUEUED}), "
        "EXISTS (SELECT 1 FROM deliveries WHERE state = 'pending')"
    ).fetchone()
    return bool(to_enqueue), bool(pending)


def claim(db: sqlite3.Connection, alert: Alert) -> bool:
    """Record the alert unless this (scope, threshold, period) already fired; True when this call claimed it.

    Call it inside the ledger's write transaction: the primary key then makes concurrent hooks agree on one winner.
    A claim made under another limit is taken over (and its acknowledgement dropped): changing a budget re-arms its
    alerts, as LiteLLM's budget_alert_claim does, instead of silencing them for the rest of the period.
    """
    cursor = db.execute(
        "INSERT INTO alerts (key, scope, level, threshold, period, used, limit_tokens, workflow, "
        "recommendation, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(key) DO UPDATE SET level = excluded.level, used = excluded.used, "
        "limit_tokens = excluded.limit_tokens, recommendation = excluded.recommendation, "
        "created_at = excluded.created_at, acked_at = NULL WHERE alerts.limit_tokens != excluded.limit_tokens",
        (alert.key, alert.scope, alert.level, alert.threshold, alert.period, alert.used, alert.limit, alert.workflow,
         alert.recommendation, alert.created_at),
    )
    return cursor.rowcount == 1


def acknowledge(db: sqlite3.Connection, key: str | None, now: str) -> int:
    """Acknowledge one alert by key, or every unacknowledged one; returns how many."""
    if key:
        return db.execute("UPDATE alerts SET acked_at = ? WHERE key = ? AND acked_at IS NULL", (now, key)).rowcount
    return db.execute("UPDATE alerts SET acked_at = ? WHERE acked_at IS NULL", (now,)).rowcount
