"""The ledger: the SQLite backend of storage.Storage. One row per API request, written idempotently, safe under
parallel writers; and every query the core runs, as a method whose contract storage.py states. The queries no hook
decision runs are in the backend's other modules (ledger_reports, ledger_outbox, ledger_reconcile, ledger_team,
ledger_diagnostics), loaded at their first use (_DefinedIn).

Correctness rests on SQLite, not on an outside lock: every read-source-then-write step runs inside one
BEGIN IMMEDIATE transaction (the database's single writer lock), and the upsert keeps the larger usage, so a
replayed or concurrent write can neither lose nor double count a request. Standard library only: the hook uses it.
"""

from __future__ import annotations

import os
import stat

from . import clock
from .errors import LedgerError
from .lean_sqlite import dict_rows, sqlite3
from .models import UsageEvent
from .paths import LEDGER_NAME, LEDGER_VERSION_SUFFIX, check_private, ensure_private_dir

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from .models import Alert, Degradation
    from .paths import PathLike
    from .pricing import PriceTable

BUSY_TIMEOUT_MS = 60_000
# The WAL size past which a process that leaves the ledger open checkpoints it (leave_open): about 128 pages.
WAL_TRIM_BYTES = 512 << 10
USAGE_COLUMNS = (
    "timestamp", "model", "input_tokens", "output_tokens", "cache_creation_5m_tokens",
    "cache_creation_1h_tokens", "cache_read_tokens", "total_tokens", "speed", "service_tier",
    "cost_micros", "cost_status",
)  # fmt: skip
ATTRIBUTION_COLUMNS = (
    "request_id", "session_id", "project", "cwd", "git_branch", "agent_id", "agent_type", "is_sidechain",
    "workflow", "workflow_run_id", "phase",
)  # fmt: skip
ROW_COLUMNS = ("message_id", *USAGE_COLUMNS, *ATTRIBUTION_COLUMNS, "source", "recorded_at")


CLASS_COLUMNS = {
    "input": ("input_tokens",),
    "output": ("output_tokens",),
    "cache_creation": ("cache_creation_5m_tokens", "cache_creation_1h_tokens"),
    "cache_read": ("cache_read_tokens",),
}


def counted_sql(classes: Sequence[str]) -> str:
    """The SQL expression for the tokens budgets count, from the configured token classes."""
    return " + ".join(c for cls in classes for c in CLASS_COLUMNS[cls]) or "0"


def _upsert_sql() -> str:
    # One line wins a request whole (usage, timestamp and so its day, and attribution), never a mix of two lines:
    # a parent's own line beats a sidechain replay of it whatever their sizes, as billing and ccusage do; lines of
    # the same kind compete on the largest total (the final streaming value, not an early partial one).
    wins = ("(requests.is_sidechain > excluded.is_sidechain OR (requests.is_sidechain = excluded.is_sidechain "
            "AND excluded.total_tokens > requests.total_tokens))")
    sets = [f"{c} = excluded.{c}" for c in (*USAGE_COLUMNS, *ATTRIBUTION_COLUMNS)]
    sets.append("updated_at = excluded.recorded_at")
    return f"{INSERT_SQL} ON CONFLICT(message_id) DO UPDATE SET {', '.join(sets)} WHERE {wins}"


def replaces(new: UsageEvent, held: UsageEvent) -> bool:
    """Does `new` win the request from `held` (same message id)? The rule UPSERT_SQL applies in the ledger."""
    if new.is_sidechain != held.is_sidechain:
        return held.is_sidechain
    return new.total_tokens > held.total_tokens


# A request the ledger does not hold yet, inside the transaction that found it absent (record): a plain insert
# compiles only the insert triggers, where the upsert compiles the update ones too (a tenth of a millisecond of
# each hook that records a new request).
INSERT_SQL = f"INSERT INTO requests ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' for _ in ROW_COLUMNS)})"
UPSERT_SQL = _upsert_sql()


def _nearly_full(folder: str) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < (1 << 20)


def storage_error(path: PathLike, exc: Exception) -> LedgerError:
    """A LedgerError for a SQLite failure, with the repair for the usual causes."""
    text = str(exc)
    folder = os.path.dirname(path)
    if "full" in text or ("I/O" in text and _nearly_full(folder)):  # a full tmpfs shows as an I/O error
        hint = f"Free some space on the disk holding {folder}; nothing already recorded was lost."
        return LedgerError(f"The ledger {path} cannot be written: the disk is full.", hint)
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        hint = f"Make {folder} and its files writable, or choose another data dir with TOKEN_BUDGET_HOME."
        return LedgerError(f"The ledger {path} cannot be written ({text}).", hint)
    if "locked" in text or "busy" in text:
        return LedgerError(f"The ledger {path} stayed locked by another process ({text}).",
                           "Another tokens process held it too long; this event is retried by the next hook.")
    return LedgerError(f"The ledger {path} cannot be used: {text}.",
                       "Run `tokens doctor` for the repair; `tokens import` rebuilds it from Claude Code's "
                       "transcripts.")


def _message_id(row: tuple[Any, ...]) -> str:
    return row[0]  # type: ignore[no-any-return]


