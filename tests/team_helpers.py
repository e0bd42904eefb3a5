"""Team tests' helpers: a team on the session's real PostgreSQL server (a fresh database each), member roles with
their own passwords, and "machines": a data dir, a user config with a team: block and the member's DSN in the
environment, as each member's laptop would have."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from token_budget.team.schema import init_team

TEAM = "acme"


class TeamDb:
    def __init__(self, server: Any, name: str = TEAM, timezone: str = "UTC") -> None:
        self.server = server
        self.name = name
        self.admin_dsn = server.fresh_database()
        self.dbname = self.admin_dsn.rsplit("/", 1)[1]
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            init_team(conn, name, lead_member="owner@example.com", timezone=timezone)

    def sql(self, query: str, args: Any = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            cursor = conn.execute(query, args)
            return cursor.fetchall() if cursor.description else []

    def role(self, *, lead: bool = False) -> tuple[str, str]:
        """A new login role (cluster-wide, so a random name) and its password."""
        name, password = f"tb_{secrets.token_hex(5)}", secrets.token_hex(12)
        self.sql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        self.sql(f"GRANT CONNECT ON DATABASE \"{self.dbname}\" TO {name}")
        if lead:
            self.sql(f"GRANT token_budget_lead TO {name}")
        return name, password

    def member(self, member: str, *, lead: bool = False) -> str:
        """Map `member` to a new role of its own; returns that role's DSN."""
        role, password = self.role(lead=lead)
        self.sql("INSERT INTO token_budget.members (team, member, db_role) VALUES (%s, %s, %s)",
                 (self.name, member, role))
        self.sql(f"GRANT token_budget_member TO {role}")
        return self.server.dsn(self.dbname, role, password)

    def set_budget(self, scope: str, tokens: int, usd: float | None = None) -> None:
        self.sql("INSERT INTO token_budget.budgets (team, scope, limit_tokens, limit_usd) VALUES (%s, %s, %s, %s) "
                 "ON CONFLICT (team, scope) DO UPDATE SET limit_tokens = excluded.limit_tokens, "
                 "limit_usd = excluded.limit_usd", (self.name, scope, tokens, usd))

    def totals(self) -> dict[str, int]:
        """Straight from the request rows: requests, input, output."""
        (n, i, o), = self.sql("SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0) "
                              "FROM token_budget.requests WHERE team = %s", (self.name,))
        return {"requests": int(n), "input": int(i), "output": int(o)}

    def rollup_matches_requests(self) -> bool:
        """The hourly rollup sums to the requests, and the daily one holds exactly the hourly one's days."""
        rows = self.sql(
            "SELECT (SELECT array[COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(total_tokens)]::bigint[] "
            "FROM token_budget.requests WHERE team = %(t)s) = "
            "(SELECT array[SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(total_tokens)]::bigint[] "
            "FROM token_budget.hourly WHERE team = %(t)s)", {"t": self.name})
        sums = "SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(total_tokens), SUM(cost_micros)"
        by_day = self.sql(f"SELECT date_trunc('day', hour, 'UTC'), member, model, workflow, {sums} "
                          "FROM token_budget.hourly WHERE team = %s GROUP BY 1, 2, 3, 4 HAVING SUM(requests) <> 0",
                          (self.name,))
        daily = self.sql(f"SELECT day, member, model, workflow, {sums} FROM token_budget.daily "
                         "WHERE team = %s GROUP BY 1, 2, 3, 4 HAVING SUM(requests) <> 0", (self.name,))
        return bool(rows[0][0]) and sorted(by_day) == sorted(daily)


@dataclass
class Machine:
    """One member's machine: its own data dir, user config and environment."""

    root: Path
    member: str
    dsn: str
    extra_config: str = ""
    team: str = TEAM
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.root / "data"
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self.claude_dir = self.root / "claude"
        self.claude_dir.mkdir(exist_ok=True)
        self.config = self.root / "token_budgets.yaml"
        self.write_config()
        root = Path(__file__).resolve().parent.parent
        self.env = {**os.environ, "TOKEN_BUDGET_HOME": str(self.data_dir), "TOKEN_BUDGET_CONFIG": str(self.config),
                    "TOKEN_BUDGET_TEAM_DSN": self.dsn, "CLAUDE_CONFIG_DIR": str(self.claude_dir),
                    "PYTHONPATH": str(root), **self.env}

    def write_config(self, team_extra: str = "") -> None:
        self.config.write_text(
            "timezone: UTC\n"
            f"team:\n  name: {self.team}\n  dsn: $TOKEN_BUDGET_TEAM_DSN\n  member: {self.member}\n"
            f"  machine: {self.root.name}\n{team_extra}{self.extra_config}")

    def use(self, monkeypatch: Any) -> None:
        """Make this machine the in-process one (hooks run with hook.run, the CLI with CliRunner)."""
        for key in ("TOKEN_BUDGET_HOME", "TOKEN_BUDGET_CONFIG", "TOKEN_BUDGET_TEAM_DSN", "CLAUDE_CONFIG_DIR"):
            monkeypatch.setenv(key, self.env[key])


def sync_once(machine: Machine) -> dict[str, Any]:
    from token_budget.config import load_cached
    from token_budget.team.sync import Sync

    old = os.environ.get("TOKEN_BUDGET_TEAM_DSN"), os.environ.get("TOKEN_BUDGET_CONFIG")
    os.environ["TOKEN_BUDGET_TEAM_DSN"], os.environ["TOKEN_BUDGET_CONFIG"] = machine.dsn, str(machine.config)
    try:
        return Sync(machine.data_dir, load_cached(machine.data_dir)).run_once()
    finally:
        for key, value in zip(("TOKEN_BUDGET_TEAM_DSN", "TOKEN_BUDGET_CONFIG"), old, strict=True):
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def quiet(machine: Machine) -> None:
    """In-process tests sync by hand (sync_once, on the test's clock): no hook of theirs starts the detached one."""
    from token_budget.team import DUE_NAME

    machine.write_config("  sync_interval: 3600\n")
    # The due file's mtime set from time.time(), not by touch(): under .ci/run's libfaketime the kernel stamps a
    # touched file with the real time while time.time() is months ahead, so the hook found a sync due and started
    # a detached one, which pulled the shifted month's totals over the test's cache. A year ahead: never due.
    due = machine.data_dir / DUE_NAME
    due.touch()
    ahead = time.time() + 365 * 86400
    os.utime(due, (ahead, ahead))
