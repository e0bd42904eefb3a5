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


def released_schema(path: Path, released: int) -> sqlite3.Connection:
    """A ledger as the release with the first `released` migrations left it."""
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("CREATE TABLE _token_budget_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for fn in MIGRATIONS[:released]:
        fn(old)
        old.execute("INSERT INTO _token_budget_migrations VALUES (?, '2026-01-01')", (fn.__name__,))
    old.execute(f"PRAGMA user_version = {released}")
    return old


@pytest.mark.parametrize("released", range(1, len(MIGRATIONS)))
def test_every_earlier_schema_upgrades_to_the_same_schema_keeping_its_rows(tmp_path: Path, released: int) -> None:
    fresh = sqlite3.connect(tmp_path / "fresh.db", isolation_level=None)
    migrate(fresh)
    old = released_schema(tmp_path / "old.db", released)
    old.execute("INSERT INTO requests (message_id, timestamp, model, source, recorded_at) "
                "VALUES ('msg_old', '2026-01-01T00:00:00.000Z', 'claude-sonnet-4-5', 'hook', 'x')")
    assert migrate(old) == [fn.__name__ for fn in MIGRATIONS[released:]]
    assert schema(old) == schema(fresh)
    assert old.execute("SELECT message_id FROM requests").fetchall() == [("msg_old",)]


def test_the_ledgers_schema_version_is_the_number_of_migrations() -> None:
    """Ledger.open compares a ledger's user_version with SCHEMA_VERSION to skip loading the migrations: add a
    migration, raise SCHEMA_VERSION with it."""
    from token_budget.ledger import SCHEMA_VERSION

    assert SCHEMA_VERSION == len(MIGRATIONS)


@pytest.mark.parametrize("released", [1, len(MIGRATIONS) - 1])
def test_ledger_open_upgrades_an_earlier_ledger_and_bumps_its_version(tmp_path: Path, released: int) -> None:
    released_schema(tmp_path / "ledger.db", released).close()
    (tmp_path / "ledger.db").chmod(0o600)
    with Ledger.open(tmp_path) as ledger:
        assert pending(ledger.db) == []
        assert ledger.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert (tmp_path / "ledger.db.version").exists()  # the idle hooks' records see the schema change


def test_opening_a_current_ledger_does_not_load_the_migrations(tmp_path: Path) -> None:
    """The hot path (every ingesting hook) opens a ledger that is already current: the migrations module (the
    schema's whole history) is not read then."""
    import subprocess
    import sys

    Ledger.open(tmp_path).close()
    code = ("import sys; from token_budget.ledger import Ledger; Ledger.open(sys.argv[1]).close(); "
            "print('token_budget.migrations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_parallel_openers_migrate_once(tmp_path: Path) -> None:
    first, second = Ledger.open(tmp_path), Ledger.open(tmp_path)
    assert applied(first.db) == applied(second.db) == [fn.__name__ for fn in MIGRATIONS]
    first.close()
    second.close()


def test_m012_rewrites_microsecond_timestamps_to_the_one_millisecond_format(tmp_path: Path) -> None:
    """Before m012 the ledger's own clocks wrote `.ffffffZ` and periods `.fffZ`: text of two widths that does not
    sort as time. After it, every timestamp of every table has the one format, and the hourly rollup is unchanged."""
    db = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    db.execute("CREATE TABLE _token_budget_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    before = [fn for fn in MIGRATIONS if fn.__name__ < "m012"]
    for fn in before:
        fn(db)
        db.execute("INSERT INTO _token_budget_migrations VALUES (?, '2026-01-01T00:00:00.123456Z')", (fn.__name__,))
    db.execute(f"PRAGMA user_version = {len(before)}")
    db.execute("INSERT INTO requests (message_id, timestamp, model, source, recorded_at, updated_at, input_tokens) "
               "VALUES ('a', '2026-11-27T10:00:00.500999Z', 'm', 'reconciled', '2026-11-27T10:00:01.999999Z', "
               "NULL, 7), ('b', '2026-11-27T10:00:00.501Z', 'm', 'hook', '2026-11-27T10:00:02.000001Z', "
               "'not a time', 5)")
    db.execute("INSERT INTO alerts (key, scope, level, threshold, period, used, limit_tokens, recommendation, "
               "created_at) VALUES ('k', 'daily', 'warn', 80, '2026-11-27', 8, 10, 'msg .123456Z', "
               "'2026-11-27T10:00:03.000000Z')")
    rollup = db.execute("SELECT * FROM hourly_totals").fetchall()
    # the bug: a moment 999 µs after a millisecond bound sorts before it as text ('9' < 'Z')
    assert "2026-11-27T10:00:00.500999Z" < "2026-11-27T10:00:00.500Z"

    assert "m012_millisecond_timestamps" in migrate(db)

    assert db.execute("SELECT message_id, timestamp, recorded_at, updated_at FROM requests ORDER BY timestamp"
                      ).fetchall() == [("a", "2026-11-27T10:00:00.500Z", "2026-11-27T10:00:01.999Z", None),
                                       ("b", "2026-11-27T10:00:00.501Z", "2026-11-27T10:00:02.000Z", "not a time")]
    assert db.execute("SELECT created_at, recommendation FROM alerts").fetchall() == [
        ("2026-11-27T10:00:03.000Z", "msg .123456Z")]
    assert db.execute("SELECT * FROM hourly_totals").fetchall() == rollup
    stamps = [row[0] for row in db.execute("SELECT applied_at FROM _token_budget_migrations")]
    assert all(len(stamp) == 24 and stamp.endswith("Z") for stamp in stamps)


def test_every_clock_writes_the_one_timestamp_format() -> None:
    from datetime import datetime, timezone

    from token_budget import clock, delivery, periods

    moment = datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=timezone.utc)
    assert clock.timestamp(moment) == periods.iso(moment) == "2026-11-27T10:00:00.123Z"
    for stamp in (delivery._at(60), clock.timestamp()):
        assert len(stamp) == 24 and stamp[19] == "." and stamp.endswith("Z")
        assert periods.normalize(stamp) == stamp
