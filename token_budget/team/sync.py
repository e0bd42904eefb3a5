"""The team sync: a detached process (one per data dir, holding `team-sync.lock`) that pushes this machine's
unsynced ledger rows to the team server, pulls the team's totals into cache/team.json, and claims team alerts.

A hook never opens a socket: when team mode is on, a hook that ingested something calls `kick` (in the package's
__init__, so that the hook never imports this module), which (at most once per team.sync_interval) starts this
process through token_budget.detached, as the alert sender is started.
The process syncs, then again every interval while hooks keep showing activity or rows wait to be pushed, and
exits when idle. A server that is down, slow or refuses the credentials costs only this process: the rows stay
marked in the ledger's team spool and are pushed, once, when it answers again.

Order of one pass, chosen so that a hook never undercounts: push (server commit), pull totals (which now hold the
batch), write the cache, and only then unmark the pushed rows locally. A crash between those steps means the batch
is counted twice for a moment and pushed again (the server's upsert ignores it), never lost.
"""

from __future__ import annotations

import os
import sys
import time

from .. import clock, jsonlite
from . import DUE_NAME, LOCK_NAME, LOG_NAME, TeamSettings, cache_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..ledger import Ledger
    from ..paths import PathLike
    from .server import TeamServer

IDLE_EXIT = 600.0  # seconds without hook activity after which a failing sync gives up until the next hook
MAX_BACKOFF = 120.0
PUSH_CHUNK = 20_000  # rows read from the ledger per push round
TOP_MEMBERS = 10
ANSWER_IDLE_CLOSE = 60.0  # seconds without a `tokens team status` question before the answering connection closes


# -- the sync --------------------------------------------------------------------------------------------------


def log(data_dir: PathLike, message: str) -> None:
    from ..logfile import append

    append(os.path.join(os.fspath(data_dir), LOG_NAME), "team-sync", message)


def write_cache(data_dir: PathLike, cache: dict[str, Any]) -> None:
    from ..paths import write_atomically

    path = cache_path(data_dir)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    write_atomically(path, jsonlite.dumps(cache))


