"""The team server's schema, as an append-only list of migrations (`tokens team init`). Never edit a shipped one.

Everything lives in the `token_budget` schema of the database the DSN names:

- `requests`: one row per API request, keyed by (team, message id), with the local ledger's merge rule (a parent's
  line beats a sidechain replay; otherwise the larger total wins: ledger.replaces), and who pushed it (member,
  machine). Row-level security: a member inserts, updates and reads only the rows of the member names its login
  role is mapped to in `members`.
- `hourly`: the rollup per (team, UTC hour, member, model, workflow), kept by statement triggers in the transaction
  that writes `requests`, so team totals read a few hundred rows a month per member instead of every request.
- `daily` (m002): the same per UTC day, kept by the same triggers, so a month's totals read about 30 rows per
  member, model and workflow: whole days from `daily`, the hours at the edges from `hourly`, the minutes at the
  edges (time zones with a half-hour offset) from `requests`.
- `budgets` (+ `budget_changes`, the append-only record of who changed what): only the lead role writes them.
- `alert_claims`: a team alert is delivered by whichever machine inserts its claim first.

Each migration runs in one transaction with the row recording it, under an advisory lock, so two leads running
`tokens team init` at once agree.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SCHEMA = "token_budget"
MEMBER_ROLE = "token_budget_member"
LEAD_ROLE = "token_budget_lead"
CLASSES = ("input", "output", "cache_creation", "cache_read")
TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_creation_5m_tokens", "cache_creation_1h_tokens",
                 "cache_read_tokens")
SUM_COLUMNS = (*TOKEN_COLUMNS, "total_tokens", "cost_micros")


def _sums(prefix: str = "", sign: str = "") -> str:
    return ", ".join(f"{sign}{prefix}{c}" for c in SUM_COLUMNS)


_ROLLUP_KEY = "team, hour, member, model, workflow"
_ADD = ", ".join(f"{c} = h.{c} + excluded.{c}" for c in ("requests", *SUM_COLUMNS))
_DAILY_KEY = "team, day, member, model, workflow"
_ADD_DAILY = ", ".join(f"{c} = d.{c} + excluded.{c}" for c in ("requests", *SUM_COLUMNS))


def _rollup_function(name: str, source: str, *, daily: bool = False) -> str:
    """A statement trigger function adding `source` (rows of (key…, n, sums…)) into the hourly rollup (and, from
    m002, the daily one). Rows in key order, hours before days, so two transactions touching the same hours or days
    lock them in the same order (no deadlock)."""
    daily_insert = f"""
        INSERT INTO {SCHEMA}.daily AS d ({_DAILY_KEY}, requests, {_sums()})
        SELECT team, date_trunc('day', hour, 'UTC') AS day, member, model, workflow, SUM(n),
               {", ".join(f"SUM({c})" for c in SUM_COLUMNS)}
        FROM ({source}) AS s GROUP BY {_DAILY_KEY} ORDER BY {_DAILY_KEY}
        ON CONFLICT ({_DAILY_KEY}) DO UPDATE SET {_ADD_DAILY};""" if daily else ""
    return f"""
    CREATE {"OR REPLACE " if daily else ""}FUNCTION {SCHEMA}.{name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, {SCHEMA} AS $fn$
    BEGIN
        INSERT INTO {SCHEMA}.hourly AS h ({_ROLLUP_KEY}, requests, {_sums()})
        SELECT {_ROLLUP_KEY}, SUM(n), {", ".join(f"SUM({c})" for c in SUM_COLUMNS)}
        FROM ({source}) AS d GROUP BY {_ROLLUP_KEY} ORDER BY {_ROLLUP_KEY}
        ON CONFLICT ({_ROLLUP_KEY}) DO UPDATE SET {_ADD};{daily_insert}
        RETURN NULL;
    END $fn$;
    """


def _rows(table: str, sign: str) -> str:
    return (f"SELECT team, date_trunc('hour', ts, 'UTC') AS hour, member, model, workflow, {sign}1 AS n, "
            f"{', '.join(f'{sign}{c} AS {c}' for c in SUM_COLUMNS)} FROM {table}")


def _period_totals(*, days: bool = False) -> str:
    """period_totals: m001's reads whole UTC hours from `hourly`; m002's (days=True) whole UTC days from `daily` and
    the whole hours around them from `hourly`. The partial hours at the edges come from the requests."""
    declare = "\n    first_day timestamptz;\n    last_day timestamptz;" if days else ""
    find_days = """
    first_day := date_trunc('day', first_hour, 'UTC');
    IF first_day < first_hour THEN
        first_day := first_day + interval '1 day';
    END IF;
    last_day := date_trunc('day', last_hour, 'UTC');
    IF first_day >= last_day THEN  -- no whole day inside: hours only
        first_day := last_hour;
        last_day := last_hour;
    END IF;""" if days else ""
    rollups = f"""
        SELECT d.member, d.model, d.workflow, d.requests, {_sums("d.")}
        FROM {SCHEMA}.daily d WHERE d.team = p_team AND d.day >= first_day AND d.day < last_day
        UNION ALL
        SELECT h.member, h.model, h.workflow, h.requests, {_sums("h.")}
        FROM {SCHEMA}.hourly h WHERE h.team = p_team AND h.hour >= first_hour AND h.hour < first_day
        UNION ALL
        SELECT h.member, h.model, h.workflow, h.requests, {_sums("h.")}
        FROM {SCHEMA}.hourly h WHERE h.team = p_team AND h.hour >= last_day AND h.hour < last_hour""" if days else f"""
        SELECT h.member, h.model, h.workflow, h.requests, {_sums("h.")}
        FROM {SCHEMA}.hourly h WHERE h.team = p_team AND h.hour >= first_hour AND h.hour < last_hour"""
    create = "CREATE OR REPLACE FUNCTION" if days else "CREATE FUNCTION"
    return f"""{create} {SCHEMA}.period_totals(p_start timestamptz, p_end timestamptz, p_team text)
RETURNS TABLE (member text, model text, workflow text, requests bigint, input_tokens bigint, output_tokens bigint,
               cache_creation_5m_tokens bigint, cache_creation_1h_tokens bigint, cache_read_tokens bigint,
               total_tokens bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, {SCHEMA} AS $fn$
DECLARE
    first_hour timestamptz := date_trunc('hour', p_start, 'UTC');
    last_hour timestamptz := date_trunc('hour', p_end, 'UTC');{declare}
BEGIN
    IF NOT (EXISTS (SELECT 1 FROM {SCHEMA}.members m WHERE m.team = p_team AND m.db_role = session_user)
            OR pg_has_role(session_user, '{LEAD_ROLE}', 'MEMBER')
            OR (SELECT rolsuper FROM pg_roles WHERE rolname = session_user)) THEN
        RETURN;
    END IF;
    IF first_hour < p_start THEN
        first_hour := first_hour + interval '1 hour';
    END IF;
    IF first_hour >= last_hour THEN  -- no whole hour inside: the requests themselves
        first_hour := p_end;
        last_hour := p_end;
    END IF;{find_days}
    RETURN QUERY
    SELECT x.member, x.model, x.workflow, SUM(x.requests)::bigint,
           {", ".join(f"SUM(x.{c})::bigint" for c in SUM_COLUMNS)}
    FROM ({rollups}
        UNION ALL
        SELECT r.member, r.model, r.workflow, 1::bigint, {_sums("r.")}
        FROM {SCHEMA}.requests r WHERE r.team = p_team AND r.ts >= p_start AND r.ts < first_hour
        UNION ALL
        SELECT r.member, r.model, r.workflow, 1::bigint, {_sums("r.")}
        FROM {SCHEMA}.requests r WHERE r.team = p_team AND r.ts >= last_hour AND r.ts < p_end
    ) AS x GROUP BY x.member, x.model, x.workflow;
END $fn$;
"""


M001_INITIAL = f"""
DO $roles$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{MEMBER_ROLE}') THEN
        CREATE ROLE {MEMBER_ROLE} NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{LEAD_ROLE}') THEN
        CREATE ROLE {LEAD_ROLE} NOLOGIN;
    END IF;
END $roles$;
GRANT {MEMBER_ROLE} TO {LEAD_ROLE} WITH ADMIN OPTION;  -- a lead is a member too, and adds members

CREATE TABLE {SCHEMA}.teams (
    name text PRIMARY KEY,
    timezone text NOT NULL DEFAULT 'UTC',
    counted_classes text[] NOT NULL DEFAULT '{{input,output,cache_creation}}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {SCHEMA}.members (
    team text NOT NULL REFERENCES {SCHEMA}.teams ON DELETE CASCADE,
    member text NOT NULL,
    db_role name NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team, member)
);
CREATE INDEX members_by_role ON {SCHEMA}.members (db_role, team);

CREATE TABLE {SCHEMA}.requests (
    team text NOT NULL,
    message_id text NOT NULL,
    member text NOT NULL,
    machine text NOT NULL,
    ts timestamptz NOT NULL,
    model text NOT NULL,
    workflow text NOT NULL DEFAULT '',
    session_id text,
    project text,
    is_sidechain boolean NOT NULL DEFAULT false,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    cache_creation_5m_tokens bigint NOT NULL DEFAULT 0,
    cache_creation_1h_tokens bigint NOT NULL DEFAULT 0,
    cache_read_tokens bigint NOT NULL DEFAULT 0,
    total_tokens bigint NOT NULL DEFAULT 0,
    cost_micros bigint NOT NULL DEFAULT 0,
    pushed_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz,
    PRIMARY KEY (team, message_id),
    FOREIGN KEY (team, member) REFERENCES {SCHEMA}.members
);
CREATE INDEX requests_by_time ON {SCHEMA}.requests (team, ts);

CREATE TABLE {SCHEMA}.hourly (
    team text NOT NULL,
    hour timestamptz NOT NULL,
    member text NOT NULL,
    model text NOT NULL,
    workflow text NOT NULL DEFAULT '',
    requests bigint NOT NULL DEFAULT 0,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    cache_creation_5m_tokens bigint NOT NULL DEFAULT 0,
    cache_creation_1h_tokens bigint NOT NULL DEFAULT 0,
    cache_read_tokens bigint NOT NULL DEFAULT 0,
    total_tokens bigint NOT NULL DEFAULT 0,
    cost_micros bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (team, hour, member, model, workflow)
);

{_rollup_function("roll_inserted", _rows("new_rows", ""))}
{_rollup_function("roll_updated", _rows("new_rows", "") + " UNION ALL " + _rows("old_rows", "-"))}
{_rollup_function("roll_deleted", _rows("old_rows", "-"))}
-- The merge rule as the server's own invariant, whoever writes: an update of a request is taken only when its line
-- wins (a parent's line over a sidechain replay; else no token class smaller and the total larger), within an hour
-- of the request's time, and never moves it to another team, member or message. So a member's role (or an agent
-- holding its credentials) can add usage but never lower the team's totals. Superusers may repair.
CREATE FUNCTION {SCHEMA}.guard_update() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN NEW;
    END IF;
    IF NEW.team <> OLD.team OR NEW.message_id <> OLD.message_id OR NEW.member <> OLD.member
            OR abs(extract(epoch FROM NEW.ts - OLD.ts)) > 3600 THEN
        RETURN NULL;
    END IF;
    IF OLD.is_sidechain AND NOT NEW.is_sidechain THEN
        RETURN NEW;
    END IF;
    IF OLD.is_sidechain = NEW.is_sidechain AND NEW.total_tokens > OLD.total_tokens
            {" ".join(f"AND NEW.{c} >= OLD.{c}" for c in TOKEN_COLUMNS)} THEN
        RETURN NEW;
    END IF;
    RETURN NULL;
END $fn$;
CREATE TRIGGER requests_guard BEFORE UPDATE ON {SCHEMA}.requests FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.guard_update();
CREATE TRIGGER requests_rollup_insert AFTER INSERT ON {SCHEMA}.requests REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.roll_inserted();
CREATE TRIGGER requests_rollup_update AFTER UPDATE ON {SCHEMA}.requests
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.roll_updated();
CREATE TRIGGER requests_rollup_delete AFTER DELETE ON {SCHEMA}.requests REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.roll_deleted();

CREATE TABLE {SCHEMA}.budgets (
    team text NOT NULL REFERENCES {SCHEMA}.teams ON DELETE CASCADE,
    scope text NOT NULL CHECK (scope ~ '^team:(daily|monthly|member:monthly|model:.+|workflow:.+)$'),
    limit_tokens bigint NOT NULL DEFAULT 0 CHECK (limit_tokens >= 0),
    limit_usd numeric(14, 2) CHECK (limit_usd >= 0),
    set_by name NOT NULL DEFAULT session_user,
    set_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team, scope)
);

CREATE TABLE {SCHEMA}.budget_changes (
    id bigserial PRIMARY KEY,
    team text NOT NULL,
    scope text NOT NULL,
    old_tokens bigint,
    new_tokens bigint,
    old_usd numeric(14, 2),
    new_usd numeric(14, 2),
    changed_by name NOT NULL DEFAULT session_user,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION {SCHEMA}.record_budget_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, {SCHEMA} AS $fn$
BEGIN
    INSERT INTO {SCHEMA}.budget_changes (team, scope, old_tokens, new_tokens, old_usd, new_usd)
    VALUES (COALESCE(NEW.team, OLD.team), COALESCE(NEW.scope, OLD.scope),
            CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.limit_tokens END,
            CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.limit_tokens END,
            CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.limit_usd END,
            CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.limit_usd END);
    RETURN NULL;
END $fn$;
CREATE TRIGGER budgets_recorded AFTER INSERT OR UPDATE OR DELETE ON {SCHEMA}.budgets
    FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.record_budget_change();

CREATE TABLE {SCHEMA}.alert_claims (
    team text NOT NULL,
    key text NOT NULL,
    limit_tokens bigint NOT NULL,
    member text NOT NULL,
    machine text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team, key, limit_tokens),
    FOREIGN KEY (team, member) REFERENCES {SCHEMA}.members
);

-- Team totals over [start, end): whole UTC hours from the rollup, the partial hours at the edges (time zones with
-- a half-hour offset) from the requests, each edge its own index range. SECURITY DEFINER because a member reads
-- only their own request rows; it answers only for a team the caller belongs to.
{_period_totals()}
GRANT USAGE ON SCHEMA {SCHEMA} TO {MEMBER_ROLE};
GRANT SELECT ON {SCHEMA}.teams, {SCHEMA}.members, {SCHEMA}.hourly, {SCHEMA}.budgets, {SCHEMA}.budget_changes,
    {SCHEMA}.alert_claims, {SCHEMA}.schema_migrations TO {MEMBER_ROLE};
GRANT SELECT, INSERT, UPDATE ON {SCHEMA}.requests TO {MEMBER_ROLE};
GRANT INSERT ON {SCHEMA}.alert_claims TO {MEMBER_ROLE};
GRANT EXECUTE ON FUNCTION {SCHEMA}.period_totals(timestamptz, timestamptz, text) TO {MEMBER_ROLE};
GRANT INSERT, UPDATE, DELETE ON {SCHEMA}.budgets, {SCHEMA}.members TO {LEAD_ROLE};
REVOKE ALL ON FUNCTION {SCHEMA}.period_totals(timestamptz, timestamptz, text) FROM PUBLIC;

ALTER TABLE {SCHEMA}.requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON {SCHEMA}.requests FOR ALL
    USING (EXISTS (SELECT 1 FROM {SCHEMA}.members m
                   WHERE m.team = requests.team AND m.member = requests.member AND m.db_role = current_user))
    WITH CHECK (EXISTS (SELECT 1 FROM {SCHEMA}.members m
                        WHERE m.team = requests.team AND m.member = requests.member AND m.db_role = current_user));
ALTER TABLE {SCHEMA}.alert_claims ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON {SCHEMA}.alert_claims FOR SELECT USING (true);
CREATE POLICY claim_as_self ON {SCHEMA}.alert_claims FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM {SCHEMA}.members m WHERE m.team = alert_claims.team
                        AND m.member = alert_claims.member AND m.db_role = current_user))