def strongest(events: Sequence[UsageEvent], contested: set[str] | None = None) -> list[UsageEvent]:
    """The winning line per message id (`replaces`): one write per request instead of one per line, and the same
    winner whatever order the lines of a batch came in. Message ids seen under two sessions go into `contested`."""
    best: dict[str, UsageEvent] = {}
    for event in events:
        held = best.get(event.message_id)
        if held is None:
            best[event.message_id] = event
            continue
        if contested is not None and held.session_id != event.session_id:
            contested.add(event.message_id)
        if replaces(event, held):
            best[event.message_id] = event
    return list(best.values())


MOVED = "moved"  # Ledger.expected_version once another writer's token was found: no token is ever this


def version_path(ledger_path: PathLike) -> str:
    return os.fspath(ledger_path) + LEDGER_VERSION_SUFFIX


def bump_version(ledger_path: PathLike, expected: str | None = None) -> str | None:
    """Give the ledger a new version token, under the writer lock and before the commit: a reader that saw the
    old token (the hooks' idle fast path, which answers without opening SQLite) can then never take a state
    computed before this write for a current one, even if this writer dies right after its commit. With
    `expected` (a token the caller knew), returns the new token if the one it replaces was that one, else None."""
    fd = os.open(version_path(ledger_path), (os.O_WRONLY if expected is None else os.O_RDWR) | os.O_CREAT, 0o600)
    try:  # always 16 bytes, written over the last token: no truncation (a half-written token only ever mismatches)
        held = None
        if expected is not None:
            held = os.read(fd, 64).decode("ascii", "replace")
            os.lseek(fd, 0, os.SEEK_SET)
        token = os.urandom(8).hex()
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    return token if held == expected else None


