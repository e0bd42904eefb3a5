"""Team mode: what it costs a hook, how fast the sync pushes, and `tokens team status` at a team's scale.

    python3 benchmarks/bench_team.py [--quick]

Starts its own throw-away PostgreSQL (tests/postgres.py: initdb in a temporary folder, loopback, a free port).

- Hook latency with team mode on against off, alternated round by round on twin copies of a 100k-request ledger:
  a PreToolUse that ingests one new request (the full path, which checks whether a sync is due) and an idle one.
  Target <= 1.05x. Then the team-mode hook once under strace (no -f: the hook's own system calls, not the sync it
  starts): the number of socket() and connect() calls, which must be 0.
- The sync of 100k unsynced rows (push in batches, pull, mark) against the floor of getting the same rows to the
  server: COPY into an unindexed table.
- `tokens team status` (a member's role, fresh totals from the server) over 10M server rows of 200 members,
  generated with generate_series, against `tokens status` on a 1M-request local ledger. Target <= 2x: the rollups
  make the team's month its days' rows (plus the hours at its edges), whatever the number of requests. Timed with
  the machine's sync running (the CLI asks it over its socket and it queries the server then: team/ask.py), and on
  a second machine with no sync (the fallback: the CLI imports psycopg and connects itself); each path is checked
  (the CLI's import trace names psycopg only on the second) before and after the timing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PYTHON, ROOT, Case, Figure, alternate, bench_config, compile_package, hook_argv, hook_env, payload
from fixtures import CACHE, append_request, cached_ledger, cached_transcript

SECTION = "Team mode (PostgreSQL)"
SERVER_ROWS = 10_000_000
MEMBERS = 200


def _server() -> object:
    sys.path.insert(0, str(ROOT / "tests"))
    from postgres import PostgresServer, bin_dir

    binaries = bin_dir()
    if binaries is None:
        raise SystemExit("bench_team needs PostgreSQL (apt-get install postgresql)")
    server = PostgresServer(binaries)
    server.start()
    return server


def _team(server: object, scratch: Path) -> tuple[str, str, Path]:
    """A team with one member role for the benchmark's machine; returns (admin DSN, member DSN, team config)."""
    import psycopg

    from token_budget.team.schema import init_team

    admin = server.fresh_database()  # type: ignore[attr-defined]
    dbname = admin.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        init_team(conn, "bench", lead_member="lead@bench")
        conn.execute("CREATE ROLE bench_member LOGIN PASSWORD 'bench'")
        conn.execute("INSERT INTO token_budget.members VALUES ('bench', 'me@bench', 'bench_member')")
        conn.execute("GRANT token_budget_member TO bench_member")
        conn.execute("INSERT INTO token_budget.budgets (team, scope, limit_tokens) VALUES "
                     "('bench', 'team:monthly', 1000000000000000), ('bench', 'team:daily', 1000000000000000), "
                     "('bench', 'team:member:monthly', 1000000000000000)")
    member = server.dsn(dbname, "bench_member", "bench")  # type: ignore[attr-defined]
    config = scratch / "team_budgets.yaml"
    config.write_text(bench_config(CACHE).read_text() + "team:\n  name: bench\n  dsn: $TOKEN_BUDGET_TEAM_DSN\n"
                      "  member: me@bench\n  machine: bench\n")
    return admin, member, config


def _twin(requests: int, scratch: Path, name: str) -> Path:
    target = scratch / name
    shutil.copytree(cached_ledger(requests), target)
    return target


def _sockets(argv: list[str], stdin: bytes, env: dict[str, str], scratch: Path) -> int | None:
    if shutil.which("strace") is None:
        return None
    trace = scratch / "strace.txt"
    subprocess.run(["strace", "-qq", "-e", "trace=socket,connect", "-o", str(trace), *argv], input=stdin, env=env,
                   capture_output=True, check=True)
    return sum(1 for line in trace.read_text().splitlines() if line.startswith(("socket(", "connect(")))


def _trim_wal(data: Path) -> None:
    """Checkpoint and empty a ledger's WAL. A hook's first query reads the whole WAL a previous hook left behind, and
    it grows by each ingesting hook until one trims it past half a megabyte (Ledger.leave_open): twins left at other
    points of that cycle after their set-up (the catch-up hook leaves its WAL, `tokens team sync` closes and empties
    its own) differ by that alone."""
    import sqlite3

    db = sqlite3.connect(data / "ledger.db")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    db.close()


