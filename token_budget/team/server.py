"""The team server's client: connecting (TLS verified off loopback, credentials from the environment only), pushing
request rows, pulling team totals, claiming team alerts, and what `tokens team` reads and changes.

Only the sync process and `tokens team` import this (and psycopg with it). Every error leaving here is a
TeamServerError whose text has been redacted: no DSN, password or URL path reaches a log, the cache or a terminal.
"""

from __future__ import annotations

import os

from ..errors import TokenBudgetError
from . import TeamSettings
from .schema import SCHEMA, SUM_COLUMNS, TOKEN_COLUMNS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from typing import Any

CONNECT_TIMEOUT = 5  # seconds: a server that does not answer costs the sync this, never a hook
STATEMENT_TIMEOUT_MS = 30_000
BATCH_ROWS = 5_000
SECURE_MODES = ("verify-full", "verify-ca")
ROW_FIELDS = ("message_id", "ts", "model", "workflow", "session_id", "project", "is_sidechain", *TOKEN_COLUMNS,
              "total_tokens", "cost_micros")


class TeamServerError(TokenBudgetError):
    """The team server cannot be reached or refused a request. `transient`: worth retrying later."""

    def __init__(self, message: str, hint: str | None = None, *, transient: bool = True) -> None:
        super().__init__(message, hint)
        self.transient = transient


def is_local_host(host: str) -> bool:
    """Loopback or a Unix socket (an empty host or a path): the only hosts reached without verified TLS."""
    from ..delivery import is_loopback

    return not host or host.startswith("/") or is_loopback(host)


