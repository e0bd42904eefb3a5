"""The ledger: one SQLite row per API request, written idempotently, safe under parallel writers.

Correctness rests on SQLite, not on an outside lock: every read-source-then-write step runs inside one
BEGIN IMMEDIATE transaction (the database's single writer lock), and the upsert keeps the larger usage, so a
replayed or concurrent write can neither lose nor double count a request. Standard library only: the hook uses it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence

from . import clock
from .errors import LedgerError
from .migrations import MIGRATIONS, migrate
from .models import UsageEvent
from .paths import LEDGER_NAME, LEDGER_VERSION_SUFFIX, check_private, ensure_private_dir

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from typing import Any

    from .paths import PathLike
    from .pricing import PriceTable

BUSY_TIMEOUT_MS = 60_000
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
    placeholders = ", ".join("?" for _ in ROW_COLUMNS)
    return (
        f"INSERT INTO requests ({', '.join(ROW_COLUMNS)}) VALUES ({placeholders}) "
        f"ON CONFLICT(message_id) DO UPDATE SET {', '.join(sets)} WHERE {wins}"
    )


def replaces(new: UsageEvent, held: UsageEvent) -> bool:
    """Does `new` win the request from `held` (same message id)? The rule UPSERT_SQL applies in the ledger."""
    if new.is_sidechain != held.is_sidechain:
        return held.is_sidechain
    return new.total_tokens > held.total_tokens


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


def version_path(ledger_path: PathLike) -> str:
    return os.fspath(ledger_path) + LEDGER_VERSION_SUFFIX


def bump_version(ledger_path: PathLike) -> None:
    """Give the ledger a new version token, under the writer lock and before the commit: a reader that saw the
    old token (the hooks' idle fast path, which answers without opening SQLite) can then never take a state
    computed before this write for a current one, even if this writer dies right after its commit."""
    fd = os.open(version_path(ledger_path), os.O_WRONLY | os.O_CREAT, 0o600)
    try:  # always 16 bytes, written over the last token: no truncation (a half-written token only ever mismatches)
        os.write(fd, os.urandom(8).hex().encode())
    finally:
        os.close(fd)


class _Transaction:
    """Ledger.transaction()'s context manager (a class, not contextlib: the hook does not import contextlib)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.ledger.db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise storage_error(self.ledger.path, exc) from exc
        try:
            bump_version(self.ledger.path)
        except OSError as exc:
            self.ledger.db.execute("ROLLBACK")
            raise storage_error(self.ledger.path, sqlite3.OperationalError(f"{exc.strerror}: {exc.filename}")) from exc
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


class Ledger:
    """An open ledger database. Use `Ledger.open(data_dir)`."""

    def __init__(self, db: sqlite3.Connection, path: str) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(cls, data_dir: PathLike, *, name: str = LEDGER_NAME) -> Ledger:
        ensure_private_dir(data_dir)
        path = os.path.join(data_dir, name)
        try:
            if os.path.islink(path):
                raise LedgerError(f"The ledger {path} is a symbolic link; refusing to use it.",
                                  "Move the link away; the ledger must be a regular file in the data dir.")
            if not os.path.exists(path):
                os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600))
            check_private(path, os.lstat(path), "ledger")
            db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            if migrate(db):
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
            current = db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        except sqlite3.DatabaseError as exc:
            raise storage_error(path, exc) from exc
        if current:
            return cls(db, path)
        db.close()
        return cls.open(data_dir, name=name)

    def close(self) -> None:
        self.db.close()

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
        # rowcount, not total_changes: that one also counts the rows the hourly_totals triggers write.
        changed = self.db.executemany(UPSERT_SQL, rows).rowcount
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

    # -- reading ---------------------------------------------------------------------------------------------

    def rows(self, *, since: str | None = None, until: str | None = None, session: str | None = None,
             limit: int | None = None, newest_first: bool = False) -> list[sqlite3.Row]:
        """Request rows, oldest first; `since`/`until` are UTC ISO bounds (inclusive, exclusive)."""
        where, args = self._filters(since, until, session)
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT * FROM requests{where} ORDER BY timestamp {order}, message_id {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        cursor = self.db.execute(sql, args)
        cursor.row_factory = sqlite3.Row
        return cursor.fetchall()

    def totals(self, *, since: str | None = None, until: str | None = None,
               session: str | None = None) -> dict[Any, dict[str, int]]:
        """Sum every token class and cost over a time range (keyed None, the one group)."""
        where, args = self._filters(since, until, session)
        sql = (
            "SELECT NULL, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_5m_tokens), "
            f"SUM(cache_creation_1h_tokens), SUM(cache_read_tokens), SUM(cost_micros) FROM requests{where} GROUP BY 1"
        )
        result: dict[Any, dict[str, int]] = {}
        for row in self.db.execute(sql, args):
            result[row[0]] = dict(zip(
                ("requests", "input", "output", "cache_creation_5m", "cache_creation_1h", "cache_read", "cost_micros"),
                (v or 0 for v in row[1:]), strict=True,
            ))
            result[row[0]]["cache_creation"] = result[row[0]]["cache_creation_5m"] + result[row[0]]["cache_creation_1h"]
        return result

    @staticmethod
    def _filters(since: str | None, until: str | None, session: str | None) -> tuple[str, list[Any]]:
        clauses, args = [], []
        if since:
            clauses.append("timestamp >= ?")
            args.append(since)
        if until:
            clauses.append("timestamp < ?")
            args.append(until)
        if session:
            clauses.append("session_id = ?")
            args.append(session)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]


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
