"""The ledger's schema, as an append-only list of migrations. Never edit a shipped migration: add a new one.

Each migration runs in one transaction together with the row that records it, so a crash leaves either both or
neither. PRAGMA user_version mirrors the number applied, letting the hook skip the migrations table entirely.
"""

from __future__ import annotations

from . import clock

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable

MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = []
migration = MIGRATIONS.append


def _run(db: sqlite3.Connection, script: str) -> None:
    # Not executescript(): it COMMITs first, which would split a migration from the row that records it.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    _run(
        db,
        """
        CREATE TABLE requests (
            message_id TEXT PRIMARY KEY,
            request_id TEXT,
            timestamp TEXT NOT NULL,
            session_id TEXT,
            project TEXT,
            cwd TEXT,
            git_branch TEXT,
            agent_id TEXT,
            agent_type TEXT,
            is_sidechain INTEGER NOT NULL DEFAULT 0,
            workflow TEXT,
            workflow_run_id INTEGER,
            phase TEXT,
            model TEXT NOT NULL,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cache_creation_5m_tokens INTEGER NOT NULL DEFAULT 0,
            cache_creation_1h_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            total_tokens INTEGER NOT NULL DEFAULT 0,
            speed TEXT,
            service_tier TEXT,
            cost_micros INTEGER NOT NULL DEFAULT 0,
            cost_status TEXT NOT NULL DEFAULT 'priced',
            source TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            updated_at TEXT
        );
        CREATE INDEX requests_by_time ON requests (timestamp);
        CREATE INDEX requests_by_session ON requests (session_id, timestamp);

        CREATE TABLE transcript_offsets (
            path TEXT PRIMARY KEY,
            device INTEGER,
            inode INTEGER,
            size INTEGER NOT NULL DEFAULT 0,
            mtime_ns INTEGER NOT NULL DEFAULT 0,
            offset INTEGER NOT NULL DEFAULT 0,
            head_hash TEXT,
            lines INTEGER NOT NULL DEFAULT 0,
            malformed_lines INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT
        );

        CREATE TABLE workflow_runs (
            id INTEGER PRIMARY KEY,
            session_id TEXT,
            name TEXT NOT NULL,
            phase TEXT,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            source TEXT
        );
        CREATE INDEX workflow_runs_by_session ON workflow_runs (session_id, started_at);
        """
    )


def applied(db: sqlite3.Connection) -> list[str]:
    exists = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_token_budget_migrations'"
    ).fetchone()
    if not exists:
        return []
    return [row[0] for row in db.execute("SELECT name FROM _token_budget_migrations ORDER BY rowid")]