def connection_params(dsn: str, *, connect_timeout: int = CONNECT_TIMEOUT) -> dict[str, Any]:
    """The DSN's parameters, with verified TLS required for any host off loopback."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(dsn)
    except Exception as exc:
        raise TeamServerError(f"The team DSN cannot be read ({type(exc).__name__}).",
                              "Check the variable team.dsn names: postgresql://USER@HOST:PORT/DB or key=value pairs.",
                              transient=False) from None
    hosts = [h.strip() for h in str(params.get("host") or params.get("hostaddr") or "").split(",")]
    if not all(is_local_host(h) for h in hosts):
        mode = params.get("sslmode")
        if mode is None:
            params["sslmode"] = "verify-full"
        elif mode not in SECURE_MODES:
            raise TeamServerError(
                f"The team DSN asks for sslmode={mode} to a host off this machine; token-budget connects to a team "
                "server only with verified TLS.",
                "Remove sslmode (verify-full is the default) or set sslmode=verify-full and the server's CA in "
                "sslrootcert.", transient=False)
    params.setdefault("connect_timeout", str(connect_timeout))
    params.setdefault("application_name", "token-budget")
    return params


def secrets_of(dsn: str) -> list[str]:
    """What must never be logged: the DSN, its password, and PGPASSWORD."""
    out = [dsn, os.environ.get("PGPASSWORD", "")]
    try:
        from psycopg.conninfo import conninfo_to_dict

        out.append(str(conninfo_to_dict(dsn).get("password") or ""))
    except Exception:
        pass
    return [s for s in out if s]


def redacted(exc: BaseException, secrets: Sequence[str]) -> str:
    from ..channels import redact

    text = " ".join(str(exc).split())  # libpq's messages span lines
    return redact(f"{type(exc).__name__}: {text}", list(secrets))


class TeamServer:
    """One connection to the team server, for one member of one team."""

    def __init__(self, conn: Any, settings: TeamSettings, member: str, machine: str, secrets: list[str]) -> None:
        self.conn = conn
        self.settings = settings
        self.team = settings.name
        self.member = member
        self.machine = machine
        self.secrets = secrets

    @classmethod
    def connect(cls, settings: TeamSettings, *, member: str | None = None, machine: str | None = None,
                connect_timeout: int = CONNECT_TIMEOUT) -> TeamServer:
        from . import default_machine, default_member

        dsn = settings.dsn()
        secrets = secrets_of(dsn)
        params = connection_params(dsn, connect_timeout=connect_timeout)
        try:
            import psycopg
        except ImportError:
            raise TeamServerError("psycopg is not installed, so the team server cannot be reached.",
                                  "pip install 'token-budget[team]' (the plugin installs it when your config has "
                                  "team:).", transient=False) from None
        try:
            conn = psycopg.connect(**params, autocommit=True)
            conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        except psycopg.Error as exc:
            raise _classified(exc, secrets) from None
        return cls(conn, settings, member or settings.member or default_member(),
                   machine or settings.machine or default_machine(), secrets)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> TeamServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """fn(*args) with every driver error turned into a redacted TeamServerError."""
        import psycopg

        try:
            return fn(*args, **kwargs)
        except psycopg.Error as exc:
            raise _classified(exc, self.secrets) from None

    # -- reading --------------------------------------------------------------------------------------------------

    def team_info(self) -> dict[str, Any]:
        row = self.run(lambda: self.conn.execute(
            f"SELECT timezone, counted_classes FROM {SCHEMA}.teams WHERE name = %s", (self.team,)).fetchone())
        if row is None:
            raise TeamServerError(f"The team server has no team {self.team!r}.",
                                  "Ask your team lead to run `tokens team init` (or check team.name).", transient=False)
        return {"timezone": row[0], "classes": list(row[1])}

    def check_member(self) -> None:
        row = self.run(lambda: self.conn.execute(
            f"SELECT 1 FROM {SCHEMA}.members WHERE team = %s AND member = %s AND db_role = current_user",
            (self.team, self.member)).fetchone())
        if row is None:
            role = self.current_role()
            raise TeamServerError(
                f"{self.member} is not a member of the team {self.team!r} under the database role {role}.",
                f"Ask your team lead: tokens team members add {self.member} --db-role {role}", transient=False)

    def current_role(self) -> str:
        """The database role this connection acts as."""
        return str(self.run(lambda: self.conn.execute("SELECT current_user").fetchone()[0]))

    def members(self) -> list[tuple[str, str]]:
        """(member, database role) of every member of the team."""
        return self.run(lambda: self.conn.execute(
            f"SELECT member, db_role FROM {SCHEMA}.members WHERE team = %s ORDER BY member", (self.team,)).fetchall())

    def budgets(self) -> list[dict[str, Any]]:
        rows = self.run(lambda: self.conn.execute(
            f"SELECT scope, limit_tokens, limit_usd FROM {SCHEMA}.budgets WHERE team = %s ORDER BY scope",
            (self.team,)).fetchall())
        return [{"scope": s, "tokens": int(t), "usd": float(u) if u is not None else None} for s, t, u in rows]

    def period_rows(self, start: str, end: str) -> list[tuple[Any, ...]]:
        """(member, model, workflow, requests, *SUM_COLUMNS) over [start, end), from the rollup."""
        return self.run(lambda: self.conn.execute(
            f"SELECT * FROM {SCHEMA}.period_totals(%s, %s, %s)", (start, end, self.team)).fetchall())

    # -- storage.Storage, the part a team store answers (Transactional, UsageStore's sums, AlertStore's claim) ----

    def transaction(self) -> Any:
        return self.conn.transaction()

    def totals_by_model(self, classes: Sequence[str], start: str, end: str) -> list[tuple[str, int, int]]:
        """(model, counted tokens, cost_micros) of the whole team per model in [start, end), from the rollup."""
        picks = {"input": (4,), "output": (5,), "cache_creation": (6, 7), "cache_read": (8,)}
        out: dict[str, list[int]] = {}
        for row in self.period_rows(start, end):
            sums = out.setdefault(row[1], [0, 0])
            sums[0] += sum(int(row[i]) for c in classes for i in picks[c])
            sums[1] += int(row[10])
        return sorted((model, used, cost) for model, (used, cost) in out.items())

    def totals(self, *, since: str | None = None, until: str | None = None,
               session: str | None = None) -> dict[Any, dict[str, int]]:
        """{None: sums} of the team's requests in [since, until); with `session`, of one of this member's
        sessions (row-level security shows a member only their own request rows)."""
        if session is not None:
            rows = self.run(lambda: self.conn.execute(
                f"SELECT 'me', model, workflow, COUNT(*), {', '.join(f'SUM({c})' for c in SUM_COLUMNS)} "
                f"FROM {SCHEMA}.requests WHERE team = %s AND session_id = %s AND ts >= %s AND ts < %s "
                "GROUP BY model, workflow",
                (self.team, session, since or "-infinity", until or "infinity")).fetchall())
        else:
            rows = self.period_rows(since or "-infinity", until or "infinity")
        if not rows:
            return {}
        keys = ("requests", "input", "output", "cache_creation_5m", "cache_creation_1h", "cache_read")
        sums = {k: sum(int(r[3 + i] or 0) for r in rows) for i, k in enumerate(keys)}
        sums["cost_micros"] = sum(int(r[10] or 0) for r in rows)
        sums["cache_creation"] = sums["cache_creation_5m"] + sums["cache_creation_1h"]
        return {None: sums}

    def count(self) -> int:
        return int(self.run(lambda: self.conn.execute(
            f"SELECT COALESCE(SUM(requests), 0) FROM {SCHEMA}.hourly WHERE team = %s", (self.team,)).fetchone()[0]))

    def claim_alert(self, alert: Any) -> bool:
        return self.claim(alert.key, alert.limit)

    # -- writing --------------------------------------------------------------------------------------------------

    def push(self, rows: Sequence[dict[str, Any]]) -> int:
        """Upsert request rows in one statement per batch, by the local ledger's rule (ledger.replaces): a parent's
        line beats a sidechain replay, else the larger total wins. Idempotent: pushing a batch twice changes
        nothing. Returns how many rows the server took (inserted or grown)."""
        changed = 0
        for start in range(0, len(rows), BATCH_ROWS):
            changed += self.run(self._push_batch, rows[start:start + BATCH_ROWS])
        return changed

    def _push_batch(self, rows: Sequence[dict[str, Any]]) -> int:
        columns = ", ".join(ROW_FIELDS)
        types = ", ".join(f"{c} {_type(c)}" for c in ROW_FIELDS)
        sets = ", ".join(f"{c} = excluded.{c}" for c in ("machine", *ROW_FIELDS[1:])) + ", updated_at = now()"
        wins = ("((r.is_sidechain AND NOT excluded.is_sidechain) OR (r.is_sidechain = excluded.is_sidechain "
                "AND excluded.total_tokens > r.total_tokens))")
        import orjson

        # key order: every pusher locks rows (and their rollup hours) in the same order
        payload = orjson.dumps(sorted(rows, key=lambda r: r["message_id"])).decode()
        return self.conn.execute(
            f"INSERT INTO {SCHEMA}.requests AS r (team, member, machine, {columns}) "
            f"SELECT %s, %s, %s, {columns} FROM jsonb_to_recordset(%s::jsonb) AS x({types}) "
            f"ON CONFLICT (team, message_id) DO UPDATE SET {sets} WHERE r.member = excluded.member AND {wins}",
            (self.team, self.member, self.machine, payload)).rowcount

    def claim(self, key: str, limit_tokens: int) -> bool:
        """Claim a team alert for the whole team: True for the one machine that gets it."""
        return self.run(lambda: self.conn.execute(
            f"INSERT INTO {SCHEMA}.alert_claims (team, key, limit_tokens, member, machine) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING", (self.team, key, limit_tokens, self.member, self.machine)).rowcount == 1)

    def set_budget(self, scope: str, tokens: int | None, usd: float | None) -> dict[str, Any]:
        """`tokens team budget`: only the lead role may (the server refuses anyone else)."""
        import psycopg

        def write() -> Any:
            if not tokens and usd is None:
                return self.conn.execute(f"DELETE FROM {SCHEMA}.budgets WHERE team = %s AND scope = %s",
                                         (self.team, scope)).rowcount
            return self.conn.execute(
                f"INSERT INTO {SCHEMA}.budgets (team, scope, limit_tokens, limit_usd) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (team, scope) DO UPDATE SET limit_tokens = excluded.limit_tokens, "
                "limit_usd = excluded.limit_usd, set_by = session_user, set_at = now()",
                (self.team, scope, tokens or 0, usd)).rowcount

        try:
            write()
        except psycopg.errors.InsufficientPrivilege:
            raise TeamServerError(f"Only the team lead role can change the team's budgets ({scope} unchanged).",
                                  "Ask your team lead to run `tokens team budget`.", transient=False) from None
        except psycopg.Error as exc:
            raise _classified(exc, self.secrets) from None
        return {"scope": scope, "tokens": tokens or 0, "usd": usd}

    def add_member(self, member: str, db_role: str) -> None:
        from psycopg import sql

        def add() -> None:
            with self.conn.transaction():
                self.conn.execute(f"INSERT INTO {SCHEMA}.members (team, member, db_role) VALUES (%s, %s, %s) "
                                  "ON CONFLICT (team, member) DO UPDATE SET db_role = excluded.db_role",
                                  (self.team, member, db_role))
                self.conn.execute(sql.SQL("GRANT token_budget_member TO {}").format(sql.Identifier(db_role)))

        import psycopg

        try:
            add()
        except psycopg.errors.InsufficientPrivilege:
            raise TeamServerError("Only the team lead role can add members.", transient=False) from None
        except psycopg.Error as exc:
            raise _classified(exc, self.secrets) from None


def _type(column: str) -> str:
    if column in (*SUM_COLUMNS,):
        return "bigint"
    if column == "is_sidechain":
        return "boolean"
    if column == "ts":
        return "timestamptz"
    return "text"


def _classified(exc: BaseException, secrets: Sequence[str]) -> TeamServerError:
    import psycopg

    text = redacted(exc, secrets)
    if isinstance(exc, psycopg.errors.InvalidPassword | psycopg.errors.InvalidAuthorizationSpecification):
        return TeamServerError(f"The team server refused the credentials: {text}",
                               "Check the user and password in the variable team.dsn names.", transient=True)
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return TeamServerError(f"The team server refused: {text}", transient=False)
    return TeamServerError(f"The team server did not answer as expected: {text}")


def sums_by(rows: Sequence[tuple[Any, ...]], keep: Any = None) -> list[int]:
    """The SUMS of states.py (token classes, then cost) over period rows, optionally only those `keep(row)` takes."""
    out = [0] * 6
    for row in rows:
        if keep is not None and not keep(row):
            continue
        member, model, workflow, requests, i, o, c5, c1, r, total, cost = row
        for index, value in enumerate((i, o, c5, c1, r, cost)):
            out[index] += int(value or 0)
    return out


def utc_bounds(start: str, end: str) -> tuple[datetime, datetime]:
    from ..periods import parse

    return parse(start), parse(end)