def hook_figures(member: str, config: Path, scratch: Path, rounds: int) -> list[Figure]:
    off_data, on_data = _twin(100_000, scratch, "off"), _twin(100_000, scratch, "on")
    off_env = hook_env(off_data, {"TOKEN_BUDGET_CONFIG": str(bench_config(CACHE))})
    on_env = hook_env(on_data, {"TOKEN_BUDGET_CONFIG": str(config), "TOKEN_BUDGET_TEAM_DSN": member})
    off_t, on_t = cached_transcript("team-off", 50 << 10), cached_transcript("team-on", 50 << 10)
    for path, env in ((off_t, off_env), (on_t, on_env)):  # catch up: the timed hooks see only what is appended
        subprocess.run(hook_argv("PreToolUse"), input=payload(path, "PreToolUse"), env=env, capture_output=True)
    # The first sync links the ledger and pushes this month's backlog (half the 100k rows): done before timing, as
    # on a member's machine after the first minutes, so the hooks see the steady state (a spool of one interval).
    subprocess.run([PYTHON, "-m", "token_budget", "team", "sync"], env={**on_env, "PYTHONPATH": str(ROOT)},
                   capture_output=True, check=True)
    _trim_wal(off_data)  # both twins from the same start: every hook reads the WAL it finds (Ledger.leave_open)
    _trim_wal(on_data)
    cases = [
        Case("off grew", hook_argv("PreToolUse"), stdin=payload(off_t, "PreToolUse"), env=off_env,
             before=lambda: append_request(off_t, "team-off")),
        Case("on grew", hook_argv("PreToolUse"), stdin=payload(on_t, "PreToolUse"), env=on_env,
             before=lambda: append_request(on_t, "team-on")),
        Case("off idle", hook_argv("PreToolUse"), stdin=payload(off_t, "PreToolUse"), env=off_env),
        Case("on idle", hook_argv("PreToolUse"), stdin=payload(on_t, "PreToolUse"), env=on_env),
    ]
    t = alternate(cases, rounds)
    append_request(on_t, "team-on")
    sockets = _sockets(hook_argv("PreToolUse"), payload(on_t, "PreToolUse"), on_env, scratch)
    seen = "strace not installed" if sockets is None else f"strace: {sockets} socket()/connect() calls by the hook"
    return [
        Figure(SECTION, "team mode off: PreToolUse that ingests one request, 100k ledger (baseline of the next row)",
               t["off grew"]),
        Figure(SECTION, "team mode on: the same hook", t["on grew"], t["off grew"], "team off", 1.05, note=seen),
        Figure(SECTION, "team mode off: idle PreToolUse (baseline of the next row)", t["off idle"]),
        Figure(SECTION, "team mode on: idle PreToolUse", t["on idle"], t["off idle"], "team off", 1.05),
    ]


def sync_figures(admin: str, member: str, config: Path, scratch: Path) -> list[Figure]:
    import psycopg

    from token_budget.config import load
    from token_budget.ledger import Ledger
    from token_budget.migrations import SPOOL_FIGURES
    from token_budget.team.sync import Sync

    data = _twin(100_000, scratch, "sync")
    os.environ["TOKEN_BUDGET_TEAM_DSN"] = member
    sync = Sync(data, load(explicit=str(config), data_dir=data))
    sync.run_once()  # links the ledger to the team (and pushes this month's rows)
    with Ledger.open(data) as ledger, ledger.transaction() as db:
        db.execute("DELETE FROM team_pushed")
        figures = ", ".join(SPOOL_FIGURES)
        db.execute(f"INSERT OR IGNORE INTO team_unpushed (message_id, {figures}) SELECT message_id, {figures} "
                   "FROM requests")
        rows = db.execute("SELECT COUNT(*) FROM team_unpushed").fetchone()[0]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DELETE FROM token_budget.requests")
        conn.execute("DELETE FROM token_budget.hourly")
    start = time.perf_counter()
    result = sync.run_once()
    pushed = time.perf_counter() - start
    assert result["ok"] and result["pushed"] == rows, result
    with Ledger.open(data) as ledger:
        source = ledger.db.execute("SELECT message_id, timestamp, model, input_tokens, output_tokens, "
                                   "cache_read_tokens, total_tokens, cost_micros FROM requests").fetchall()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE TABLE copy_floor (message_id text, ts timestamptz, model text, i bigint, o bigint, "
                     "r bigint, total bigint, cost bigint)")
        start = time.perf_counter()
        with conn.cursor().copy("COPY copy_floor FROM STDIN") as copy:
            for row in source:
                copy.write_row(row)
        floor = time.perf_counter() - start
    return [
        Figure(SECTION, f"COPY of the same {rows:,} rows into an unindexed table (baseline of the next row)", floor),
        Figure(SECTION, f"sync of {rows:,} unsynced rows: push (merge rule, rollup), pull, mark", pushed, floor,
               "COPY", note=f"{rows / pushed:,.0f} rows/s"),
    ]