class _Transaction:
    """Ledger.transaction()'s context manager (a class, not contextlib: the hook does not import contextlib)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.ledger.db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise storage_error(self.ledger.path, exc) from exc
        expected = self.ledger.expected_version
        try:
            token = bump_version(self.ledger.path, expected)
        except OSError as exc:
            self.ledger.db.execute("ROLLBACK")
            raise storage_error(self.ledger.path, sqlite3.OperationalError(f"{exc.strerror}: {exc.filename}")) from exc
        if expected is not None:
            self.ledger.expected_version = token or MOVED
        return self.ledger.db

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        db = self.ledger.db
        try:
            if kind is None:
                db.execute("COMMIT")
                return
            if db.in_transaction:
                db.execute("ROLLBACK")
        except sqlite3.DatabaseError as failure:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise storage_error(self.ledger.path, failure) from failure
        if isinstance(exc, sqlite3.DatabaseError):
            raise storage_error(self.ledger.path, exc) from exc


class _DefinedIn:
    """A Ledger method written in another module of the SQLite backend, which Python loads at the method's first
    use. Every ingesting hook loads ledger.py, and most queries never run there (reports, the outbox's sender,
    reconciliation, the team spool, diagnostics): this module keeps what the hooks run, and each of the others
    holds one concept's queries as functions of the ledger (`def rows(self: Ledger, …)`). The first lookup puts
    the function itself on the class, so from then on `Ledger.rows` is that plain function: the same signature,
    docstring and call cost as a method defined here."""

    def __init__(self, module: str) -> None:
        self.module = module

    def __set_name__(self, owner: type, name: str) -> None:
        self.owner, self.name = owner, name

    def __get__(self, ledger: object, owner: type | None = None) -> Any:
        module = __import__(f"{__package__}.{self.module}", fromlist=[self.name])
        method = getattr(module, self.name)
        setattr(self.owner, self.name, method)
        return method if ledger is None else method.__get__(ledger, owner)


class Ledger:
    """An open ledger database, implementing storage.Storage (the methods' contracts are documented there). Use
    `Ledger.open(data_dir)`."""

    # The hooks' headroom (claude/hook.py) sets these for one ingest. `expected_version`: the version token its
    # record was written at; each write transaction checks, under the writer lock, that the token it replaces is
    # the one this connection last knew, and keeps its own new token here (MOVED once another writer came between).
    # `recorded`: collects (model, input, output, cache creation and cache read tokens, cost in micro-USD, cost
    # status) of every request row written.
    expected_version: str | None = None
    recorded: list[tuple[Any, ...]] | None = None

    def __init__(self, db: sqlite3.Connection, path: str) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(cls, data_dir: PathLike, *, name: str = LEDGER_NAME) -> Ledger:
        ensure_private_dir(data_dir)
        path = os.path.join(data_dir, name)
        try:
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600))
                st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                raise LedgerError(f"The ledger {path} is a symbolic link; refusing to use it.",
                                  "Move the link away; the ledger must be a regular file in the data dir.")
            check_private(path, st, "ledger")
            db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)  # the busy timeout
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION and _migrate(db):
                bump_version(path)
        except sqlite3.DatabaseError as exc:
            raise storage_error(path, exc) from exc
        except OSError as exc:
            raise LedgerError(f"The ledger {path} cannot be opened: {exc.strerror}.",
                              "Check the data dir's permissions and free space.") from exc
        return cls(db, path)

    @classmethod
    def open_readonly(cls, data_dir: PathLike, *, name: str = LEDGER_NAME, timeout: float = 2.0) -> Ledger:
        """For a reader that must neither write nor wait long (the status line): a read-only connection to an
        existing ledger. A schema older than this code gets the normal open, which migrates it."""
        path = os.path.join(data_dir, name)
        uri = path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
        try:
            db = sqlite3.connect(f"file:{uri}?mode=ro", uri=True, timeout=timeout)
            current = db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        except sqlite3.DatabaseError as exc:
            raise storage_error(path, exc) from exc
        if current:
            return cls(db, path)
        db.close()
        return cls.open(data_dir, name=name)

    def close(self) -> None:
        self.db.close()

    def wrote(self) -> bool:
        """Has this connection changed any row (inserted, updated or deleted)?"""
        return self.db.total_changes > 0

    def others_commits(self) -> int:
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def leave_open(self) -> None:
        """A process that ends without closing its connection (hook._LeftOpen) leaves the WAL behind, and the next
        process to find the ledger unused rebuilds the WAL index by reading every frame of it before its first
        query. Nor can a checkpoint alone shorten it: that rebuild forgets what was checkpointed, so the WAL would
        never restart, and past SQLite's autocheckpoint (1000 pages) every commit would copy all of it into the
        database again. So once the WAL passes WAL_TRIM_BYTES, checkpoint it and truncate it to nothing
        (TRUNCATE: every commit in it reaches the database file first, synced); while another process reads or
        writes, skip without waiting (busy timeout 0): a later hook does it."""
        try:
            if os.stat(self.path + "-wal").st_size <= WAL_TRIM_BYTES:
                return
            self.db.execute("PRAGMA busy_timeout = 0")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except (OSError, sqlite3.Error):
            pass

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> _Transaction:
        """One write transaction holding SQLite's writer lock from its first statement (BEGIN IMMEDIATE):
        `with ledger.transaction() as db: …`.

        Storage failures (full disk, read-only or damaged file) become a LedgerError that says what to do; the
        transaction is rolled back, so nothing recorded before is lost.
        """
        return _Transaction(self)

    # -- writing ---------------------------------------------------------------------------------------------

    def record(self, events: Sequence[UsageEvent], *, source: str, prices: PriceTable | None = None) -> tuple[int, int]:
        """Upsert events; returns (inserted, updated). Call inside `transaction()` to pair it with other writes."""
        if not events:
            return 0, 0
        lines = events
        contested: set[str] = set()
        events = strongest(events, contested)
        existing = self._owners([e.message_id for e in events])
        for event in events:  # a row another session owns already: a fork's copy, or the fork read first
            owner = existing.get(event.message_id)
            if owner is not None and owner != event.session_id:
                contested.add(event.message_id)
        runs = self._workflow_runs({e.session_id for e in events if e.session_id})
        now = clock.timestamp()
        rows = [self._row(e, source, now, prices, runs) for e in events]
        rows.sort(key=_message_id)  # key order walks the primary key's B-tree once instead of jumping around it
        if self.recorded is not None:
            self.recorded.extend((r[2], r[3], r[4], r[5] + r[6], r[7], r[11], r[12]) for r in rows)  # ROW_COLUMNS
        # rowcount, not total_changes: that one also counts the rows the hourly_totals triggers write.
        changed = 0
        if self.db.in_transaction:  # no writer can add a row since _owners read (BEGIN IMMEDIATE holds the lock;
            # a deferred transaction's write would fail, never overwrite): what it did not find is new
            new = [row for row in rows if row[0] not in existing]
            if new:
                changed += self.db.executemany(INSERT_SQL, new).rowcount
                rows = [row for row in rows if row[0] in existing]
        if rows:
            changed += self.db.executemany(UPSERT_SQL, rows).rowcount
        if contested:
            self._note_shared([e for e in lines if e.message_id in contested], existing)
        inserted = len({e.message_id for e in events} - set(existing))
        return inserted, max(changed - inserted, 0)

    def _owners(self, ids: list[str]) -> dict[str, str | None]:
        """message id -> the session owning its row, for the ids that have one."""
        found: dict[str, str | None] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT message_id, session_id FROM requests WHERE message_id IN ({marks})", chunk)
            found.update(rows)
        return found

    def _note_shared(self, lines: Sequence[UsageEvent], owners: dict[str, str | None]) -> None:
        """Remember every session that holds a copy of a request it does not own (forks and /branch copy lines
        into a new session): reconciliation needs each session's requests, whoever owns the row. `lines` are the
        lines of the message ids seen under two sessions (record() finds them on its way)."""
        sessions: dict[str, set[str]] = {}
        for line in lines:
            if line.session_id:
                sessions.setdefault(line.message_id, set()).add(line.session_id)
        contested = [m for m, seen in sessions.items()
                     if len(seen) > 1 or owners.get(m) not in (None, *seen)]
        if not contested:
            return
        now_owned = self._owners(contested)
        pairs = []
        for message_id in contested:
            owner = now_owned.get(message_id)
            holders = sessions[message_id] | ({owners[message_id]} if owners.get(message_id) else set())
            pairs += [(message_id, s, owner) for s in holders if s != owner]
            if owner:
                self.db.execute("DELETE FROM shared_requests WHERE message_id = ? AND session_id = ?",
                                (message_id, owner))
            self.db.execute("UPDATE shared_requests SET owner_session = ? WHERE message_id = ?", (owner, message_id))
        self.db.executemany("INSERT OR IGNORE INTO shared_requests (message_id, session_id, owner_session) "
                            "VALUES (?, ?, ?)", pairs)

    def _workflow_runs(self, sessions: set[str]) -> dict[str, list[tuple[Any, ...]]]:
        runs: dict[str, list[tuple[Any, ...]]] = {}
        if not sessions:
            return runs
        marks = ",".join("?" * len(sessions))
        for row in self.db.execute(
            f"SELECT session_id, id, name, phase, started_at, ended_at FROM workflow_runs "
            f"WHERE session_id IN ({marks}) ORDER BY started_at",
            list(sessions),
        ):
            runs.setdefault(row[0], []).append(row[1:])
        return runs

    @staticmethod
    def _row(event: UsageEvent, source: str, now: str, prices: PriceTable | None,
             runs: dict[str, list[tuple[Any, ...]]]) -> tuple[Any, ...]:
        if prices is not None:
            cost = prices.cost(event)
            cost_micros, cost_status = cost.micros, cost.status
        else:
            cost_micros, cost_status = 0, "unpriced"
        run_id = workflow = phase = None
        session_runs = runs.get(event.session_id or "")
        if session_runs:
            for rid, name, run_phase, started, ended in session_runs:
                if started <= event.timestamp and (ended is None or event.timestamp < ended):
                    run_id, workflow, phase = rid, name, run_phase
        e = event  # spelled out in ROW_COLUMNS order (a test pins it): a dict per row cost an import seconds
        return (
            e.message_id, e.timestamp, e.model, e.input_tokens, e.output_tokens, e.cache_creation_5m_tokens,
            e.cache_creation_1h_tokens, e.cache_read_tokens, e.total_tokens, e.speed, e.service_tier, cost_micros,
            cost_status, e.request_id, e.session_id, e.project, e.cwd, e.git_branch, e.agent_id, e.agent_type,
            int(e.is_sidechain), workflow, run_id, phase, source, now,
        )

    # -- sums for budgets, status and the log (storage.UsageStore) -------------------------------------------

    def totals_by_model(self, classes: Sequence[str], start: str, end: str) -> list[tuple[str, int, int]]:
        """(model, counted tokens, cost in micro-USD) over the requests in [start, end) (canonical UTC bounds),
        one row per model that has requests there.

        The whole UTC hours inside the period come from the hourly_totals rollup (kept by triggers in the writing
        transaction), the partial hours at its edges from the requests themselves: exact in any time zone, and a
        month costs ~720 rollup rows per model instead of every request of the month.
        """
        counted = counted_sql(classes)
        canonical = len(start) == len(end) == 24 and start[10] == end[10] == "T"
        first = (start[:13] if start[13:] == HOUR_SUFFIX else _next_hour(start)) if canonical else ""
        last = end[:13]
        if not canonical or first >= last:  # no whole hour inside: the live sum is as cheap
            return self.db.execute(
                f"SELECT model, COALESCE(SUM({counted}), 0), COALESCE(SUM(cost_micros), 0) FROM requests "
                "WHERE timestamp >= ? AND timestamp < ? GROUP BY model", (start, end),
            ).fetchall()
        live = (f"SELECT model, 1 AS n, {counted} AS used, cost_micros FROM requests "
                "WHERE timestamp >= ? AND timestamp < ?")
        return self.db.execute(
            "SELECT model, COALESCE(SUM(used), 0), COALESCE(SUM(cost_micros), 0) FROM ("
            f"SELECT model, requests AS n, {counted} AS used, cost_micros FROM hourly_totals "
            "WHERE hour >= ? AND hour < ? "
            f"UNION ALL {live} UNION ALL {live}) GROUP BY model HAVING SUM(n) > 0",
            (first, last, start, first + HOUR_SUFFIX, last + HOUR_SUFFIX, end),
        ).fetchall()

    def session_totals(self, classes: Sequence[str], session_id: str) -> tuple[int, int]:
        return self._sums(classes, "session_id = ?", (session_id,))

    def run_totals(self, classes: Sequence[str], run_id: int) -> tuple[int, int]:
        return self._sums(classes, "workflow_run_id = ?", (run_id,))

    def _sums(self, classes: Sequence[str], where: str, args: tuple[Any, ...]) -> tuple[int, int]:
        used, cost = self.db.execute(
            f"SELECT COALESCE(SUM({counted_sql(classes)}), 0), COALESCE(SUM(cost_micros), 0) FROM requests "
            f"WHERE {where}", args).fetchone()
        return used, cost

    def largest_run(self, classes: Sequence[str], workflow: str, start: str, end: str) -> int:
        return self.db.execute(  # type: ignore[no-any-return]
            f"SELECT COALESCE(MAX(t), 0) FROM (SELECT SUM({counted_sql(classes)}) AS t FROM requests "
            "WHERE workflow = ? AND timestamp >= ? AND timestamp < ? GROUP BY workflow_run_id)", (workflow, start, end),
        ).fetchone()[0]

    def counted_between(self, classes: Sequence[str], start: str, end: str) -> int:
        return self.db.execute(  # type: ignore[no-any-return]
            f"SELECT COALESCE(SUM({counted_sql(classes)}), 0) FROM requests WHERE timestamp >= ? AND timestamp <= ?",
            (start, end)).fetchone()[0]

    def counted_before(self, classes: Sequence[str], timestamp: str, message_id: str, *,
                       since: str | None = None, run_id: int | None = None) -> int:
        scope, arg = ("workflow_run_id = ?", run_id) if run_id is not None else ("timestamp >= ?", since or "")
        return self.db.execute(  # type: ignore[no-any-return]
            f"SELECT COALESCE(SUM({counted_sql(classes)}), 0) FROM requests WHERE {scope} "
            "AND (timestamp < ? OR (timestamp = ? AND message_id < ?))", (arg, timestamp, timestamp, message_id),
        ).fetchone()[0]

    def latest_main_request(self, session_id: str) -> tuple[str, str, int] | None:
        return self.db.execute(
            "SELECT model, timestamp, input_tokens + cache_creation_5m_tokens + cache_creation_1h_tokens + "
            "cache_read_tokens FROM requests WHERE session_id = ? AND is_sidechain = 0 ORDER BY timestamp DESC LIMIT 1",
            (session_id,)).fetchone()

    # -- alerts (storage.AlertStore) -------------------------------------------------------------------------

    def claim_alert(self, alert: Alert) -> bool:
        cursor = self.db.execute(
            "INSERT INTO alerts (key, scope, level, threshold, period, used, limit_tokens, workflow, "
            "recommendation, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET level = excluded.level, used = excluded.used, "
            "limit_tokens = excluded.limit_tokens, recommendation = excluded.recommendation, "
            "created_at = excluded.created_at, acked_at = NULL WHERE alerts.limit_tokens != excluded.limit_tokens",
            (alert.key, alert.scope, alert.level, alert.threshold, alert.period, alert.used, alert.limit,
             alert.workflow, alert.recommendation, alert.created_at),
        )
        return cursor.rowcount == 1

    def alert_limits(self, keys: Sequence[str]) -> dict[str, int]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        return dict(self.db.execute(f"SELECT key, limit_tokens FROM alerts WHERE key IN ({marks})",
                                    list(keys)).fetchall())

    def acknowledge(self, key: str | None, now: str) -> int:
        if key:
            return self.db.execute("UPDATE alerts SET acked_at = ? WHERE key = ? AND acked_at IS NULL",
                                   (now, key)).rowcount
        return self.db.execute("UPDATE alerts SET acked_at = ? WHERE acked_at IS NULL", (now,)).rowcount

    def acknowledged_limits(self, periods: Sequence[str]) -> dict[tuple[str, str], dict[int, int]]:
        out: dict[tuple[str, str], dict[int, int]] = {}
        marks = ",".join("?" * len(periods)) or "NULL"
        for scope, period, threshold, limit in self.db.execute(
            "SELECT scope, period, threshold, limit_tokens FROM alerts WHERE acked_at IS NOT NULL AND "
            f"(period IN ({marks}) OR period LIKE 'run-%')", tuple(periods),
        ):
            out.setdefault((scope, period), {})[threshold] = limit
        return out

    def acknowledged_thresholds(self, scopes: Sequence[str]) -> dict[tuple[str, str], set[int]]:
        out: dict[tuple[str, str], set[int]] = {}
        marks = ",".join("?" * len(scopes)) or "NULL"
        for scope, period, threshold in self.db.execute(
                f"SELECT scope, period, threshold FROM alerts WHERE acked_at IS NOT NULL AND scope IN ({marks})",
                tuple(scopes)):
            out.setdefault((scope, period), set()).add(threshold)
        return out

    # -- events and degradations (storage.EventStore) --------------------------------------------------------

    def record_event(self, *, level: str, kind: str, message: str, created_at: str, scope: str | None = None,
                     session_id: str | None = None, alert_key: str | None = None, detail: str | None = None,
                     shown_at: str | None = None) -> None:
        from .controls import KINDS as CONTROL_KINDS  # shown to the user by the next hook: shown_at stays empty

        if shown_at is None and kind not in CONTROL_KINDS:
            shown_at = created_at
        self.db.execute(
            "INSERT INTO events (created_at, level, kind, scope, session_id, alert_key, message, detail, shown_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (created_at, level, kind, scope, session_id, alert_key, message, detail, shown_at),
        )

    def has_event(self, kind: str, session_id: str | None, since: str) -> bool:
        return self.db.execute("SELECT 1 FROM events WHERE kind = ? AND session_id IS ? AND created_at >= ? LIMIT 1",
                               (kind, session_id, since)).fetchone() is not None

    def has_message(self, kind: str, message: str) -> bool:
        return self.db.execute("SELECT 1 FROM events WHERE kind = ? AND message = ? LIMIT 1",
                               (kind, message)).fetchone() is not None

    def last_change_detail(self, subject: str) -> str | None:
        row = self.db.execute("SELECT detail FROM events WHERE kind IN ('limit_change', 'mode_change') AND "
                              "json_extract(detail, '$.subject') = ? ORDER BY id DESC LIMIT 1", (subject,)).fetchone()
        return row[0] if row else None

    def take_unshown(self, now: str) -> list[str]:
        if self.db.execute("SELECT 1 FROM events WHERE shown_at IS NULL LIMIT 1").fetchone() is None:
            return []
        with self.transaction() as db:
            rows = db.execute("SELECT id, message FROM events WHERE shown_at IS NULL ORDER BY id").fetchall()
            if rows:
                marks = ",".join("?" * len(rows))
                db.execute(f"UPDATE events SET shown_at = ? WHERE id IN ({marks}) AND shown_at IS NULL",
                           [now, *(r[0] for r in rows)])
        return [r[1] for r in rows]

    def record_degradation(self, step: Degradation, created_at: str) -> None:
        self.db.execute(
            "INSERT INTO degradations (session_id, kind, tool, detail, from_model, to_model, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (step.session_id, step.kind, step.tool, step.detail, step.from_model, step.to_model, created_at),
        )

    def has_degradation(self, session_id: str | None, kind: str, since: str | None = None) -> bool:
        sql = "SELECT 1 FROM degradations WHERE session_id IS ? AND kind = ?"
        args: list[Any] = [session_id, kind]
        if since:
            sql += " AND created_at >= ?"
            args.append(since)
        return self.db.execute(sql + " LIMIT 1", args).fetchone() is not None

    # -- workflow runs (storage.WorkflowStore) ---------------------------------------------------------------

    def active_runs(self, session_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, session_id, name, phase, started_at, source FROM workflow_runs WHERE ended_at IS NULL"
        args: tuple[Any, ...] = ()
        if session_id is not None:
            sql += " AND session_id = ?"
            args = (session_id,)
        return dict_rows(self.db.execute(sql + " ORDER BY started_at DESC, id DESC", args))

    def start_run(self, session_id: str, name: str, now: str, *, phase: str | None = None,
                  source: str = "cli") -> int:
        self.end_runs(session_id, now)
        cursor = self.db.execute(
            "INSERT INTO workflow_runs (session_id, name, phase, started_at, source) VALUES (?, ?, ?, ?, ?)",
            (session_id, name, phase, now, source),
        )
        return int(cursor.lastrowid or 0)

    def set_run_phase(self, run_id: int, phase: str) -> None:
        self.db.execute("UPDATE workflow_runs SET phase = ? WHERE id = ?", (phase, run_id))

    def end_runs(self, session_id: str, now: str) -> int:
        return self.db.execute(
            "UPDATE workflow_runs SET ended_at = ? WHERE session_id = ? AND ended_at IS NULL", (now, session_id)
        ).rowcount

    def has_runs(self, session_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM workflow_runs WHERE session_id = ? LIMIT 1",
                               (session_id,)).fetchone() is not None

    # -- what hooks remember between runs (storage.SettingsStore) --------------------------------------------

    def window_rows(self) -> list[tuple[Any, ...]]:
        try:
            return self.db.execute("SELECT name, used_percentage, resets_at, used_usd, limit_usd, period, "
                                   "observed_at FROM subscription_windows").fetchall()
        except sqlite3.OperationalError:  # no such table: a read-only ledger not migrated yet
            return []

    def record_windows(self, rows: Sequence[tuple[Any, ...]], observed_at: str,
                       session_id: str | None = None) -> None:
        self.db.executemany(
            "INSERT INTO subscription_windows (name, used_percentage, resets_at, used_usd, limit_usd, period, "
            "observed_at, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "used_percentage = excluded.used_percentage, resets_at = excluded.resets_at, "
            "used_usd = excluded.used_usd, limit_usd = excluded.limit_usd, period = excluded.period, "
            "observed_at = excluded.observed_at, session_id = excluded.session_id",
            [(*row[:6], observed_at, session_id) for row in rows],
        )

    def seen_limits(self, project: str) -> str | None:
        row = self.db.execute("SELECT limits FROM limits_seen WHERE project = ?", (project,)).fetchone()
        return row[0] if row else None

    def remember_limits(self, project: str, limits: str, now: str) -> None:
        self.db.execute("INSERT INTO limits_seen (project, limits, updated_at) VALUES (?, ?, ?) ON CONFLICT(project) "
                        "DO UPDATE SET limits = excluded.limits, updated_at = excluded.updated_at",
                        (project, limits, now))

    # -- the outbox and its sender (storage.OutboxStore) -----------------------------------------------------

    def outbox_backlog(self) -> tuple[bool, bool]:
        to_enqueue, pending = self.db.execute(
            f"SELECT EXISTS (SELECT 1 FROM alerts WHERE {NOT_ENQUEUED}), "
            "EXISTS (SELECT 1 FROM deliveries WHERE state = 'pending')"
        ).fetchone()
        return bool(to_enqueue), bool(pending)

    def alerts_to_enqueue(self) -> list[tuple[str, int]]:
        return self.db.execute(f"SELECT key, threshold FROM alerts WHERE {NOT_ENQUEUED} ORDER BY created_at").fetchall()

    # -- reconciliation with the client's own totals (storage.ReconcileStore) --------------------------------

    def latest_client_totals(self, sessions: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        unique = sorted(set(sessions))
        for start in range(0, len(unique), 400):
            chunk = unique[start : start + 400]
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"SELECT session_id, MAX(taken_at) FROM client_totals "
                                         f"WHERE session_id IN ({marks}) GROUP BY session_id", chunk).fetchall())
        return found

    # -- read positions of append-only sources ---------------------------------------------------------------

    def read_positions(self, sources: Sequence[str]) -> dict[str, tuple[int, int, int, int, int]]:
        positions: dict[str, tuple[int, int, int, int, int]] = {}
        for start in range(0, len(sources), 500):  # SQLite caps the number of parameters per statement
            chunk = list(sources[start : start + 500])
            rows = self.db.execute(
                f"SELECT path, device, inode, size, mtime_ns, offset FROM transcript_offsets "
                f"WHERE path IN ({','.join('?' * len(chunk))})", chunk,
            )
            positions.update((r[0], r[1:]) for r in rows)
        return positions

    def read_position(self, source: str) -> tuple[int, int, int, str | None, int, int] | None:
        return self.db.execute(
            "SELECT device, inode, offset, head_hash, lines, malformed_lines FROM transcript_offsets WHERE path = ?",
            (source,),
        ).fetchone()

    def save_read_positions(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.db.executemany(
            "INSERT INTO transcript_offsets (path, device, inode, size, mtime_ns, offset, head_hash, lines, "
            "malformed_lines, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
            "device = excluded.device, inode = excluded.inode, size = excluded.size, mtime_ns = excluded.mtime_ns, "
            "offset = excluded.offset, head_hash = excluded.head_hash, lines = excluded.lines, "
            "malformed_lines = excluded.malformed_lines, updated_at = excluded.updated_at",
            rows,
        )

    # -- per-session memory ----------------------------------------------------------------------------------

    def remember_call(self, session_id: str, key: str, tool: str, summary: str, call_id: str | None,
                      now: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO tool_calls (session_id, key, tool, summary, tool_use_id, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)", (session_id, key, tool, summary, call_id, now))

    def recall_call(self, session_id: str, key: str) -> tuple[str, str | None, str] | None:
        return self.db.execute("SELECT summary, tool_use_id, created_at FROM tool_calls WHERE session_id = ? "
                               "AND key = ?", (session_id, key)).fetchone()

    def has_calls(self, session_id: str, *, keep_tool: str | None = None) -> bool:
        if keep_tool is None:
            sql, args = "SELECT 1 FROM tool_calls WHERE session_id = ? LIMIT 1", (session_id,)
        else:
            sql, args = "SELECT 1 FROM tool_calls WHERE session_id = ? AND tool != ? LIMIT 1", (session_id, keep_tool)
        return self.db.execute(sql, args).fetchone() is not None

    def forget_calls(self, session_id: str, *, keep_tool: str | None = None) -> None:
        if keep_tool is None:
            self.db.execute("DELETE FROM tool_calls WHERE session_id = ?", (session_id,))
        else:
            self.db.execute("DELETE FROM tool_calls WHERE session_id = ? AND tool != ?", (session_id, keep_tool))

    def set_session_model(self, session_id: str, model: str, now: str) -> None:
        self.db.execute("INSERT INTO session_state (session_id, model, model_set_at) VALUES (?, ?, ?) "
                        "ON CONFLICT(session_id) DO UPDATE SET model = excluded.model, "
                        "model_set_at = excluded.model_set_at", (session_id, model, now))

    def chosen_model(self, session_id: str) -> tuple[str | None, str] | None:
        return self.db.execute("SELECT model, model_set_at FROM session_state WHERE session_id = ?",
                               (session_id,)).fetchone()

    # -- defined in the backend's other modules, each loaded at its first use (_DefinedIn) ---------------------

    # What reports, the usage log, the dashboard and the CLI's listings read (storage.ReportStore and more).
    rows = _DefinedIn("ledger_reports")
    totals = _DefinedIn("ledger_reports")
    count = _DefinedIn("ledger_reports")
    latest_session = _DefinedIn("ledger_reports")
    report_rows = _DefinedIn("ledger_reports")
    subagent_starts = _DefinedIn("ledger_reports")
    reconciled_usage = _DefinedIn("ledger_reports")
    load_alert = _DefinedIn("ledger_reports")
    list_alerts = _DefinedIn("ledger_reports")
    open_alert_keys = _DefinedIn("ledger_reports")
    list_events = _DefinedIn("ledger_reports")
    list_degradations = _DefinedIn("ledger_reports")
    degradation_counts = _DefinedIn("ledger_reports")
    downgrades = _DefinedIn("ledger_reports")
    # The outbox's queue and its sender (storage.OutboxStore, but for what a hook asks on every decision).
    enqueue_delivery = _DefinedIn("ledger_outbox")
    mark_enqueued = _DefinedIn("ledger_outbox")
    deliveries_of = _DefinedIn("ledger_outbox")
    store_report = _DefinedIn("ledger_outbox")
    enqueue_report_delivery = _DefinedIn("ledger_outbox")
    stored_report = _DefinedIn("ledger_outbox")
    stored_reports = _DefinedIn("ledger_outbox")
    next_due_delivery = _DefinedIn("ledger_outbox")
    next_attempt_at = _DefinedIn("ledger_outbox")
    start_attempt = _DefinedIn("ledger_outbox")
    attempt_failed = _DefinedIn("ledger_outbox")
    attempt_succeeded = _DefinedIn("ledger_outbox")
    # Reconciliation with the client's own totals (storage.ReconcileStore, but for the lookup each ingest runs).
    add_client_totals = _DefinedIn("ledger_reconcile")
    sessions_to_reconcile = _DefinedIn("ledger_reconcile")
    client_snapshots = _DefinedIn("ledger_reconcile")
    shared_with = _DefinedIn("ledger_reconcile")
    return_copies = _DefinedIn("ledger_reconcile")
    session_figures = _DefinedIn("ledger_reconcile")
    reconciled_figures = _DefinedIn("ledger_reconcile")
    session_place = _DefinedIn("ledger_reconcile")
    drop_reconciled = _DefinedIn("ledger_reconcile")
    has_request = _DefinedIn("ledger_reconcile")
    set_cost = _DefinedIn("ledger_reconcile")
    record_reconciliation = _DefinedIn("ledger_reconcile")
    reconciliations = _DefinedIn("ledger_reconcile")
    # The team spool (storage.TeamSpool).
    team_link = _DefinedIn("ledger_team")
    link_team = _DefinedIn("ledger_team")
    unpushed_rows = _DefinedIn("ledger_team")
    mark_pushed = _DefinedIn("ledger_team")
    unpushed_usage = _DefinedIn("ledger_team")
    unpushed_count = _DefinedIn("ledger_team")
    has_unpushed = _DefinedIn("ledger_team")
    unclaimed_team_alerts = _DefinedIn("ledger_team")
    record_team_claim = _DefinedIn("ledger_team")
    # What `tokens doctor` checks (storage.Diagnostics, and ReadPositions.malformed_lines).
    malformed_lines = _DefinedIn("ledger_diagnostics")
    quick_check = _DefinedIn("ledger_diagnostics")
    pending_migrations = _DefinedIn("ledger_diagnostics")
    cost_statuses = _DefinedIn("ledger_diagnostics")
    unpriced_models = _DefinedIn("ledger_diagnostics")
    failed_deliveries = _DefinedIn("ledger_diagnostics")


# len(migrations.MIGRATIONS), the user_version of a ledger they all ran on: a ledger already there is current (the
# common open) without loading the migrations module. Only a hint: a ledger whose user_version differs gets
# migrations.migrate, which compares with the list itself (tests/test_migrate.py keeps the two equal).
SCHEMA_VERSION = 17


def _migrate(db: sqlite3.Connection) -> list[str]:
    from .migrations import migrate

    return migrate(db)


HOUR_SUFFIX = ":00:00.000Z"
# Claims whose deliveries are not (or, after a re-arm, no longer) in the outbox.
# A team alert's deliveries are enqueued by the team sync, and only on the one machine the team server gives its
# claim to (team/sync.py).
NOT_ENQUEUED = "(enqueued_at IS NULL OR enqueued_at != created_at) AND scope NOT LIKE 'team:%'"


def _next_hour(bound: str) -> str:
    from datetime import timedelta

    from .periods import iso, parse

    return iso(parse(bound[:13] + HOUR_SUFFIX) + timedelta(hours=1))[:13]


def reprice(ledger: Ledger, prices: PriceTable) -> tuple[int, dict[str, int]]:
    """Price every recorded request again with `prices` (after a price import): returns (rows whose cost or
    status changed, requests per cost status). One transaction; the hourly rollup follows through its triggers."""
    columns = ("message_id", "timestamp", "model", "input_tokens", "output_tokens", "cache_creation_5m_tokens",
               "cache_creation_1h_tokens", "cache_read_tokens", "speed", "source", "cost_micros", "cost_status")
    changes: list[tuple[int, str, str]] = []
    statuses: dict[str, int] = {}
    with ledger.transaction() as db:
        for (message_id, ts, model, i, o, w5, w1, r, speed, source, micros,
             status) in db.execute(f"SELECT {', '.join(columns)} FROM requests"):
            event = UsageEvent(message_id, ts, model, i, o, w5, w1, r, speed=speed)
            cost = prices.cost(event, per_request=source != "reconciled")
            statuses[cost.status] = statuses.get(cost.status, 0) + 1
            if (cost.micros, cost.status) != (micros, status):
                changes.append((cost.micros, cost.status, message_id))
        db.executemany("UPDATE requests SET cost_micros = ?, cost_status = ? WHERE message_id = ?", changes)
    return len(changes), statuses


def waiting_to_push(data_dir: PathLike) -> bool:
    """Whether requests wait in the team spool (TeamSpool.has_unpushed), asked by the team sync's loop between
    passes through a read-only connection that never writes; False when the ledger cannot be read."""
    try:
        with Ledger.open_readonly(data_dir, timeout=5) as ledger:
            return ledger.has_unpushed()
    except (LedgerError, sqlite3.Error):
        return False
