"""The team server's schema on a real PostgreSQL: migrations, the local ledger's merge rules, the hourly rollup kept
in the writing transaction, and what a member's role may and may not do (row-level security, lead-only budgets)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from team_helpers import TEAM, TeamDb

from token_budget.team import TeamSettings
from token_budget.team.schema import MIGRATIONS, applied, init_team, migrate
from token_budget.team.server import TeamServer, TeamServerError, connection_params

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def row(message_id: str, total: int, *, sidechain: bool = False, minutes: int = 0, model: str = "claude-opus-4-6",
        workflow: str = "") -> dict:
    ts = (NOW - timedelta(minutes=minutes)).isoformat()
    return {"message_id": message_id, "ts": ts, "model": model, "workflow": workflow, "session_id": "s",
            "project": "p", "is_sidechain": sidechain, "input_tokens": total, "output_tokens": 0,
            "cache_creation_5m_tokens": 0, "cache_creation_1h_tokens": 0, "cache_read_tokens": 0,
            "total_tokens": total, "cost_micros": total * 3}


def connect(dsn: str, member: str, monkeypatch: pytest.MonkeyPatch) -> TeamServer:
    monkeypatch.setenv("TOKEN_BUDGET_TEAM_DSN", dsn)
    return TeamServer.connect(TeamSettings(TEAM, "TOKEN_BUDGET_TEAM_DSN", member, "laptop"))


@pytest.fixture
def team(postgres) -> TeamDb:  # type: ignore[no-untyped-def]
    return TeamDb(postgres)


def test_migrations_are_recorded_and_running_init_again_changes_nothing(team: TeamDb) -> None:
    with psycopg.connect(team.admin_dsn, autocommit=True) as conn:
        assert applied(conn) == [name for name, _ in MIGRATIONS]
        assert migrate(conn) == []
        again = init_team(conn, TEAM, lead_member="owner@example.com")
    assert again["created"] is False and again["migrations"] == []


def test_the_server_keeps_the_ledgers_merge_rule(team: TeamDb, monkeypatch: pytest.MonkeyPatch) -> None:
    with connect(team.member("alice@example.com"), "alice@example.com", monkeypatch) as alice:
        assert alice.push([row("m1", 100), row("m2", 50, sidechain=True)]) == 2
        assert alice.push([row("m1", 100), row("m2", 50, sidechain=True)]) == 0  # the same batch again: nothing
        alice.push([row("m1", 80)])  # a smaller (partial, earlier) line never wins
        alice.push([row("m1", 120)])  # the final streaming value does
        alice.push([row("m2", 40)])  # the parent's own line beats the sidechain replay, though smaller
        alice.push([row("m2", 500, sidechain=True)])  # and a replay never takes it back
    assert dict(team.sql("SELECT message_id, total_tokens FROM token_budget.requests")) == {"m1": 120, "m2": 40}
    assert team.totals() == {"requests": 2, "input": 160, "output": 0}
    assert team.rollup_matches_requests()


def test_the_rollup_follows_every_write_and_answers_period_totals(team: TeamDb,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with connect(team.member("alice@example.com"), "alice@example.com", monkeypatch) as alice:
        alice.push([row(f"a{i}", 10 + i, minutes=37 * i, workflow="review" if i % 2 else "") for i in range(40)])
        alice.push([row(f"a{i}", 100 + i, minutes=37 * i, workflow="review" if i % 2 else "") for i in range(0, 40, 3)])
        start, end = (NOW - timedelta(hours=30)).isoformat(), (NOW + timedelta(hours=1)).isoformat()
        period = alice.period_rows(start, end)
    assert team.rollup_matches_requests()
    expected = team.sql("SELECT COUNT(*), SUM(total_tokens) FROM token_budget.requests WHERE ts >= %s AND ts < %s",
                        (start, end))[0]
    assert (sum(r[3] for r in period), sum(r[9] for r in period)) == expected
    assert {r[2] for r in period} == {"", "review"}


def test_period_totals_add_whole_days_hours_and_minutes_exactly(team: TeamDb,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the bounds (a month, a day in a half-hour time zone, less than an hour, across midnight), the
    totals read from the daily and hourly rollups and the edge requests equal the sums of the requests."""
    with connect(team.member("alice@example.com"), "alice@example.com", monkeypatch) as alice:
        alice.push([row(f"d{i}", 10 + i, minutes=53 * i, workflow="review" if i % 3 else "") for i in range(200)])
        alice.push([row(f"d{i}", 1000 + i, minutes=53 * i, workflow="review" if i % 3 else "")
                    for i in range(0, 200, 7)])
        midnight = NOW.replace(hour=0, minute=0, second=0)
        bounds = [(NOW - timedelta(days=8), NOW + timedelta(hours=1)),  # every row: whole days in the middle
                  (midnight - timedelta(days=3, minutes=30), midnight - timedelta(hours=5, minutes=30)),
                  (midnight - timedelta(days=2), midnight),  # exactly two UTC days
                  (midnight - timedelta(hours=1, minutes=20), midnight + timedelta(minutes=10)),  # across midnight
                  (NOW - timedelta(minutes=50), NOW - timedelta(minutes=5)),  # no whole hour
                  (midnight - timedelta(days=4, hours=3), midnight - timedelta(days=1, hours=21))]
        for start, end in bounds:
            period = alice.period_rows(start.isoformat(), end.isoformat())
            expected = team.sql("SELECT COUNT(*), COALESCE(SUM(total_tokens), 0), COALESCE(SUM(cost_micros), 0) "
                                "FROM token_budget.requests WHERE ts >= %s AND ts < %s", (start, end))[0]
            assert (sum(r[3] for r in period), sum(r[9] for r in period), sum(r[10] for r in period)) == expected, \
                (start, end)
    assert team.rollup_matches_requests()