def status_figures(admin: str, member: str, config: Path, scratch: Path, rounds: int) -> list[Figure]:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("INSERT INTO token_budget.members SELECT 'bench', 'member' || n || '@bench', 'bench_member' "
                     f"FROM generate_series(1, {MEMBERS - 1}) AS n")
        step = 1_000_000
        for first in range(0, SERVER_ROWS, step):  # a million rows a statement: the rollup's trigger sums each
            conn.execute(
                "INSERT INTO token_budget.requests (team, message_id, member, machine, ts, model, input_tokens, "
                "output_tokens, cache_read_tokens, total_tokens, cost_micros) "
                "SELECT 'bench', 'gen_' || n, CASE WHEN n %% %(m)s = 0 THEN 'me@bench' ELSE 'member' || (n %% %(m)s) "
                "|| '@bench' END, 'm' || (n %% 7), now() - (n %% 43200) * interval '1 minute', "
                "(ARRAY['claude-opus-4-6', 'claude-sonnet-4-5', 'claude-haiku-4-5'])[1 + n %% 3], n %% 5000, "
                "n %% 2000, n %% 90000, n %% 5000 + n %% 2000 + n %% 90000, n %% 70000 "
                "FROM generate_series(%(a)s, %(b)s) AS n",
                {"m": MEMBERS, "a": first + 1, "b": first + step})
        conn.execute("VACUUM ANALYZE token_budget.hourly")
        conn.execute("VACUUM ANALYZE token_budget.daily")
        hourly = conn.execute("SELECT COUNT(*) FROM token_budget.hourly").fetchone()[0]
        daily = conn.execute("SELECT COUNT(*) FROM token_budget.daily").fetchone()[0]
    local = cached_ledger(1_000_000)
    base_env = {**hook_env(local, {"TOKEN_BUDGET_CONFIG": str(bench_config(CACHE))}), "PYTHONPATH": str(ROOT)}
    envs = {}
    for name in ("status", "status-direct"):  # a machine whose sync runs, and one where none does
        (scratch / name).mkdir(mode=0o700)
        envs[name] = {**hook_env(scratch / name, {"TOKEN_BUDGET_CONFIG": str(config),
                                                  "TOKEN_BUDGET_TEAM_DSN": member}), "PYTHONPATH": str(ROOT)}
    status = [PYTHON, "-m", "token_budget", "status", "--color", "never"]
    team_status = [PYTHON, "-m", "token_budget", "team", "status"]
    for argv, env in ((status, base_env), (team_status, envs["status"]), (team_status, envs["status-direct"])):
        subprocess.run(argv, env=env, capture_output=True, check=True)  # compiles the config cache
    sync = _start_sync(scratch / "status", envs["status"])
    try:
        _check_path(team_status, envs["status"], through_sync=True)
        _check_path(team_status, envs["status-direct"], through_sync=False)
        t = alternate([Case("status", status, env=base_env), Case("team", team_status, env=envs["status"]),
                       Case("direct", team_status, env=envs["status-direct"]),
                       Case("psycopg", [PYTHON, "-c", "import psycopg"], env=envs["status"])], rounds)
        if sync.poll() is not None:
            raise SystemExit("the sync exited while `tokens team status` was timed through it")
        _check_path(team_status, envs["status"], through_sync=True)
    finally:
        sync.kill()
        sync.wait()
    pull_s, local_s = _in_process(member, config, local, rounds)
    return [
        Figure(SECTION, "tokens status, 1M-request local ledger (baseline of the next three rows)", t["status"]),
        Figure(SECTION, f"tokens team status, {SERVER_ROWS // 1_000_000}M server rows, {MEMBERS} members, "
               "sync running (asked over its socket, live totals)", t["team"], t["status"], "tokens status", 2.0,
               note=f"{hourly:,} hourly and {daily:,} daily rollup rows"),
        Figure(SECTION, "tokens team status, the same, no sync running (the fallback: connects itself)",
               t["direct"], t["status"], "tokens status",
               note=f"`python -c 'import psycopg'` alone: {t['psycopg'] * 1000:.0f} ms"),
        Figure(SECTION, "in process: tokens status's figures from the 1M ledger (baseline of the next row)", local_s),
        Figure(SECTION, "in process: the team's totals from the server (connect, month and day per member, budgets)",
               pull_s, local_s, "local figures", note="where the time goes, no target: the local month is a few "
               "thousand rollup rows"),
    ]


