"""The ledger schema: built only by appending migrations, and upgradable from every earlier version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from token_budget.ledger import Ledger
from token_budget.migrations import MIGRATIONS, applied, migrate, pending


def schema(db: sqlite3.Connection) -> dict[str, list[str]]:
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {t: [c[1] for c in db.execute(f"PRAGMA table_info({t})")] for t in tables}


def test_a_blank_database_gets_every_migration_in_order(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    assert migrate(db) == [fn.__name__ for fn in MIGRATIONS]
    assert applied(db) == [fn.__name__ for fn in MIGRATIONS]
    assert pending(db) == []
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert migrate(db) == []


def test_migration_names_are_numbered_and_unique() -> None:
    names = [fn.__name__ for fn in MIGRATIONS]
    assert len(set(names)) == len(names)
    assert all(name.startswith("m") and name[1:4].isdigit() for name in names)
    assert [int(name[1:4]) for name in names] == list(range(1, len(names) + 1))  # applied in the order numbered


def test_the_requests_table_has_a_column_for_everything_the_issue_lists(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        columns = set(schema(ledger.db)["requests"])
    assert {"message_id", "request_id", "timestamp", "session_id", "project", "cwd", "git_branch", "agent_id",
            "agent_type", "workflow", "phase", "model", "input_tokens", "output_tokens",
            "cache_creation_5m_tokens", "cache_creation_1h_tokens", "cache_read_tokens", "speed", "cost_micros",
            "source"} <= columns


@pytest.mark.parametrize("released", range(1, len(MIGRATIONS)))
def test_every_earlier_schema_upgrades_to_the_same_schema_keeping_its_rows(tmp_path: Path, released: int) -> None:
    fresh = sqlite3.connect(tmp_path / "fresh.db", isolation_level=None)
    migrate(fresh)
    old = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    old.execute("CREATE TABLE _token_budget_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for fn in MIGRATIONS[:released]:
        fn(old)
        old.execute("INSERT INTO _token_budget_migrations VALUES (?, '2026-01-01')", (fn.__name__,))
    old.execute(f"PRAGMA user_version = {released}")
    old.execute("INSERT INTO requests (message_id, timestamp, model, source, recorded_at) "
                "VALUES ('msg_old', '2026-01-01T00:00:00.000Z', 'claude-sonnet-4-5', 'hook', 'x')")
    assert migrate(old) == [fn.__name__ for fn in MIGRATIONS[released:]]
    assert schema(old) == schema(fresh)
    assert old.execute("SELECT message_id FROM requests").fetchall() == [("msg_old",)]


def test_parallel_openers_migrate_once(tmp_path: Path) -> None:
    first, second = Ledger.open(tmp_path), Ledger.open(tmp_path)
    assert applied(first.db) == applied(second.db) == [fn.__name__ for fn in MIGRATIONS]
    first.close()
    second.close()