def test_the_daily_rollup_is_filled_from_an_older_schemas_hours(postgres, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A server set up before m002: its requests (and hours) are already there when the daily rollup arrives."""
    from token_budget.team import schema

    dsn = postgres.fresh_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        assert init_team(conn, TEAM, lead_member="owner@example.com")["migrations"] == ["m001_initial"]
        conn.execute("INSERT INTO token_budget.requests (team, message_id, member, machine, ts, model, input_tokens, "
                     "total_tokens) SELECT %s, 'r' || n, 'owner@example.com', 'x', now() - n * interval '37 minutes', "
                     "'claude-opus-4-6', n, n FROM generate_series(1, 300) AS n", (TEAM,))
        monkeypatch.undo()
        assert migrate(conn) == ["m002_daily"]
        (days, total), = conn.execute("SELECT COUNT(DISTINCT day), SUM(total_tokens) FROM token_budget.daily")
        assert days >= 7 and total == 300 * 301 // 2
        conn.execute("UPDATE token_budget.requests SET total_tokens = total_tokens + 1, input_tokens = input_tokens + 1"
                     " WHERE message_id = 'r5'")
        assert conn.execute("SELECT SUM(total_tokens) FROM token_budget.daily").fetchone()[0] == 300 * 301 // 2 + 1



def test_a_member_cannot_change_a_team_budget_or_another_members_rows(team: TeamDb,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    alice_dsn, bob_dsn = team.member("alice@example.com"), team.member("bob@example.com")
    lead_dsn = team.member("lead@example.com", lead=True)
    with connect(alice_dsn, "alice@example.com", monkeypatch) as alice:
        alice.push([row("a1", 100)])
    with connect(bob_dsn, "bob@example.com", monkeypatch) as bob:
        with pytest.raises(TeamServerError, match="lead"):
            bob.set_budget("team:monthly", 10**12, None)
        assert bob.conn.execute("UPDATE token_budget.requests SET total_tokens = 0").rowcount == 0  # not his
        assert bob.conn.execute("SELECT COUNT(*) FROM token_budget.requests").fetchone()[0] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            bob.conn.execute("INSERT INTO token_budget.requests (team, message_id, member, machine, ts, model) "
                             "VALUES (%s, 'forged', 'alice@example.com', 'x', now(), 'm')", (TEAM,))
        for forged in ("DELETE FROM token_budget.requests", "UPDATE token_budget.hourly SET input_tokens = 0",
                       "UPDATE token_budget.daily SET input_tokens = 0",
                       "INSERT INTO token_budget.members VALUES ('acme', 'eve', 'eve')",
                       "UPDATE token_budget.budgets SET limit_tokens = 1"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                bob.conn.execute(forged)
        bob.push([row("a1", 10**9)])  # bob's copy of alice's message id changes nothing of hers
        bob.push([row("b1", 5000)])
        for lowering in ("UPDATE token_budget.requests SET input_tokens = 0, total_tokens = 5001",  # a smaller class
                         "UPDATE token_budget.requests SET ts = ts - interval '40 days', total_tokens = 5001, "
                         "output_tokens = 1",  # out of this month
                         "UPDATE token_budget.requests SET is_sidechain = true"):  # a replay never takes it back
            assert bob.conn.execute(lowering).rowcount == 0
        assert bob.budgets() == []
    carol_role, carol_password = team.role()
    with connect(lead_dsn, "lead@example.com", monkeypatch) as lead:
        lead.set_budget("team:monthly", 50_000_000, 2000.0)
        assert lead.budgets() == [{"scope": "team:monthly", "tokens": 50_000_000, "usd": 2000.0}]
        lead.add_member("carol@example.com", carol_role)  # a lead that is no superuser adds members
    with connect(bob_dsn, "bob@example.com", monkeypatch) as bob, pytest.raises(TeamServerError, match="lead"):
        bob.add_member("eve@example.com", carol_role)
    carol_dsn = team.server.dsn(team.dbname, carol_role, carol_password)
    with connect(carol_dsn, "carol@example.com", monkeypatch) as carol:
        assert carol.push([row("c1", 7)]) == 1
    assert sorted(team.sql("SELECT member, total_tokens, ts FROM token_budget.requests")) == [
        ("alice@example.com", 100, NOW), ("bob@example.com", 5000, NOW), ("carol@example.com", 7, NOW)]
    assert team.rollup_matches_requests()
    assert team.sql("SELECT scope, new_tokens, changed_by FROM token_budget.budget_changes")[0][:2] == \
        ("team:monthly", 50_000_000)


def test_tls_is_verified_for_any_host_off_loopback() -> None:
    assert connection_params("postgresql://u@db.example.com/team")["sslmode"] == "verify-full"
    assert connection_params("host=db.example.com,10.0.0.2 dbname=team sslmode=verify-ca")["sslmode"] == "verify-ca"
    for weak in ("disable", "allow", "prefer", "require"):
        with pytest.raises(TeamServerError, match="verified TLS"):
            connection_params(f"postgresql://u@db.example.com/team?sslmode={weak}")
    assert "sslmode" not in connection_params("postgresql://u@127.0.0.1:5432/team")
    assert "sslmode" not in connection_params("host=/var/run/postgresql dbname=team")


def test_wrong_credentials_fail_without_the_secret_in_the_error(team: TeamDb,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = team.member("alice@example.com")
    password = dsn.split(":")[2].split("@")[0]
    wrong = dsn.replace(password, "not-" + password)
    with pytest.raises(TeamServerError) as failure:
        connect(wrong, "alice@example.com", monkeypatch)
    assert password not in str(failure.value) and "not-" + password not in str(failure.value)
    assert "password authentication failed" in str(failure.value).lower() or "refused" in str(failure.value)


def test_the_team_store_answers_the_storage_protocols_questions(team: TeamDb,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the server answers what the core asks a ledger (storage.py), it does so under the same names and
    signatures, with the same meaning: here checked against a local ledger holding the same requests."""
    import inspect

    from token_budget import storage
    from token_budget.models import Alert

    for protocol, names in ((storage.Transactional, ("transaction", "close")),
                            (storage.UsageStore, ("totals_by_model", "totals", "count")),
                            (storage.AlertStore, ("claim_alert",))):
        for name in names:
            wanted = list(inspect.signature(getattr(protocol, name)).parameters)
            assert list(inspect.signature(getattr(TeamServer, name)).parameters) == wanted, name
    start, end = (NOW - timedelta(hours=3)).isoformat(), (NOW + timedelta(hours=1)).isoformat()
    with connect(team.member("alice@example.com"), "alice@example.com", monkeypatch) as alice:
        alice.push([row("m1", 100), row("m2", 40, model="claude-haiku-4-5", minutes=70),
                    row("m3", 7, minutes=60 * 24 * 3)])
        assert alice.totals_by_model(["input"], start, end) == [("claude-haiku-4-5", 40, 120),
                                                                ("claude-opus-4-6", 100, 300)]
        assert alice.totals(since=start, until=end)[None]["input"] == 140
        assert alice.totals()[None]["requests"] == 3 and alice.count() == 3
        alert = Alert("team:monthly", "alert", 80, "2026-11", 80, 100, NOW.isoformat())
        assert alice.claim_alert(alert) is True and alice.claim_alert(alert) is False