def _server_label(settings: TeamSettings) -> str:
    """Which server, for telling a relink apart: host, port and database, never credentials."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(settings.dsn())
    host = params.get("host") or params.get("hostaddr") or ""
    return f"{host}:{params.get('port') or ''}/{params.get('dbname') or ''}"


class Sync:
    """One data dir's sync with its team server. `run_once()` is one pass; `main()` loops while there is work."""

    def __init__(self, data_dir: PathLike, config: Any) -> None:
        self.data_dir = os.fspath(data_dir)
        self.config = config
        settings = TeamSettings.from_config(config)
        if settings is None:
            from ..errors import ConfigError

            raise ConfigError("This config has no team: block.", "Add team: {name: …} to your token_budgets.yaml.")
        self.settings = settings

    def run_once(self, *, now: float | None = None) -> dict[str, Any]:
        """Push, pull, claim. Never raises for the server: a failure is recorded in the cache and returned."""
        from ..ledger import Ledger
        from .server import TeamServerError

        started = clock.now().timestamp() if now is None else now
        with Ledger.open(self.data_dir) as ledger:
            try:
                from .server import TeamServer

                with TeamServer.connect(self.settings) as server:
                    return self._pass(ledger, server, started)
            except TeamServerError as exc:
                self._failed(started, exc.message)
                return {"ok": False, "error": exc.message, "transient": exc.transient}

    def _failed(self, at: float, error: str) -> None:
        from .states import read_cache

        cache = read_cache(self.data_dir) or {"format": 1, "team": self.settings.name, "budgets": [], "scopes": {},
                                              "ok_at": None}
        cache.setdefault("first_attempt_at", at)
        cache.update(error=error, last_attempt_at=at)
        write_cache(self.data_dir, cache)
        log(self.data_dir, f"sync failed: {error}")

    def _pass(self, ledger: Ledger, server: TeamServer, started: float) -> dict[str, Any]:
        server.check_member()
        info = server.team_info()
        self._link(ledger, server, info)
        pushed: list[dict[str, Any]] = []
        while True:  # in message id order, a chunk at a time
            rows = self._unpushed(ledger, after=pushed[-1]["message_id"] if pushed else "")
            if not rows:
                break
            server.push(rows)
            pushed += rows
        cache = pull(server, info, started)
        write_cache(self.data_dir, cache)
        ledger.mark_pushed(pushed, clock.timestamp())  # only now: the server and the cache hold the batch
        claims = self._claim_alerts(ledger, server)
        return {"ok": True, "pushed": len(pushed), "claimed": claims, "budgets": len(cache["budgets"])}

    # -- linking this ledger to the team --------------------------------------------------------------------------

    def _link(self, ledger: Ledger, server: TeamServer, info: dict[str, Any]) -> None:
        """The first sync with a team (or another team, server or member): mark this month's requests to push."""
        from ..periods import month_bounds, today, zone

        label = _server_label(self.settings)
        if ledger.team_link() == (server.team, label, server.member):
            return
        tz = zone(info["timezone"])
        day = today(tz, clock.now())
        since = month_bounds(day.year, day.month, tz)[0]
        ledger.link_team(server.team, label, server.member, since, clock.timestamp())
        log(self.data_dir, f"linked to team {server.team} as {server.member}; pushing requests since {since}")

    # -- pushing ---------------------------------------------------------------------------------------------------

    def _unpushed(self, ledger: Ledger, after: str) -> list[dict[str, Any]]:
        """The next PUSH_CHUNK marked requests after message id `after`, as the server's rows."""
        from ..periods import parse

        rows = ledger.unpushed_rows(after, PUSH_CHUNK)
        for row in rows:
            parse(row["ts"])  # a timestamp the server would refuse fails here, naming nothing secret
        return rows

    # -- pulling ---------------------------------------------------------------------------------------------------

    # -- team alerts -----------------------------------------------------------------------------------------------

    def _claim_alerts(self, ledger: Ledger, server: TeamServer) -> int:
        """Local team alerts not yet put to the server: the machine that inserts the claim first delivers it."""
        won = 0
        for key, threshold, limit in ledger.unclaimed_team_alerts():
            mine = server.claim(key, limit)
            with ledger.transaction():
                ledger.record_team_claim(key, limit, mine, clock.timestamp())
                if mine:
                    from ..channels import channels
                    from ..outbox import enqueue

                    enqueue(ledger, key, threshold, channels(self.config), now=clock.timestamp())
            won += mine
        if won:
            from ..delivery import kick

            kick(ledger, self.data_dir)
        return won


def pull(server: TeamServer, info: dict[str, Any], at: float, *, moment: float | None = None) -> dict[str, Any]:
    """The team's totals for every budget's current period (the periods around `moment`, default now), per member
    for the month: the cache a hook reads."""
    from datetime import datetime, timezone

    from ..families import model_matches
    from .server import sums_by
    from .states import FORMAT, counted, periods

    spans = periods(info["timezone"], clock.now() if moment is None else datetime.fromtimestamp(moment, timezone.utc))
    month_rows = server.period_rows(spans["month"][1], spans["month"][2])
    day_rows = server.period_rows(spans["day"][1], spans["day"][2])
    budgets = server.budgets()
    scopes: dict[str, Any] = {}
    for budget in budgets:
        scope = budget["scope"]
        keep = None
        if scope == "team:member:monthly":
            def keep(row: Any) -> bool:
                return row[0] == server.member
        elif scope.startswith("team:model:"):
            def keep(row: Any, key: str = scope[11:]) -> bool:
                return model_matches(key, row[1])
        elif scope.startswith("team:workflow:"):
            def keep(row: Any, name: str = scope[14:]) -> bool:
                return row[2] == name
        span = "day" if scope == "team:daily" else "month"
        rows = day_rows if span == "day" else month_rows
        scopes[scope] = {"period": spans[span][0], "sums": sums_by(rows, keep)}
    by_member: dict[str, list[int]] = {}
    for row in month_rows:
        by_member.setdefault(row[0], []).append(row)  # type: ignore[arg-type]
    classes = info["classes"]
    members = sorted(({"member": m, "tokens": counted(sums_by(rows), classes),
                       "cost_micros": sums_by(rows)[-1]} for m, rows in by_member.items()),
                     key=lambda m: (-m["tokens"], m["member"]))
    team_month = sums_by(month_rows)
    mine = next((m for m in members if m["member"] == server.member), None)
    return {
        "format": FORMAT, "team": server.team, "member": server.member, "machine": server.machine,
        "timezone": info["timezone"], "classes": classes, "budgets": budgets, "scopes": scopes,
        "month": {"period": spans["month"][0], "sums": team_month, "tokens": counted(team_month, classes),
                  "requests": sum(int(r[3]) for r in month_rows)},
        "day": {"period": spans["day"][0], "sums": sums_by(day_rows),
                "tokens": counted(sums_by(day_rows), classes)},
        "members": members[:TOP_MEMBERS], "member_count": len(members), "me": mine,
        "ok_at": at, "error": None, "last_attempt_at": at,
    }


