"""The hourly_totals rollup (migration m007) stays equal to the requests it summarises, and budget sums read from
it equal plain SUMs over the requests in every time zone, :30 and :45 offsets and DST days included."""

from __future__ import annotations

import random
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from token_budget.ledger import Ledger, counted_sql
from token_budget.migrations import MIGRATIONS
from token_budget.models import UsageEvent
from token_budget.periods import day_bounds, iso, month_bounds, zone

MODELS = ("claude-opus-4-6", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001")
COLS = ("input_tokens", "output_tokens", "cache_creation_5m_tokens", "cache_creation_1h_tokens",
        "cache_read_tokens", "cost_micros")


def event(rng: random.Random, n: int, *, when: datetime, sidechain: bool = False, scale: int = 1) -> UsageEvent:
    return UsageEvent(message_id=f"msg_{n}", timestamp=iso(when), model=rng.choice(MODELS),
                      input_tokens=rng.randint(0, 900) * scale, output_tokens=rng.randint(0, 500) * scale,
                      cache_creation_5m_tokens=rng.randint(0, 50), cache_read_tokens=rng.randint(0, 9000),
                      session_id="s", is_sidechain=sidechain)


def rollup_matches(db: sqlite3.Connection) -> None:
    sums = ", ".join(f"SUM({c})" for c in COLS)
    live = db.execute(f"SELECT substr(timestamp, 1, 13), model, COUNT(*), {sums} FROM requests GROUP BY 1, 2"
                      ).fetchall()
    rolled = db.execute(f"SELECT hour, model, requests, {', '.join(COLS)} FROM hourly_totals WHERE requests != 0"
                        ).fetchall()
    assert sorted(rolled) == sorted(live)
    nonzero = " OR ".join(f"{c} != 0" for c in COLS)
    assert db.execute(f"SELECT COUNT(*) FROM hourly_totals WHERE requests = 0 AND ({nonzero})").fetchone()[0] == 0


def test_inserts_upserts_that_grow_or_move_a_request_and_deletes_keep_the_rollup_exact(tmp_path: Path) -> None:
    rng = random.Random(3)
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    with Ledger.open(tmp_path / "data") as ledger:
        for round_ in range(30):
            batch = []
            for _ in range(40):
                n = rng.randint(0, 300)  # collisions: the upsert keeps the larger line, maybe at another hour
                when = start + timedelta(minutes=rng.randint(0, 60 * 24 * 40))
                batch.append(event(rng, n, when=when, sidechain=rng.random() < 0.2, scale=rng.choice((1, 3))))
            with ledger.transaction():
                ledger.record(batch, source="hook")
            if round_ % 7 == 6:
                with ledger.transaction() as db:
                    db.execute("DELETE FROM requests WHERE message_id IN (SELECT message_id FROM requests "
                               "ORDER BY random() LIMIT 5)")
                    db.execute("UPDATE requests SET cost_micros = cost_micros + 7 WHERE rowid % 5 = 0")
            rollup_matches(ledger.db)


def plain(db: sqlite3.Connection, counted: str, start: str, end: str) -> list[tuple[str, int, int]]:
    return db.execute(f"SELECT model, COALESCE(SUM({counted}), 0), COALESCE(SUM(cost_micros), 0) FROM requests "
                      "WHERE timestamp >= ? AND timestamp < ? GROUP BY model", (start, end)).fetchall()


@pytest.mark.parametrize("tz_name", ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns",
                                     "Europe/Paris", "Pacific/Chatham", "Australia/Lord_Howe"])
def test_period_sums_from_the_rollup_equal_plain_sums_in_any_time_zone(tmp_path: Path, tz_name: str) -> None:
    rng = random.Random(tz_name)
    tz = zone(tz_name)
    base = datetime(2026, 3, 20, tzinfo=timezone.utc)  # DST changes in March/April in both hemispheres
    with Ledger.open(tmp_path / "data") as ledger:
        events = [event(rng, n, when=base + timedelta(seconds=rng.randint(0, 86400 * 25))) for n in range(3000)]
        with ledger.transaction():
            ledger.record(events, source="import")
        for classes in (("input", "output", "cache_creation"), ("cache_read",), ("input",)):
            counted = counted_sql(classes)
            periods = [day_bounds(date(2026, 3, d), tz) for d in range(19, 31)]
            periods += [day_bounds(date(2026, 4, d), tz) for d in range(1, 16)]
            periods += [month_bounds(2026, 3, tz), month_bounds(2026, 4, tz)]
            periods += [(iso(base + timedelta(minutes=17)), iso(base + timedelta(minutes=43))),  # inside one hour
                        (iso(base + timedelta(minutes=17)), iso(base + timedelta(hours=5, minutes=1)))]
            for start, end in periods:
                assert sorted(ledger.totals_by_model(classes, start, end)) == sorted(
                    plain(ledger.db, counted, start, end)), (start, end)


def test_the_migration_rolls_up_rows_recorded_before_it(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    index = next(i for i, fn in enumerate(MIGRATIONS) if fn.__name__ == "m007_hourly_totals")
    db.execute("CREATE TABLE _token_budget_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for fn in MIGRATIONS[:index]:
        fn(db)
        db.execute("INSERT INTO _token_budget_migrations VALUES (?, '2026-01-01')", (fn.__name__,))
    db.execute(f"PRAGMA user_version = {index}")
    rng = random.Random(5)
    for n in range(500):
        e = event(rng, n, when=datetime(2026, 5, 1, tzinfo=timezone.utc) + timedelta(minutes=37 * n))
        db.execute("INSERT INTO requests (message_id, timestamp, model, input_tokens, output_tokens, "
                   "cache_creation_5m_tokens, cache_read_tokens, cost_micros, source, recorded_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'import', 'x')",
                   (e.message_id, e.timestamp, e.model, e.input_tokens, e.output_tokens,
                    e.cache_creation_5m_tokens, e.cache_read_tokens, n))
    db.close()
    (tmp_path / "data").mkdir(mode=0o700)
    (tmp_path / "old.db").rename(tmp_path / "data" / "ledger.db")
    with Ledger.open(tmp_path / "data") as ledger:  # applies m007 (and anything after it)
        rollup_matches(ledger.db)