def _start_sync(data: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The detached sync for `data`, started as a hook starts it, kept alive (its due file a year ahead reads as
    hook activity, as while a session runs) until the benchmark kills it; returns once its socket exists."""
    from token_budget.team import DUE_NAME
    from token_budget.team.ask import SOCKET_NAME

    due = data / DUE_NAME
    due.touch()
    ahead = time.time() + 365 * 86400
    os.utime(due, (ahead, ahead))
    proc = subprocess.Popen([PYTHON, "-c", "import sys; from token_budget.team.sync import main; sys.exit(main())",
                             str(data)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (data / SOCKET_NAME).exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the team sync did not start its socket: {(data / 'team.log').read_text()}")
        time.sleep(0.05)
    return proc


def _check_path(argv: list[str], env: dict[str, str], *, through_sync: bool) -> None:
    """The timed command takes the path its row names: through the sync, psycopg is never imported."""
    import re

    result = subprocess.run(argv, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True, text=True,
                            check=True)
    imported = re.search(r"\|\s+psycopg$", result.stderr, re.MULTILINE) is not None
    if imported == through_sync:
        raise SystemExit(f"`tokens team status` {'connected itself' if imported else 'asked a sync'} where the "
                         "benchmark expected the other path")


def _in_process(member: str, config: Path, local: Path, rounds: int) -> tuple[float, float]:
    """The same two answers without the interpreter and imports: the server's share against the ledger's."""
    import statistics

    from token_budget import clock
    from token_budget.config import load
    from token_budget.dashboard import status
    from token_budget.ledger import Ledger
    from token_budget.team import TeamSettings
    from token_budget.team.server import TeamServer
    from token_budget.team.sync import pull

    os.environ["TOKEN_BUDGET_TEAM_DSN"] = member
    team_config, local_config = load(explicit=str(config)), load(explicit=str(bench_config(CACHE)))
    settings = TeamSettings.from_config(team_config)
    pulls, locals_ = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        with TeamServer.connect(settings) as server:
            pull(server, server.team_info(), clock.now().timestamp())
        pulls.append(time.perf_counter() - start)
        start = time.perf_counter()
        with Ledger.open(local) as ledger:
            status(ledger, local_config)
        locals_.append(time.perf_counter() - start)
    return statistics.median(pulls), statistics.median(locals_)


def _team_driver() -> None:
    """psycopg in the hooks' interpreter: the plugin's venv gets the team extra as a member's does (the bootstrap
    installs it when the config has `team:`; the sync asks for it the same way)."""
    if subprocess.run([PYTHON, "-c", "import psycopg"], capture_output=True).returncode == 0:
        return
    data = Path(PYTHON).parent.parent.parent  # <data>/venv/bin/python (not resolved: that is the base Python)
    if not (data / "venv").is_dir():
        raise SystemExit(f"bench_team needs psycopg in {PYTHON}: pip install 'token-budget[team]'")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "bootstrap.py"), "--data", str(data), "--team", "--wait"],
                   check=True)


def measure(quick: bool = False) -> list[Figure]:
    compile_package()
    _team_driver()
    rounds = 11 if quick else 21
    scratch_root = CACHE.parent / "scratch"
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=scratch_root))
    server = _server()
    try:
        admin, member, config = _team(server, scratch)
        figures = hook_figures(member, config, scratch, rounds)
        figures += sync_figures(admin, member, config, scratch)
        figures += status_figures(admin, member, config, scratch, 7 if quick else 11)
        return figures
    finally:
        server.destroy()  # type: ignore[attr-defined]
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    from common import run_alone

    run_alone(measure)