"""

M002_DAILY = f"""
LOCK TABLE {SCHEMA}.requests IN SHARE ROW EXCLUSIVE MODE;  -- no push between the backfill and the new triggers

CREATE TABLE {SCHEMA}.daily (LIKE {SCHEMA}.hourly INCLUDING DEFAULTS);  -- hourly's columns, per UTC day
ALTER TABLE {SCHEMA}.daily RENAME COLUMN hour TO day;
ALTER TABLE {SCHEMA}.daily ADD PRIMARY KEY ({_DAILY_KEY});
INSERT INTO {SCHEMA}.daily ({_DAILY_KEY}, requests, {_sums()})
SELECT team, date_trunc('day', hour, 'UTC'), member, model, workflow, SUM(requests),
       {", ".join(f"SUM({c})" for c in SUM_COLUMNS)}
FROM {SCHEMA}.hourly GROUP BY 1, 2, 3, 4, 5;
GRANT SELECT ON {SCHEMA}.daily TO {MEMBER_ROLE};

{_rollup_function("roll_inserted", _rows("new_rows", ""), daily=True)}
{_rollup_function("roll_updated", _rows("new_rows", "") + " UNION ALL " + _rows("old_rows", "-"), daily=True)}
{_rollup_function("roll_deleted", _rows("old_rows", "-"), daily=True)}

