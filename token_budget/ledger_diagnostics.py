"""What `tokens doctor` asks the ledger: the SQLite backend of storage.Diagnostics and of
ReadPositions.malformed_lines. Part of ledger.py's Ledger, loaded at the first use of one of these methods
(ledger._DefinedIn). Each function is a Ledger method; its contract is in storage.py."""

from __future__ import annotations


def malformed_lines(self) -> int:
    return self.db.execute("SELECT COALESCE(SUM(malformed_lines), 0) FROM transcript_offsets").fetchone()[0]


def quick_check(self) -> str:
    return self.db.execute("PRAGMA quick_check").fetchone()[0]


def pending_migrations(self) -> list[str]:
    from .migrations import pending

    return pending(self.db)


def cost_statuses(self) -> dict[str, tuple[int, int]]:
    rows = self.db.execute("SELECT cost_status, COUNT(*), COALESCE(SUM(cost_micros), 0) FROM requests "
                           "GROUP BY cost_status").fetchall()
    return {status: (n, micros) for status, n, micros in rows}


def unpriced_models(self) -> list[str]:
    return [r[0] for r in self.db.execute(
        "SELECT DISTINCT model FROM requests WHERE cost_status != 'priced' ORDER BY model")]


def failed_deliveries(self) -> int:
    return self.db.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'failed'").fetchone()[0]
