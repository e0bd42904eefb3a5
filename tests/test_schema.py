"""The ledger's full schema after every migration, against a reviewed file (tests/fixtures/schema.sql), in the
style of simonw/llm's schema test: editing a shipped migration, or adding one, changes this file, so the change
is seen in review. To accept a new migration: TOKEN_BUDGET_UPDATE_SCHEMA=1 pytest tests/test_schema.py."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from token_budget.ledger import Ledger
from token_budget.migrations import MIGRATIONS

GOLDEN = Path(__file__).parent / "fixtures" / "schema.sql"


def schema(db: sqlite3.Connection) -> str:
    rows = db.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE "
                      "'sqlite_%' ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, name")
    return "".join(f"-- {kind} {name}\n{sql.strip()};\n\n" for kind, name, sql in rows)


def test_the_schema_after_all_migrations_is_the_reviewed_one(data_dir: Path) -> None:
    with Ledger.open(data_dir) as ledger:
        text = f"-- {len(MIGRATIONS)} migrations: {', '.join(m.__name__ for m in MIGRATIONS)}\n\n"
        text += schema(ledger.db)
    if os.environ.get("TOKEN_BUDGET_UPDATE_SCHEMA") == "1":
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "the schema changed: review it, then TOKEN_BUDGET_UPDATE_SCHEMA=1"
