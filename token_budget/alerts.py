"""Alerts: claimed once per (scope, threshold, period) in the ledger database, then delivered through channels.

A hook only claims (and enqueues); delivery happens elsewhere, so a slow webhook never slows a hook.
"""

from __future__ import annotations

import sqlite3

from .models import Alert

# Claims whose deliveries are not (or, after a re-arm, no longer) in the outbox. A team alert's deliveries are
# enqueued by the team sync, and only on the one machine the team server gives its claim to (team/sync.py).
NOT_ENQUEUED = "(enqueued_at IS NULL OR enqueued_at != created_at) AND scope NOT LIKE 'team:%'"


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


def acknowledge_alerts(db: sqlite3.Connection, key: str | None, now: str) -> int:
    """`tokens ack [KEY]`: acknowledge one open alert, or every one, each recorded as a control event (who acked
    what). An unknown key is an error that lists the open ones. Returns how many were acknowledged."""
    from .controls import actor, record_change, shown_already
    from .errors import TokenBudgetError
    from .hints import Hints

    if key:
        key = key.replace("|", "/")  # ids from before 0.2 were written with `|`
    if key and not db.execute("SELECT 1 FROM alerts WHERE key = ?", (key,)).fetchone():
        recent = [r[0] for r in db.execute("SELECT key FROM alerts WHERE acked_at IS NULL ORDER BY created_at DESC "
                                           "LIMIT 5")]
        raise TokenBudgetError(f"No alert {key!r}.",
                               "Alert ids look like daily/100/2026-11-28; open ones: " + (", ".join(recent) or "none")
                               + f". Run `{Hints.current().ack()}` to acknowledge every open alert.")
    keys = [r[0] for r in db.execute("SELECT key FROM alerts WHERE acked_at IS NULL" + (" AND key = ?" if key else ""),
                                     (key,) if key else ())]
    count = acknowledge(db, key, now)
    for acked in keys:
        scope, threshold, _ = acked.rsplit("/", 2)
        record_change(db, kind="ack", subject=f"the {threshold}% alert of the {scope} budget ({acked})", old=None,
                      new=acked, who=actor(), created_at=now, shown=shown_already(), scope=scope)
    return count