-- Team totals over [start, end) as m001's, read from the coarsest rollup that fits: whole UTC days from `daily`, the
-- whole hours around them from `hourly`, the partial hours at the edges from `requests`.
{_period_totals(days=True)}"""

MIGRATIONS: list[tuple[str, str]] = [
    ("m001_initial", M001_INITIAL),
    ("m002_daily", M002_DAILY),
]


def applied(conn: Any) -> list[str]:
    exists = conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.schema_migrations",)).fetchone()[0]
    if exists is None:
        return []
    return [r[0] for r in conn.execute(f"SELECT name FROM {SCHEMA}.schema_migrations ORDER BY applied_at, name")]


def migrate(conn: Any) -> list[str]:
    """Apply every server migration not yet applied; returns their names. Needs a role that may create schemas
    and roles (the database owner with CREATEROLE, or a superuser)."""
    ran: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('token_budget.migrate'))")
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations "
                     "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())")
        done = set(applied(conn))
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            with conn.transaction():
                conn.execute(sql)
                conn.execute(f"INSERT INTO {SCHEMA}.schema_migrations (name) VALUES (%s)", (name,))
            ran.append(name)
    return ran


def init_team(conn: Any, team: str, *, lead_member: str, lead_role: str | None = None, timezone: str = "UTC",
              counted_classes: tuple[str, ...] = ("input", "output", "cache_creation")) -> dict[str, Any]:
    """`tokens team init`: migrate, create the team (if new), make the caller's role its lead and a member."""
    from psycopg import sql

    ran = migrate(conn)
    role = lead_role or conn.execute("SELECT session_user").fetchone()[0]
    with conn.transaction():
        created = conn.execute(
            f"INSERT INTO {SCHEMA}.teams (name, timezone, counted_classes) VALUES (%s, %s, %s) "
            "ON CONFLICT (name) DO NOTHING", (team, timezone, list(counted_classes))).rowcount == 1
        conn.execute(f"INSERT INTO {SCHEMA}.members (team, member, db_role) VALUES (%s, %s, %s) "
                     "ON CONFLICT (team, member) DO UPDATE SET db_role = excluded.db_role", (team, lead_member, role))
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(LEAD_ROLE), sql.Identifier(role)))
    return {"team": team, "created": created, "migrations": ran, "lead": lead_member, "lead_role": role}