# -- answering tokens team status (team/ask.py asks) --------------------------------------------------------------


class Answerer:
    """The sync process's socket: started once it holds the sync lock, stopped (the file removed) before it lets
    the lock go. Any file left at the path was left by a sync that died, since only the lock's holder binds it."""

    def __init__(self, data_dir: str, settings: TeamSettings) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self.listener: Any = None
        self.server: TeamServer | None = None
        self.last_question = 0.0
        self.stopping = False
        self.thread: Any = None
        self.dir_fd: int | None = None

    def start(self) -> bool:
        from .ask import supported

        if not supported():
            return False
        import socket
        import threading

        from .ask import socket_address

        try:
            self.dir_fd = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY)
            address = socket_address(self.data_dir, self.dir_fd)
            try:
                os.unlink(address)  # a stale socket: its sync died holding the lock we now hold
            except FileNotFoundError:
                pass
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old = os.umask(0o177)  # created 0600 (no window in which another user could connect)
            try:
                listener.bind(address)
            finally:
                os.umask(old)
            os.chmod(address, 0o600)
            listener.listen(8)
        except OSError as exc:
            log(self.data_dir, f"status socket not started ({type(exc).__name__}); tokens team status connects "
                               "itself")
            return False
        self.listener = listener
        self.thread = threading.Thread(target=self._serve, name="team-status", daemon=True)
        self.thread.start()
        return True

    def stop(self) -> None:
        if self.listener is None:
            return
        self.stopping = True
        from .ask import socket_address

        try:
            os.unlink(socket_address(self.data_dir, self.dir_fd))
        except OSError:
            pass
        self.listener.close()
        if self.dir_fd is not None:
            os.close(self.dir_fd)
            self.dir_fd = None

    def _serve(self) -> None:
        import select
        import time

        while not self.stopping:
            try:
                ready, _, _ = select.select([self.listener], [], [], 1.0)
                if not ready:
                    if self.server is not None and time.monotonic() - self.last_question > ANSWER_IDLE_CLOSE:
                        self._close_server()
                    continue
                conn, _ = self.listener.accept()
            except (OSError, ValueError):
                if self.stopping:
                    return
                time.sleep(0.1)
                continue
            try:
                with conn:
                    self._handle(conn)
            except Exception as exc:  # a peer's garbage never ends the thread (nor the sync beside it)
                log(self.data_dir, f"status question dropped: {type(exc).__name__}")

    def _handle(self, conn: Any) -> None:
        import time

        from .ask import ASK_TIMEOUT, MAX_QUESTION, VERSION, peer_uid, proof, read_bounded

        if peer_uid(conn) != os.getuid():
            return
        raw = read_bounded(conn, MAX_QUESTION, time.monotonic() + ASK_TIMEOUT, line=True)
        if not raw:
            return  # too long, or nothing asked (a probe that connected and hung up)
        question = jsonlite.loads(raw.decode())
        if not (isinstance(question, dict) and question.get("v") == VERSION
                and isinstance(question.get("nonce"), str) and 16 <= len(question["nonce"]) <= 128
                and isinstance(question.get("now"), int | float) and not isinstance(question["now"], bool)):
            return
        answer: dict[str, Any] = {"v": VERSION, "proof": proof(self.settings.dsn(), question["nonce"])}
        mine = (self.settings.name, self.settings.member, self.settings.machine)
        if (question.get("team"), question.get("member"), question.get("machine")) != mine:
            answer["error"] = "another team, member or machine"
        else:
            self.last_question = time.monotonic()
            totals = self._totals(float(question["now"]))
            if totals is None:
                answer["error"] = "the team server did not answer"
            else:
                answer["totals"] = totals
        conn.settimeout(ASK_TIMEOUT)
        conn.sendall(jsonlite.dumps(answer).encode())

    def _totals(self, now: float) -> dict[str, Any] | None:
        """sync.pull over this thread's connection, opened when needed and opened again once if it broke."""
        from .server import TeamServer, TeamServerError

        for _attempt in range(2):
            try:
                if self.server is None:
                    self.server = TeamServer.connect(self.settings)
                return pull(self.server, self.server.team_info(), now, moment=now)
            except TeamServerError:
                self._close_server()
        return None

    def _close_server(self) -> None:
        if self.server is not None:
            try:
                self.server.close()
            except Exception:
                pass
            self.server = None


