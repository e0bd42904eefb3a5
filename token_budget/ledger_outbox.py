"""The outbox's queue and its sender's bookkeeping in the ledger: the SQLite backend of storage.OutboxStore, but for
what every deciding hook asks (`outbox_backlog`, `alerts_to_enqueue`, in ledger.py). Part of ledger.py's Ledger,
loaded at the first use of one of these methods (ledger._DefinedIn). Each function is a Ledger method; its contract
is in storage.py."""

from __future__ import annotations

from .lean_sqlite import dict_rows

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def enqueue_delivery(self, key: str, channel: str, channel_type: str, spec: str, *, project_dir: str | None,
                     done: bool, now: str, hint_prefix: str | None = None) -> None:
    # A re-armed claim (the limit changed) resets its deliveries: it is a new alert on the same key.
    self.db.execute(
        "INSERT INTO deliveries (alert_key, channel, type, spec, project_dir, state, next_attempt_at, created_at, "
        "delivered_at, hint_prefix) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert_key, channel) DO "
        "UPDATE SET type = excluded.type, spec = excluded.spec, project_dir = excluded.project_dir, "
        "state = excluded.state, attempts = 0, next_attempt_at = excluded.next_attempt_at, last_error = NULL, "
        "created_at = excluded.created_at, delivered_at = excluded.delivered_at, "
        "hint_prefix = excluded.hint_prefix",
        (key, channel, channel_type, spec, project_dir, "delivered" if done else "pending", now, now,
         now if done else None, hint_prefix),
    )


def mark_enqueued(self, key: str) -> None:
    # enqueued_at = created_at marks this claim as enqueued; a re-armed claim gets a new created_at.
    self.db.execute("UPDATE alerts SET enqueued_at = created_at WHERE key = ?", (key,))


def deliveries_of(self, key: str, kind: str) -> list[dict[str, Any]]:
    return [
        {"channel": d[0], "type": d[1], "state": d[2], "attempts": d[3],
         "next_attempt_at": d[4] if d[2] == "pending" else None, "last_error": d[5], "delivered_at": d[6]}
        for d in self.db.execute(
            "SELECT channel, type, state, attempts, next_attempt_at, last_error, delivered_at FROM deliveries "
            "WHERE alert_key = ? AND kind = ? ORDER BY id", (key, kind))
    ]


def store_report(self, key: str, period: str, report: str, yaml: str, now: str) -> None:
    self.db.execute(
        "INSERT INTO report_messages (key, period, report, yaml, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET report = excluded.report, yaml = excluded.yaml",
        (key, period, report, yaml, now),
    )


def enqueue_report_delivery(self, key: str, channel: str, channel_type: str, spec: str, *,
                            project_dir: str | None, now: str) -> int:
    return self.db.execute(
        "INSERT INTO deliveries (alert_key, kind, channel, type, spec, project_dir, state, "
        "next_attempt_at, created_at) VALUES (?, 'report', ?, ?, ?, ?, 'pending', ?, ?) "
        "ON CONFLICT (alert_key, channel) DO NOTHING",
        (key, channel, channel_type, spec, project_dir, now, now),
    ).rowcount


def stored_report(self, key: str) -> tuple[str, str, str, str] | None:
    return self.db.execute("SELECT key, period, report, yaml FROM report_messages WHERE key = ?",  # type: ignore[no-any-return]
                           (key,)).fetchone()


def stored_reports(self, *, limit: int | None = None) -> list[tuple[str, str, str]]:
    sql = "SELECT key, period, created_at FROM report_messages ORDER BY period DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return self.db.execute(sql).fetchall()


def next_due_delivery(self, now: str) -> dict[str, Any] | None:
    rows = dict_rows(self.db.execute(
        "SELECT id, alert_key, channel, type, spec, project_dir, attempts, created_at, kind, hint_prefix "
        "FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1",
        (now,)))
    return rows[0] if rows else None


def next_attempt_at(self) -> str | None:
    return self.db.execute(  # type: ignore[no-any-return]
        "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'").fetchone()[0]


def start_attempt(self, delivery_id: int, now: str) -> int:
    with self.transaction() as db:
        db.execute("UPDATE deliveries SET attempts = attempts + 1 WHERE id = ?", (delivery_id,))
        return int(db.execute("INSERT INTO delivery_attempts (delivery_id, started_at) VALUES (?, ?)",
                              (delivery_id, now)).lastrowid or 0)


def attempt_failed(self, attempt_id: int, delivery_id: int, now: str, error: str, *, give_up: bool,
                   retry_at: str) -> None:
    with self.transaction() as db:
        db.execute("UPDATE delivery_attempts SET finished_at = ?, outcome = 'error', error = ? WHERE id = ?",
                   (now, error, attempt_id))
        db.execute("UPDATE deliveries SET state = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
                   ("failed" if give_up else "pending", error, retry_at, delivery_id))


def attempt_succeeded(self, attempt_id: int, delivery_id: int, now: str) -> None:
    with self.transaction() as db:
        db.execute("UPDATE delivery_attempts SET finished_at = ?, outcome = 'ok' WHERE id = ?", (now, attempt_id))
        db.execute("UPDATE deliveries SET state = 'delivered', delivered_at = ?, last_error = NULL WHERE id = ?",
                   (now, delivery_id))