def pending(db: sqlite3.Connection) -> list[str]:
    done = set(applied(db))
    return [fn.__name__ for fn in MIGRATIONS if fn.__name__ not in done]


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet recorded; returns their names. Safe to call from parallel processes."""
    if db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS):
        return []
    ran: list[str] = []
    db.execute("BEGIN IMMEDIATE")  # one migrator at a time; the others wait, then find nothing to do
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS _token_budget_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = set(applied(db))
        for fn in MIGRATIONS:
            if fn.__name__ in done:
                continue
            fn(db)
            db.execute("INSERT INTO _token_budget_migrations VALUES (?, ?)", (fn.__name__, clock.timestamp()))
            ran.append(fn.__name__)
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return ran


@migration
def m002_alerts(db: sqlite3.Connection) -> None:
    # One row per (scope, threshold, period): the primary key is what makes an alert fire once, even when
    # several hooks cross the threshold at the same moment.
    _run(
        db,
        """
        CREATE TABLE alerts (
            key TEXT PRIMARY KEY,
            scope TEXT NOT NULL,
            level TEXT NOT NULL,
            threshold INTEGER NOT NULL,
            period TEXT NOT NULL,
            used INTEGER NOT NULL,
            limit_tokens INTEGER NOT NULL,
            workflow TEXT,
            recommendation TEXT,
            created_at TEXT NOT NULL,
            acked_at TEXT
        );
        CREATE INDEX alerts_by_time ON alerts (created_at)
        """,
    )


@migration
def m003_alert_deliveries(db: sqlite3.Connection) -> None:
    # The outbox: one row per (alert, channel), written in the transaction that claims the alert, so an alert is
    # never claimed without its deliveries. A detached sender works through the pending rows; every try is a row in
    # delivery_attempts. Channel secrets (webhook URLs, SMTP passwords) are resolved at send time and never stored.
    # alerts.enqueued_at marks alerts whose deliveries exist; alerts claimed before this migration count as enqueued,
    # so upgrading never replays old alerts.
    _run(
        db,
        """
        ALTER TABLE alerts ADD COLUMN enqueued_at TEXT;
        UPDATE alerts SET enqueued_at = created_at;
        CREATE INDEX alerts_to_enqueue ON alerts (created_at) WHERE enqueued_at IS NULL;

        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            alert_key TEXT NOT NULL REFERENCES alerts (key),
            channel TEXT NOT NULL,
            type TEXT NOT NULL,
            spec TEXT NOT NULL,
            project_dir TEXT,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            last_error TEXT,
            created_at TEXT NOT NULL,
            delivered_at TEXT,
            UNIQUE (alert_key, channel)
        );
        CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE state = 'pending';

        CREATE TABLE delivery_attempts (
            id INTEGER PRIMARY KEY,
            delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT,
            error TEXT
        );
        CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id)
        """,
    )


@migration
def m004_budget_events(db: sqlite3.Connection) -> None:
    # Named m003 as the plan numbered it; it runs after m004 (list order is what counts, names only identify).
    # events: the 70% warnings and every threshold crossing, readable with `tokens events`; append-only.
    # degradations: each step taken to save tokens, so reports can show what economy mode saved.
    # tool_calls: read-only tool calls already answered in a session (economy mode denies exact repeats).
    # session_state: the model a session switched to (/model) before any request on it was recorded.
    _run(
        db,
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            level TEXT NOT NULL,
            kind TEXT NOT NULL,
            scope TEXT,
            session_id TEXT,
            alert_key TEXT,
            message TEXT NOT NULL
        );
        CREATE INDEX events_by_time ON events (created_at);

        CREATE TABLE degradations (
            id INTEGER PRIMARY KEY,
            session_id TEXT,
            kind TEXT NOT NULL,
            tool TEXT,
            detail TEXT,
            from_model TEXT,
            to_model TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX degradations_by_time ON degradations (created_at);
        CREATE INDEX degradations_by_session ON degradations (session_id, kind);

        CREATE TABLE tool_calls (
            session_id TEXT NOT NULL,
            key TEXT NOT NULL,
            tool TEXT NOT NULL,
            summary TEXT,
            tool_use_id TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (session_id, key)
        );

        CREATE TABLE session_state (
            session_id TEXT PRIMARY KEY,
            model TEXT,
            model_set_at TEXT
        )
        """,
    )


@migration
def m005_budget_sums_index(db: sqlite3.Connection) -> None:
    # Every evaluated hook sums the day's and the month's counted tokens and cost: a covering index makes those
    # sums index-only range scans instead of a table lookup per request (bench_decision.py).
    _run(
        db,
        """
        CREATE INDEX requests_budget_sums ON requests (timestamp, model, input_tokens, output_tokens,
            cache_creation_5m_tokens, cache_creation_1h_tokens, cache_read_tokens, cost_micros)
        """,
    )


