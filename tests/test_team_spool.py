"""The team spool's figures (migration m016): every team-mode hook sums the spool from its own rows, so those rows
must follow every write to a spooled request. Each step below changes one input of the sum, and the sum must equal
what the join it replaced finds (the requests as they are now, less what the server has of them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from token_budget.ledger import Ledger
from token_budget.ledger_team import SPOOL_SUMS
from token_budget.migrations import MIGRATIONS
from token_budget.models import UsageEvent

DAY = ("2026-11-12T00:00:00.000Z", "2026-11-13T00:00:00.000Z")
MONTH = ("2026-11-01T00:00:00.000Z", "2026-12-01T00:00:00.000Z")
NOON = "2026-11-12T12:00:00.000Z"


def joined(db: sqlite3.Connection) -> list[tuple[object, ...]]:
    """The sum as it was computed before m016: through the requests and team_pushed, row by row."""
    (d0, d1), (m0, m1) = DAY, MONTH
    cols = ", ".join(f"SUM(sign * {c})" for c in SPOOL_SUMS)
    side = ", ".join(f"x.{c}" for c in SPOOL_SUMS)
    return db.execute(
        "SELECT model, COALESCE(workflow, ''), timestamp >= ? AND timestamp < ?, "
        f"timestamp >= ? AND timestamp < ?, {cols} FROM ("
        f"SELECT x.model, x.workflow, x.timestamp, 1 AS sign, {side} FROM team_unpushed u "
        "JOIN requests x ON x.message_id = u.message_id "
        f"UNION ALL SELECT x.model, x.workflow, x.timestamp, -1, {side} FROM team_unpushed u "
        "JOIN team_pushed x ON x.message_id = u.message_id"
        ") WHERE timestamp >= ? AND timestamp < ? GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
        (d0, d1, m0, m1, m0, m1)).fetchall()


def request(message_id: str, timestamp: str = "2026-11-12T09:00:00.000Z", *, model: str = "claude-sonnet-4-5",
            output_tokens: int = 10, **extra: object) -> UsageEvent:
    return UsageEvent(message_id, timestamp, model, input_tokens=100, output_tokens=output_tokens,
                      cache_read_tokens=3, session_id="s1", **extra)  # type: ignore[arg-type]


def test_the_spool_sum_follows_every_write_to_a_spooled_request(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "data") as ledger:
        def check() -> list[tuple[object, ...]]:
            got = ledger.unpushed_usage(DAY, MONTH)
            assert got == joined(ledger.db)
            return got

        with ledger.transaction():  # before the link: nothing spooled
            ledger.record([request("m0", "2026-11-02T09:00:00.000Z")], source="hook")
        assert check() == []
        ledger.link_team("core", "db:5432/team", "alice@example.com", MONTH[0], NOON)  # spools the month's rows
        assert check() == [("claude-sonnet-4-5", "", 0, 1, 100, 10, 0, 0, 3, 0)]
        with ledger.transaction():  # new requests, one of them another model on another day
            ledger.record([request("m1"), request("m2", "2026-11-03T10:00:00.000Z", model="claude-opus-4-5")],
                          source="hook")
        check()
        with ledger.transaction():  # a request that grows while spooled
            ledger.record([request("m1", output_tokens=50)], source="hook")
        assert check()[-1] == ("claude-sonnet-4-5", "", 1, 1, 100, 50, 0, 0, 3, 0)
        ledger.set_cost("m1", 7_000, "priced")  # a price import: cost only
        assert check()[-1][-1] == 7_000
        pushed = ledger.unpushed_rows("", 100)
        with ledger.transaction():  # grows while the push is on its way: stays spooled, less what was pushed
            ledger.record([request("m1", output_tokens=80)], source="hook")
        ledger.mark_pushed(pushed, NOON)
        assert check() == [("claude-sonnet-4-5", "", 1, 1, 0, 30, 0, 0, 0, -7_000)]  # its cost now: none
        ledger.mark_pushed(ledger.unpushed_rows("", 100), NOON)
        assert check() == []
        with ledger.transaction():  # a pushed request grows again: spooled again, its pushed version known
            ledger.record([request("m2", "2026-11-03T10:00:00.000Z", model="claude-opus-4-5", output_tokens=15)],
                          source="hook")
        assert check() == [("claude-opus-4-5", "", 0, 1, 0, 5, 0, 0, 0, 0)]
        with ledger.transaction():  # reconciled rows are replaced by deleting them: a deleted one counts nothing
            ledger.record([request("r1")], source="reconciled")
        check()
        ledger.drop_reconciled("s1", "claude-sonnet-4-5")
        assert not ledger.has_request("r1")
        check()
        ledger.link_team("core", "db:5432/team", "alice@laptop", DAY[0], NOON)  # linked again: from `since` on
        assert check() == [("claude-sonnet-4-5", "", 1, 1, 100, 80, 0, 0, 3, 0)]


def test_the_migration_gives_a_spool_spooled_before_it_its_figures(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    index = next(i for i, fn in enumerate(MIGRATIONS) if fn.__name__ == "m016_team_spool_figures")
    db.execute("CREATE TABLE _token_budget_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for fn in MIGRATIONS[:index]:
        fn(db)
        db.execute("INSERT INTO _token_budget_migrations VALUES (?, '2026-01-01')", (fn.__name__,))
    db.execute(f"PRAGMA user_version = {index}")
    # spooled under the old schema (its triggers mark the message ids): two requests, one of them pushed and grown
    db.execute("INSERT INTO team_link VALUES (1, 'core', 'db:5432/team', 'alice@example.com', ?, ?)", (MONTH[0], NOON))
    for message_id, model, output in (("m1", "claude-sonnet-4-5", 40), ("m2", "claude-opus-4-5", 5)):
        db.execute("INSERT INTO requests (message_id, timestamp, model, input_tokens, output_tokens, cost_micros, "
                   "source, recorded_at) VALUES (?, '2026-11-12T09:00:00.000Z', ?, 100, ?, 9, 'hook', 'x')",
                   (message_id, model, output))
    db.execute("INSERT INTO team_pushed (message_id, timestamp, model, input_tokens, output_tokens, cost_micros, "
               "pushed_at) VALUES ('m1', '2026-11-12T09:00:00.000Z', 'claude-sonnet-4-5', 100, 10, 9, ?)", (NOON,))
    db.close()
    (tmp_path / "data").mkdir(mode=0o700)
    (tmp_path / "old.db").rename(tmp_path / "data" / "ledger.db")
    with Ledger.open(tmp_path / "data") as ledger:  # applies m016, and m017 keeps a linked ledger's triggers
        assert ledger.unpushed_usage(DAY, MONTH) == joined(ledger.db) == [
            ("claude-opus-4-5", "", 1, 1, 100, 5, 0, 0, 0, 9), ("claude-sonnet-4-5", "", 1, 1, 0, 30, 0, 0, 0, 0)]
        assert spool_triggers(ledger.db) == SPOOL_TRIGGERS
        with ledger.transaction():
            ledger.record([request("m3", model="claude-opus-4-5")], source="hook")
        assert ledger.unpushed_usage(DAY, MONTH) == joined(ledger.db)  # m3 spooled with the two before it
        assert ledger.unpushed_usage(DAY, MONTH)[0] == ("claude-opus-4-5", "", 1, 1, 200, 15, 0, 0, 3, 9)


SPOOL_TRIGGERS = {"requests_team_insert", "requests_team_update", "requests_team_delete"}


def spool_triggers(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%team%'")}


def test_only_a_ledger_linked_to_a_team_has_the_spool_triggers(tmp_path: Path) -> None:
    """m017: every hook's connection parses the schema's triggers and every write of a request compiles them, so a
    ledger no team is linked to has none; the link creates them, and from then on every write is spooled."""
    with Ledger.open(tmp_path / "data") as ledger:
        assert spool_triggers(ledger.db) == set()
        with ledger.transaction():
            ledger.record([request("m0")], source="hook")
        ledger.link_team("core", "db:5432/team", "alice@example.com", MONTH[0], NOON)
        assert spool_triggers(ledger.db) == SPOOL_TRIGGERS
        with ledger.transaction():
            ledger.record([request("m1")], source="hook")
        assert [row["message_id"] for row in ledger.unpushed_rows("", 10)] == ["m0", "m1"]
        assert ledger.unpushed_usage(DAY, MONTH) == joined(ledger.db)