def main(argv: list[str] | None = None) -> int:
    """The detached process (see `kick`): sync while there is work, unless another sync holds the lock."""
    from .. import site_packages
    from ..detached import hold

    site_packages.enable()  # psycopg lives in site-packages; the process started with -S
    try:  # background work: the hooks it runs beside are what a user waits for
        os.nice(10)
    except OSError:
        pass
    args = sys.argv[1:] if argv is None else argv
    data_dir = args[0]
    fd = hold(data_dir, LOCK_NAME)
    if fd is None:
        return 0
    try:
        ensure_driver(data_dir)
        return loop(data_dir)
    except Exception as exc:
        log(data_dir, f"error: the sync stopped: {type(exc).__name__}")
        return 1
    finally:
        os.close(fd)


def ensure_driver(data_dir: str) -> None:
    """In the plugin's own environment (<data dir>/venv), a `team:` added after it was built: have the bootstrap
    install the team extra (pinned) before the first sync. A pip install's user is told by the sync's error."""
    import importlib.util

    if importlib.util.find_spec("psycopg") is not None:
        return
    bootstrap = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))),
                             "scripts", "bootstrap.py")
    if os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(data_dir, "venv")) or \
            not os.path.exists(bootstrap):
        return
    import subprocess

    log(data_dir, "installing the team extra (psycopg) into the plugin's environment")
    subprocess.run([sys.executable, bootstrap, "--data", data_dir, "--team", "--wait"], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    importlib.invalidate_caches()


def loop(data_dir: str) -> int:
    """Sync; again after an interval while rows wait to be pushed or hooks showed activity meanwhile (with backoff
    while the server fails); exit when there is nothing left, or no hook ran for IDLE_EXIT seconds."""
    from ..config import load_cached

    config = load_cached(data_dir, None)
    sync = Sync(data_dir, config)
    answerer = Answerer(data_dir, sync.settings)
    answerer.start()
    try:
        return _sync_while_active(data_dir, sync)
    finally:
        answerer.stop()  # before main lets the lock go: a later sync binds the path afresh


def _sync_while_active(data_dir: str, sync: Sync) -> int:
    from ..ledger import waiting_to_push

    delay = sync.settings.sync_interval
    while True:
        started = time.time()
        result = sync.run_once()
        if not result["ok"] and not result.get("transient", True):
            return 1  # a setting to fix (team.name, membership, TLS): the next hook's sync tries again
        delay = sync.settings.sync_interval if result["ok"] else min(delay * 2, MAX_BACKOFF)
        activity = _last_activity(data_dir)
        if activity < started and not waiting_to_push(data_dir):
            return 0
        if time.time() - activity > IDLE_EXIT:
            return 0
        time.sleep(delay)


def _last_activity(data_dir: str) -> float:
    try:
        return os.stat(os.path.join(data_dir, DUE_NAME)).st_mtime
    except OSError:
        return 0.0
