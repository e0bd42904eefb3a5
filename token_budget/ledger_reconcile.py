"""Reconciliation's queries: the SQLite backend of storage.ReconcileStore, but for `latest_client_totals`, the lookup
every ingest runs (in ledger.py). Part of ledger.py's Ledger, loaded when a session has client figures to compare
(ledger._DefinedIn). Each function is a Ledger method; its contract is in storage.py."""

from __future__ import annotations

from .reconcile import SOURCE as RECONCILED  # the source of the rows reconciliation adds

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

_CLASS_SUMS = ", ".join(f"SUM({c})" for c in ("input_tokens", "output_tokens", "cache_creation_5m_tokens",
                                               "cache_creation_1h_tokens", "cache_read_tokens"))


def add_client_totals(self, session_id: str, fingerprint: str, taken_at: str, total_cost_micros: int,
                      model_usage: str, unknown_model_cost: bool, path: str | None, now: str) -> bool:
    return self.db.execute(
        "INSERT OR IGNORE INTO client_totals (session_id, fingerprint, taken_at, total_cost_micros, model_usage, "
        "unknown_model_cost, path, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (session_id, fingerprint, taken_at, total_cost_micros, model_usage, int(unknown_model_cost), path, now),
    ).rowcount > 0


def sessions_to_reconcile(self, sessions: Sequence[str]) -> set[str]:
    related: set[str] = set()
    unique = sorted(set(sessions))
    for start in range(0, len(unique), 400):
        chunk = unique[start : start + 400]
        marks = ",".join("?" * len(chunk))
        related.update(r[0] for r in self.db.execute(
            f"SELECT DISTINCT session_id FROM client_totals WHERE session_id IN ({marks})", chunk))
        related.update(r[0] for r in self.db.execute(
            f"SELECT DISTINCT session_id FROM shared_requests WHERE owner_session IN ({marks}) "
            f"UNION SELECT DISTINCT owner_session FROM shared_requests WHERE session_id IN ({marks})",
            chunk + chunk))
    return related


def client_snapshots(self, session_id: str) -> list[tuple[str, int, str, int]]:
    return self.db.execute(
        "SELECT taken_at, total_cost_micros, model_usage, unknown_model_cost FROM client_totals "
        "WHERE session_id = ? ORDER BY taken_at, total_cost_micros", (session_id,)).fetchall()


def shared_with(self, session_id: str) -> list[tuple[str, str]]:
    return self.db.execute(
        "SELECT s.owner_session, MAX(r.timestamp) FROM shared_requests s JOIN requests r ON r.message_id = "
        "s.message_id WHERE s.session_id = ? AND s.owner_session IS NOT NULL GROUP BY s.owner_session "
        "UNION ALL SELECT s.session_id, MAX(r.timestamp) FROM shared_requests s JOIN requests r "
        "ON r.message_id = s.message_id WHERE s.owner_session = ? GROUP BY s.session_id",
        (session_id, session_id),
    ).fetchall()


def return_copies(self, fork: str, parent: str, cut: str) -> None:
    taken = [r[0] for r in self.db.execute(
        "SELECT r.message_id FROM shared_requests s JOIN requests r ON r.message_id = s.message_id "
        "WHERE s.owner_session = ? AND s.session_id = ? AND r.timestamp <= ? AND r.source != ?",
        (fork, parent, cut, RECONCILED))]
    for message_id in taken:
        self.db.execute("UPDATE requests SET session_id = ? WHERE message_id = ?", (parent, message_id))
        self.db.execute("DELETE FROM shared_requests WHERE message_id = ? AND session_id = ?", (message_id, parent))
        self.db.execute("UPDATE shared_requests SET owner_session = ? WHERE message_id = ?", (parent, message_id))
        self.db.execute("INSERT OR IGNORE INTO shared_requests (message_id, session_id, owner_session) "
                        "VALUES (?, ?, ?)", (message_id, fork, parent))