@migration
def m006_report_deliveries(db: sqlite3.Connection) -> None:
    # The daily report goes through the alert outbox too: deliveries.kind tells an alert's row from a report's, and
    # report_messages keeps what the sender sends (the report as JSON and as the YAML written to reports/), written
    # in the transaction that enqueues its deliveries. For a report, deliveries.alert_key is report_messages.key
    # ("report:YYYY-MM-DD"). Rows from before this migration are alerts.
    _run(
        db,
        """
        ALTER TABLE deliveries ADD COLUMN kind TEXT NOT NULL DEFAULT 'alert';

        CREATE TABLE report_messages (
            key TEXT PRIMARY KEY,
            period TEXT NOT NULL,
            report TEXT NOT NULL,
            yaml TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
    )


@migration
def m007_hourly_totals(db: sqlite3.Connection) -> None:
    # Every evaluated hook sums the month's counted tokens: at 1M requests that scan of ~500k index entries was
    # most of the hook (benchmarks/run.py). hourly_totals rolls requests up per UTC hour and model, kept exact by
    # triggers in the very transaction that writes a request (insert, the upsert's update, delete), so no writer
    # can forget it. A period [start, end) in any time zone is then the whole hours inside it from this table plus
    # a live SUM over the partial hours at its edges (zones with :30/:45 offsets): exact whatever the configured
    # timezone, and a change of timezone needs no rebuild. Rows whose counts fall to zero are left in place.
    cols = ("input_tokens", "output_tokens", "cache_creation_5m_tokens", "cache_creation_1h_tokens",
            "cache_read_tokens", "cost_micros")
    add = ", ".join(f"{c} = {c} + excluded.{c}" for c in cols)
    sub = ", ".join(f"{c} = {c} - OLD.{c}" for c in cols)
    new_values = ", ".join(f"NEW.{c}" for c in cols)
    insert_new = (
        f"INSERT INTO hourly_totals (hour, model, requests, {', '.join(cols)}) "
        f"VALUES (substr(NEW.timestamp, 1, 13), NEW.model, 1, {new_values}) "
        f"ON CONFLICT (hour, model) DO UPDATE SET requests = requests + 1, {add}"
    )
    remove_old = (
        f"UPDATE hourly_totals SET requests = requests - 1, {sub} "
        "WHERE hour = substr(OLD.timestamp, 1, 13) AND model = OLD.model"
    )
    changed = " OR ".join(["OLD.timestamp IS NOT NEW.timestamp", "OLD.model IS NOT NEW.model"]
                          + [f"OLD.{c} IS NOT NEW.{c}" for c in cols])
    # Not _run(): trigger bodies hold semicolons.
    db.execute(
        f"""CREATE TABLE hourly_totals (
            hour TEXT NOT NULL,
            model TEXT NOT NULL,
            requests INTEGER NOT NULL DEFAULT 0,
            {', '.join(f'{c} INTEGER NOT NULL DEFAULT 0' for c in cols)},
            PRIMARY KEY (hour, model)
        ) WITHOUT ROWID"""
    )
    db.execute(
        f"INSERT INTO hourly_totals (hour, model, requests, {', '.join(cols)}) "
        f"SELECT substr(timestamp, 1, 13), model, COUNT(*), {', '.join(f'SUM({c})' for c in cols)} "
        "FROM requests GROUP BY 1, 2"
    )
    db.execute(f"CREATE TRIGGER requests_rollup_insert AFTER INSERT ON requests BEGIN {insert_new}; END")
    db.execute(f"CREATE TRIGGER requests_rollup_update AFTER UPDATE ON requests WHEN {changed} "
               f"BEGIN {remove_old}; {insert_new}; END")
    db.execute(f"CREATE TRIGGER requests_rollup_delete AFTER DELETE ON requests BEGIN {remove_old}; END")


@migration
def m008_drop_time_index(db: sqlite3.Connection) -> None:
    # requests_budget_sums (m005) starts with timestamp, so it serves every range and ORDER BY timestamp that
    # requests_by_time did; the duplicate cost every insert a B-tree write (about 15% of a 200 MB import).
    _run(db, "DROP INDEX IF EXISTS requests_by_time")


@migration
def m009_control_events(db: sqlite3.Connection) -> None:
    # Alert ids lose their `|` (a shell pipe: the suggested `tokens ack daily|100|…` broke when pasted); keys are
    # rewritten wherever they are kept. events.detail holds a change's JSON (who, old and new value) and
    # events.shown_at marks a change already shown to the user, so each is shown once. limits_seen keeps, per
    # project, the limits and mode the hooks last enforced: a difference no command recorded is a config file edit.
    _run(
        db,
        """
        UPDATE alerts SET key = replace(key, '|', '/') WHERE key LIKE '%|%';
        UPDATE deliveries SET alert_key = replace(alert_key, '|', '/') WHERE kind = 'alert' AND alert_key LIKE '%|%';
        UPDATE events SET alert_key = replace(alert_key, '|', '/') WHERE alert_key LIKE '%|%';
        ALTER TABLE events ADD COLUMN detail TEXT;
        ALTER TABLE events ADD COLUMN shown_at TEXT;
        UPDATE events SET shown_at = created_at;
        CREATE INDEX events_to_show ON events (id) WHERE shown_at IS NULL;

        CREATE TABLE limits_seen (
            project TEXT PRIMARY KEY,
            limits TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
    )


@migration
def m010_client_totals(db: sqlite3.Connection) -> None:
    # Reconciliation with the client's own cumulative figures (Claude Code's cost-state line):
    # client_totals: every snapshot read, keyed by its content (cumulative figures only grow, so the same
    #   figures are the same snapshot wherever and however often they are read); taken_at is the newest
    #   timestamp written before it. model_usage is JSON {model: [input, output, cache 5m, cache 1h, cache read,
    #   cost micro-USD]}.
    # shared_requests: a request whose line is also in another session's files (a fork's or /branch's copy):
    #   the session that holds the copy, and the session owning the row (kept in step, so that finding a
    #   session's forks is an index lookup, never a scan of its requests); forks inherit their parent's figures.
    # reconciliations: the latest result per session, for `tokens doctor` and reports.
    _run(
        db,
        """
        CREATE TABLE client_totals (
            session_id TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            taken_at TEXT NOT NULL,
            total_cost_micros INTEGER NOT NULL,
            model_usage TEXT NOT NULL,
            unknown_model_cost INTEGER NOT NULL DEFAULT 0,
            path TEXT,
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (session_id, fingerprint)
        );

        CREATE TABLE shared_requests (
            message_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            owner_session TEXT,
            PRIMARY KEY (message_id, session_id)
        ) WITHOUT ROWID;
        CREATE INDEX shared_requests_by_session ON shared_requests (session_id);
        CREATE INDEX shared_requests_by_owner ON shared_requests (owner_session);

        CREATE TABLE reconciliations (
            session_id TEXT PRIMARY KEY,
            checked_at TEXT NOT NULL,
            taken_at TEXT NOT NULL,
            parent_session TEXT,
            client_cost_micros INTEGER NOT NULL,
            ledger_cost_micros INTEGER NOT NULL,
            requests INTEGER NOT NULL,
            reconciled_cost_micros INTEGER NOT NULL DEFAULT 0,
            reconciled_tokens TEXT NOT NULL,
            above TEXT NOT NULL,
            unknown_model_cost INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX requests_by_source ON requests (source) WHERE source = 'reconciled'
        """,
    )


@migration
def m011_subscription_windows(db: sqlite3.Connection) -> None:
    # The latest usage of the subscription's own windows (Claude Code's status line input `rate_limits`: the
    # 5-hour and weekly windows, the spend limit), one row per window, written only when a value changes.
    # used_percentage is what the provider reports (0-100); resets_at is ISO UTC.
    _run(
        db,
        """
        CREATE TABLE subscription_windows (
            name TEXT PRIMARY KEY,
            used_percentage REAL NOT NULL,
            resets_at TEXT,
            used_usd REAL,
            limit_usd REAL,
            period TEXT,
            observed_at TEXT NOT NULL,
            session_id TEXT
        )
        """,
    )


# the microsecond form the ledger's own clocks wrote before m012: `YYYY-MM-DDTHH:MM:SS.ffffffZ`
_DIGIT = "[0-9]"
_MICROSECONDS = f"{_DIGIT * 4}-{_DIGIT * 2}-{_DIGIT * 2}T{_DIGIT * 2}:{_DIGIT * 2}:{_DIGIT * 2}.{_DIGIT * 6}Z"


@migration
def m012_millisecond_timestamps(db: sqlite3.Connection) -> None:
    # The ledger's clocks wrote microseconds while periods and transcripts write milliseconds: `...:05.5Z` style
    # text of two widths does not sort as time (".123456Z" > ".123Z" though a row may be earlier). Every text
    # column's value in the microsecond form is cut to milliseconds, as clock.timestamp writes from now on; no
    # unique key holds a timestamp, and requests' rollup trigger moves nothing (the hour is unchanged).
    tables = [row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    for table in tables:
        for _cid, column, declared, *_rest in db.execute(f'PRAGMA table_info("{table}")').fetchall():
            if declared.upper() == "TEXT":
                db.execute(f'UPDATE "{table}" SET "{column}" = substr("{column}", 1, 23) || \'Z\' '
                           f'WHERE "{column}" GLOB ?', (_MICROSECONDS,))


@migration
def m013_delivery_hint_prefix(db: sqlite3.Connection) -> None:
    # How the client that queued a delivery spells commands (hints.Hints' prefix: in Claude Code the slash command
    # of the install route), stored with the delivery so that the sender, which loads no adapter, renders the
    # alert's commands the way that user types them. NULL: queued before this column, or by no client; the alert
    # then names the terminal commands only.
    _run(db, "ALTER TABLE deliveries ADD COLUMN hint_prefix TEXT")


@migration
def m014_team_sync(db: sqlite3.Connection) -> None:
    # Team mode (token_budget/team/): what of this ledger the team server has. team_link holds one row once this
    # data dir syncs with a team; from then on the triggers mark every written request in team_unpushed (before it,
    # a condition on an empty table is all they cost), the sync process pushes the marked rows and records what the
    # server got in team_pushed, so a hook adds only the usage the server's totals do not have yet. team_claims:
    # this machine's team alerts and whether the server gave it the claim.
    _run(
        db,
        """
        CREATE TABLE team_link (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            team TEXT NOT NULL,
            server TEXT NOT NULL,
            member TEXT NOT NULL,
            since TEXT NOT NULL,
            linked_at TEXT NOT NULL
        );
        CREATE TABLE team_unpushed (message_id TEXT PRIMARY KEY) WITHOUT ROWID;
        CREATE TABLE team_pushed (
            message_id TEXT PRIMARY KEY,
            timestamp TEXT NOT NULL,
            model TEXT NOT NULL,
            workflow TEXT,
            is_sidechain INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cache_creation_5m_tokens INTEGER NOT NULL DEFAULT 0,
            cache_creation_1h_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            total_tokens INTEGER NOT NULL DEFAULT 0,
            cost_micros INTEGER NOT NULL DEFAULT 0,
            pushed_at TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE team_claims (
            key TEXT NOT NULL,
            limit_tokens INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            decided_at TEXT NOT NULL,
            PRIMARY KEY (key, limit_tokens)
        )
        """,
    )
    mark = "INSERT OR IGNORE INTO team_unpushed (message_id) VALUES (NEW.message_id)"
    for event in ("INSERT", "UPDATE"):  # not _run(): trigger bodies hold semicolons
        db.execute(f"CREATE TRIGGER requests_team_{event.lower()} AFTER {event} ON requests "
                   f"WHEN EXISTS (SELECT 1 FROM team_link) BEGIN {mark}; END")


@migration
def m015_team_mark_once(db: sqlite3.Connection) -> None:
    # m014's triggers marked with INSERT OR IGNORE, but SQLite lets the statement that fires a trigger override its
    # conflict clause, and an upsert's DO UPDATE (a request that grew: the ledger's every write) overrides it with
    # ABORT: a request growing while still spooled failed the hook's whole transaction. Mark only what is unmarked.
    mark = ("INSERT INTO team_unpushed (message_id) SELECT NEW.message_id WHERE NOT EXISTS "
            "(SELECT 1 FROM team_unpushed WHERE message_id = NEW.message_id)")
    for event in ("INSERT", "UPDATE"):  # not _run(): trigger bodies hold semicolons
        db.execute(f"DROP TRIGGER requests_team_{event.lower()}")
        db.execute(f"CREATE TRIGGER requests_team_{event.lower()} AFTER {event} ON requests "
                   f"WHEN EXISTS (SELECT 1 FROM team_link) BEGIN {mark}; END")


# The figures a request's spool row carries (m016), as the requests table names them.
SPOOL_FIGURES = ("timestamp", "model", "workflow", "input_tokens", "output_tokens", "cache_creation_5m_tokens",
                 "cache_creation_1h_tokens", "cache_read_tokens", "cost_micros")


@migration
def m016_team_spool_figures(db: sqlite3.Connection) -> None:
    # Every ingesting hook in team mode sums the spool (TeamSpool.unpushed_usage). Driven from team_unpushed through
    # the requests' message-id index and team_pushed, each spooled request cost a fresh hook process two random page
    # reads: about 6 µs a row, half a millisecond for a busy sync interval's spool, and more the longer the server
    # is away. The spool row now carries the request's figures as they are now, kept by the triggers (which write
    # that row anyway), and `pushed`: whether team_pushed holds an earlier version of it (set when it is marked and
    # by mark_pushed). The sum reads the spool's own few pages, and team_pushed only for requests that grew after a
    # push. A deleted request's row keeps no figures (timestamp NULL), as the join it replaces found none.
    columns = ["timestamp TEXT", "model TEXT", "workflow TEXT"]
    columns += [f"{name} INTEGER NOT NULL DEFAULT 0" for name in SPOOL_FIGURES[3:]]
    for column in [*columns, "pushed INTEGER NOT NULL DEFAULT 0"]:
        db.execute(f"ALTER TABLE team_unpushed ADD COLUMN {column}")
    figures = ", ".join(SPOOL_FIGURES)
    db.execute(f"UPDATE team_unpushed SET ({figures}) = (SELECT {', '.join(f'r.{f}' for f in SPOOL_FIGURES[:3])}, "
               + ", ".join(f"COALESCE(r.{f}, 0)" for f in SPOOL_FIGURES[3:])
               + " FROM requests r WHERE r.message_id = team_unpushed.message_id), "
               "pushed = EXISTS (SELECT 1 FROM team_pushed p WHERE p.message_id = team_unpushed.message_id)")
    create_team_spool_triggers(db)


def create_team_spool_triggers(db: sqlite3.Connection) -> None:
    """The triggers that keep the team spool (m016's), replacing any earlier version: m016 creates them, m017
    drops them from a ledger no team is linked to, and TeamSpool.link_team creates them again."""
    figures = ", ".join(SPOOL_FIGURES)
    new = ", ".join(f"NEW.{f}" for f in SPOOL_FIGURES)
    mark = (f"UPDATE team_unpushed SET ({figures}) = ({new}) WHERE message_id = NEW.message_id; "
            f"INSERT INTO team_unpushed (message_id, {figures}, pushed) SELECT NEW.message_id, {new}, "
            "EXISTS (SELECT 1 FROM team_pushed WHERE message_id = NEW.message_id) WHERE NOT EXISTS "
            "(SELECT 1 FROM team_unpushed WHERE message_id = NEW.message_id)")
    for event in ("INSERT", "UPDATE"):  # not _run(): trigger bodies hold semicolons
        db.execute(f"DROP TRIGGER IF EXISTS requests_team_{event.lower()}")
        db.execute(f"CREATE TRIGGER requests_team_{event.lower()} AFTER {event} ON requests "
                   f"WHEN EXISTS (SELECT 1 FROM team_link) BEGIN {mark}; END")
    db.execute("DROP TRIGGER IF EXISTS requests_team_delete")
    db.execute("CREATE TRIGGER requests_team_delete AFTER DELETE ON requests WHEN EXISTS (SELECT 1 FROM team_link) "
               "BEGIN UPDATE team_unpushed SET timestamp = NULL WHERE message_id = OLD.message_id; END")


@migration
def m017_team_triggers_only_when_linked(db: sqlite3.Connection) -> None:
    # The spool's triggers cost more than "a condition on an empty table" (m014): every connection parses them with
    # the schema, and every statement that writes a request compiles them, in every hook: about 0.2 ms of each
    # ingesting hook. A ledger no team is linked to drops them; TeamSpool.link_team creates them with the link.
    if db.execute("SELECT 1 FROM team_link").fetchone() is None:
        for event in ("insert", "update", "delete"):
            db.execute(f"DROP TRIGGER IF EXISTS requests_team_{event}")