def session_figures(self, session_id: str, cut: str | None, upto: str) -> dict[str, list[int]]:
    copied = ("AND NOT (timestamp <= :cut AND (session_id IS NOT :s OR message_id IN "
              "(SELECT message_id FROM shared_requests)))") if cut else ""
    rows = self.db.execute(
        f"SELECT model, {_CLASS_SUMS}, SUM(cost_micros), COUNT(*) FROM requests WHERE source != '{RECONCILED}' "
        "AND (session_id = :s OR message_id IN (SELECT message_id FROM shared_requests WHERE session_id = :s)) "
        f"AND timestamp <= :upto {copied} GROUP BY model",
        {"s": session_id, "cut": cut, "upto": upto},
    ).fetchall()
    return {r[0]: [v or 0 for v in r[1:]] for r in rows}


def reconciled_figures(self, session_id: str) -> dict[str, list[int]]:
    return {r[0]: list(r[1:]) for r in self.db.execute(
        f"SELECT model, {_CLASS_SUMS}, SUM(cost_micros), COUNT(*) FROM requests WHERE session_id = ? AND "
        "source = ? GROUP BY model", (session_id, RECONCILED))}


def session_place(self, session_id: str) -> tuple[str | None, str | None, str | None]:
    return self.db.execute(  # type: ignore[no-any-return]
        "SELECT project, cwd, git_branch FROM requests WHERE session_id = ? AND source != ? "
        "ORDER BY timestamp DESC LIMIT 1", (session_id, RECONCILED)).fetchone() or (None, None, None)


def drop_reconciled(self, session_id: str, model: str) -> None:
    self.db.execute("DELETE FROM requests WHERE session_id = ? AND model = ? AND source = ?",
                    (session_id, model, RECONCILED))


def has_request(self, message_id: str) -> bool:
    return self.db.execute("SELECT 1 FROM requests WHERE message_id = ?", (message_id,)).fetchone() is not None


def set_cost(self, message_id: str, cost_micros: int, cost_status: str) -> None:
    self.db.execute("UPDATE requests SET cost_micros = ?, cost_status = ? WHERE message_id = ?",
                    (cost_micros, cost_status, message_id))


def record_reconciliation(self, session_id: str, *, checked_at: str, taken_at: str, parent_session: str | None,
                          client_cost_micros: int, ledger_cost_micros: int, requests: int,
                          reconciled_cost_micros: int, reconciled_tokens: str, above: str,
                          unknown_model_cost: int) -> None:
    self.db.execute(
        "INSERT INTO reconciliations (session_id, checked_at, taken_at, parent_session, client_cost_micros, "
        "ledger_cost_micros, requests, reconciled_cost_micros, reconciled_tokens, above, unknown_model_cost) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET "
        "checked_at = excluded.checked_at, taken_at = excluded.taken_at, "
        "parent_session = excluded.parent_session, client_cost_micros = excluded.client_cost_micros, "
        "ledger_cost_micros = excluded.ledger_cost_micros, requests = excluded.requests, "
        "reconciled_cost_micros = excluded.reconciled_cost_micros, "
        "reconciled_tokens = excluded.reconciled_tokens, above = excluded.above, "
        "unknown_model_cost = excluded.unknown_model_cost",
        (session_id, checked_at, taken_at, parent_session, client_cost_micros, ledger_cost_micros, requests,
         reconciled_cost_micros, reconciled_tokens, above, unknown_model_cost),
    )


def reconciliations(self, *, start: str | None = None, end: str | None = None) -> list[tuple[Any, ...]]:
    where, args = "", []
    if start is not None and end is not None:
        where, args = " WHERE taken_at >= ? AND taken_at < ?", [start, end]
    return self.db.execute(
        "SELECT session_id, checked_at, taken_at, parent_session, client_cost_micros, ledger_cost_micros, "
        "requests, reconciled_cost_micros, reconciled_tokens, above, unknown_model_cost "
        f"FROM reconciliations{where} ORDER BY taken_at", args).fetchall()
