"""Crash suite: SIGKILL at random points of ingest, config changes and alert delivery (at least 100 trials).

After every trial the ledger passes `PRAGMA integrity_check` (and the hourly rollup still equals its requests);
after the last, one more hook (or sender) converges to exact totals and every alert is delivered. Trials are
sized for about a minute of CI; TOKEN_BUDGET_SOAK=1 runs ten times as many.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from builders import response, subagent_path, transcript_path
from kills import Killer, enough_trials
from test_concurrency import expected_totals, ledger_totals

from token_budget import clock
from token_budget.channels import channels
from token_budget.ledger import Ledger
from token_budget.models import Alert
from token_budget.outbox import enqueue

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "token_budget" / "claude" / "run_hook.py"
SCALE = 10 if os.environ.get("TOKEN_BUDGET_SOAK") == "1" else 1
BIG = 10**12


def consistent(data_dir: Path, *, rollup: bool = False) -> None:
    db = sqlite3.connect(data_dir / "ledger.db", timeout=30)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if rollup:
            live = db.execute("SELECT substr(timestamp, 1, 13), model, COUNT(*), SUM(input_tokens), "
                              "SUM(output_tokens) FROM requests GROUP BY 1, 2").fetchall()
            rolled = db.execute("SELECT hour, model, requests, input_tokens, output_tokens FROM hourly_totals "
                                "WHERE requests != 0").fetchall()
            assert sorted(live) == sorted(rolled)
    finally:
        db.close()


def run_hook(event: str, path: Path, env: dict, session: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-S", str(LAUNCHER), event], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps({"session_id": session, "transcript_path": str(path), "cwd": "/tmp/proj",
                                 "hook_event_name": event}).encode())
    proc.stdin.close()
    proc.stdin = None
    return proc


def append(path: Path, requests: int, rng: random.Random, **extra: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks = []
    for _ in range(requests):
        for line in response(session_id="crash", blocks=2, partial_output=1, input_tokens=rng.randint(1, 5000),
                             output_tokens=rng.randint(2, 3000), **extra):  # type: ignore[arg-type]
            chunks.append(json.dumps(line, separators=(",", ":")))
    with open(path, "a") as handle:
        handle.write("\n".join(chunks) + "\n")


def quiet_env(subprocess_env: dict, data_dir: Path) -> dict:
    config = data_dir.parent / "crash.yaml"
    config.write_text(f"budgets:\n  global:\n    daily_limit: {BIG}\n    monthly_limit: {BIG}\n  per_model: {{}}\n")
    env = {k: v for k, v in subprocess_env.items() if k != "PYTHONPATH"}
    env["TOKEN_BUDGET_CONFIG"] = str(config)
    return env


# -- ingest ------------------------------------------------------------------------------------------------------


def unread(data_dir: Path, paths: list[Path]) -> bool:
    """True when the ledger has not yet read some of these files to their end: a hook was stopped short."""
    db = sqlite3.connect(data_dir / "ledger.db", timeout=30)
    try:
        offsets = dict(db.execute("SELECT path, offset FROM transcript_offsets").fetchall())
    finally:
        db.close()
    return any(offsets.get(str(path), 0) < path.stat().st_size for path in paths if path.exists())


def test_hooks_killed_mid_ingest_of_a_big_delta_leave_a_consistent_ledger_that_converges(
        data_dir: Path, claude_dir: Path, subprocess_env: dict) -> None:
    env = quiet_env(subprocess_env, data_dir)
    rng = random.Random(1)
    killer = Killer(random.Random(101))
    main = transcript_path(claude_dir, "crash")
    agent = subagent_path(main, "a1")
    append(main, 10, rng)
    run_hook("PostToolUse", main, env, "crash").communicate(timeout=60)  # creates the ledger
    landed = trials = 0
    while not enough_trials(landed, trials, needed=20 * SCALE, minimum=40 * SCALE, cap=400 * SCALE):
        append(main, rng.randint(300, 1000), rng)  # a big delta, in two files: two transactions per hook
        append(agent, rng.randint(50, 400), rng, agent_id="a1", is_sidechain=True)
        proc = run_hook(rng.choice(["PostToolUse", "Stop", "SubagentStop"]), main, env, "crash")
        outcome = killer.calibrate(proc) if trials == 0 else killer.kill(proc)
        landed += outcome.writing and unread(data_dir, [main, agent])
        trials += 1
        consistent(data_dir, rollup=trials % 8 == 0)
    assert landed >= 20 * SCALE, f"only {landed} of {trials} hooks were killed while writing"
    out, err = run_hook("Stop", main, env, "crash").communicate(timeout=120)
    assert out.strip() == b"{}", (out + err).decode()
    consistent(data_dir, rollup=True)
    assert ledger_totals(data_dir) == expected_totals([main, agent])


def test_imports_killed_between_and_inside_their_batched_transactions_converge_to_exact_totals(
        data_dir: Path, claude_dir: Path, subprocess_env: dict) -> None:
    # tokens import commits many files per transaction; small batches here make every import several of them.
    env = {**quiet_env(subprocess_env, data_dir), "PYTHONPATH": str(ROOT)}
    code = ("import sys; import token_budget.claude.transcript as t; t.BATCH_BYTES = 150_000; "
            "from token_budget.entry import main; sys.argv = ['tokens', 'import', '--claude-dir', sys.argv[1]]; main()")
    rng = random.Random(3)
    files = [transcript_path(claude_dir, f"imp-{i}", project=f"-p{i % 5}") for i in range(30)]
    killer = Killer(random.Random(103))
    landed = trials = 0
    while not enough_trials(landed, trials, needed=6 * SCALE, minimum=12 * SCALE, cap=120 * SCALE):
        for path in rng.sample(files, 20):
            append(path, rng.randint(100, 400), rng)
        proc = subprocess.Popen([sys.executable, "-c", code, str(claude_dir)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        outcome = killer.calibrate(proc) if trials == 0 else killer.kill(proc)
        landed += outcome.writing and unread(data_dir, files)
        trials += 1
        consistent(data_dir, rollup=trials % 4 == 0)
    assert landed >= 6 * SCALE, f"only {landed} of {trials} imports were killed while writing"
    proc = subprocess.run([sys.executable, "-c", code, str(claude_dir)], capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    consistent(data_dir, rollup=True)
    assert ledger_totals(data_dir) == expected_totals([f for f in files if f.exists()])


# -- config changes --------------------------------------------------------------------------------------------


def test_config_changes_killed_mid_write_keep_valid_files_and_the_cache_never_serves_half_a_file(
        data_dir: Path, claude_dir: Path, subprocess_env: dict) -> None:
    from token_budget.config import cache_path, load_cached

    env = quiet_env(subprocess_env, data_dir)
    cli_env = {**env, "PYTHONPATH": subprocess_env["PYTHONPATH"]}
    main = transcript_path(claude_dir, "cfg")
    append(main, 2, random.Random(0))
    written: set = {None}
    os.environ["TOKEN_BUDGET_CONFIG"] = env["TOKEN_BUDGET_CONFIG"]  # load_cached in this process: same layers
    killers = [Killer(random.Random(105 + kind)) for kind in range(3)]
    landed = trial = 0
    while not enough_trials(landed, trial, needed=10 * SCALE, minimum=30 * SCALE, cap=300 * SCALE):
        kind = trial % 3
        killer = killers[kind]
        trial += 1
        if kind == 0:  # `tokens budget daily N` killed anywhere: start-up, validation or the write
            value = 10**9 + trial
            written.add(value)
            proc = subprocess.Popen([sys.executable, "-m", "token_budget", "budget", "daily", str(value)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env)
            outcome = killer.kill(proc) if killer.finishes else killer.calibrate(proc)
        elif kind == 1:  # a hook recompiling the config cache after that change, killed mid-compile or mid-write
            proc = run_hook("PostToolUse", main, env, "cfg")
            outcome = killer.kill(proc) if killer.finishes else killer.calibrate(proc)
        else:  # a writer that changes the budget in a loop: killed, it is almost surely inside save_override
            base = 2 * 10**9 + trial * 10**6
            written.update(range(base, base + 10**6))
            loop = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from pathlib import Path; "
                    "from token_budget.config import save_override\n"
                    f"for n in range({base}, {base + 10**6}): "
                    f"save_override(Path({str(data_dir)!r}), ['budgets', 'global', 'daily_limit'], n)")
            proc = subprocess.Popen([sys.executable, "-c", loop], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=cli_env)
            outcome = killer.kill(proc)  # it writes until killed: a calibration run would never end
        landed += outcome.writing
        overrides = data_dir / "overrides.json"
        current = None
        if overrides.exists():
            current = json.loads(overrides.read_text())["budgets"]["global"]["daily_limit"]  # valid JSON
            assert current in written
        cache = Path(cache_path(data_dir, "/tmp/proj"))
        if cache.exists():
            json.loads(cache.read_bytes())  # never half-written (atomic replace)
        assert load_cached(data_dir, "/tmp/proj").get("budgets", "global", "daily_limit") == (current or BIG)
        if data_dir.joinpath("ledger.db").exists():
            consistent(data_dir)
    assert landed >= 10 * SCALE, f"only {landed} of {trial} processes were killed while writing"
    out, err = run_hook("PostToolUse", main, env, "cfg").communicate(timeout=120)
    notice = json.loads(out).get("systemMessage", "")  # the limit changes the hooks noticed, shown once
    assert set(json.loads(out)) <= {"systemMessage"}, (out + err).decode()
    assert all(line.startswith("token-budget: the daily budget changed from ") for line in notice.splitlines())
    out, err = run_hook("PostToolUse", main, env, "cfg").communicate(timeout=120)
    assert out.strip() == b"{}", (out + err).decode()
    assert ledger_totals(data_dir) == expected_totals([main])


def test_a_writer_killed_between_its_temp_file_and_the_rename_leaves_no_litter_once_the_next_write_lands(
        data_dir: Path, subprocess_env: dict) -> None:
    # `tokens budget daily 5000`, SIGKILLed at the one instant the crash trials above rarely hit: its temp file
    # is written, the rename into overrides.json not yet done. Nothing will ever rename or remove that file.
    die_at_rename = ("import os, signal, sys; rename = os.replace\n"
                     "os.replace = lambda src, dst: (os.kill(os.getpid(), signal.SIGKILL)\n"
                     "                               if str(dst).endswith('overrides.json') else rename(src, dst))\n"
                     "sys.argv[1:] = ['budget', 'daily', '5000']\n"
                     "from token_budget.entry import main; main()")
    killed = subprocess.Popen([sys.executable, "-c", die_at_rename], env=subprocess_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert killed.wait(timeout=60) == -signal.SIGKILL, killed.communicate()
    killed.communicate()
    [orphan] = data_dir.glob(f".overrides.json.{killed.pid}.*tmp")  # mkstemp: .NAME.PID.RANDOM.tmp
    assert json.loads(orphan.read_text()) == {"budgets": {"global": {"daily_limit": 5000}}}
    assert not (data_dir / "overrides.json").exists()  # the change never landed, as if the command never ran

    # Another writer, alive and between its own write and rename: its temp file is still needed.
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    in_flight = data_dir / f".overrides.json.{writer.pid}.tmp"
    in_flight.write_text("{}")
    try:
        done = subprocess.run([sys.executable, "-m", "token_budget", "budget", "daily", "7000"],
                              env=subprocess_env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        # The next write clears the dead writer's file and leaves the live one's alone.
        assert sorted(p.name for p in data_dir.glob(".overrides.json.*")) == [in_flight.name]
    finally:
        writer.kill()
        writer.wait()
    assert json.loads((data_dir / "overrides.json").read_text()) == {"budgets": {"global": {"daily_limit": 7000}}}


# -- alert delivery --------------------------------------------------------------------------------------------


class SlowSlack:
    """A webhook that takes 0-120 ms to answer, so a sender is often killed mid-request. Records every post it
    received, whether or not the sender lived to read the answer."""

    def __init__(self) -> None:
        owner = self
        self.posts: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                owner.posts.append(body)
                time.sleep(random.uniform(0, 0.12))
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/SECRET"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_senders_killed_mid_send_lose_no_alert(data_dir: Path, subprocess_env: dict) -> None:
    slack = SlowSlack()
    try:
        config = data_dir.parent / "alerts.yaml"
        config.write_text("alerts:\n  channels:\n    - type: slack\n      threshold: 0%\n"
                          "      webhook: $SLACK_WEBHOOK\n")
        env = {k: v for k, v in subprocess_env.items() if k != "PYTHONPATH"}
        env.update({"TOKEN_BUDGET_CONFIG": str(config), "SLACK_WEBHOOK": slack.url,
                    "TOKEN_BUDGET_ALERT_TIMEOUT": "2", "TOKEN_BUDGET_ALERT_RETRY_BASE": "0.01",
                    "TOKEN_BUDGET_ALERT_RETRY_MAX": "0.05"})
        spec = channels({"alerts": {"channels": [{"type": "slack", "threshold": 0, "webhook": "$SLACK_WEBHOOK"}]}})
        code = (f"import sys; sys.path[0] = {str(ROOT)!r}; from token_budget.delivery import main; "
                "sys.exit(main())")
        killer = Killer(random.Random(107))
        names = []
        landed = trials = 0
        while not enough_trials(landed, trials, needed=12 * SCALE, minimum=35 * SCALE, cap=300 * SCALE):
            trial = trials
            trials += 1
            name = f"crashwf{trial:04d}x"
            names.append(name)
            with Ledger.open(data_dir) as ledger, ledger.transaction() as db:
                alert = Alert(f"workflow:{name}", "alert", 80, f"run-{trial}", 800, 1000, clock.timestamp(),
                              workflow=name)
                assert ledger.claim_alert(alert)
                enqueue(ledger, alert.key, alert.threshold, spec, now=clock.timestamp())
            sender = subprocess.Popen([sys.executable, "-S", "-c", code, str(data_dir)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            outcome = killer.kill(sender) if killer.finishes else killer.calibrate(sender)
            landed += outcome.writing
            consistent(data_dir)
        assert landed >= 12 * SCALE, f"only {landed} of {trials} senders were killed while writing"
        last = subprocess.Popen([sys.executable, "-S", "-c", code, str(data_dir)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = last.communicate(timeout=120)
        assert last.returncode == 0, (out + err).decode()
        db = sqlite3.connect(data_dir / "ledger.db")
        states = dict(db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall())
        db.close()
        assert states == {"delivered": trials}, states
        received = "\n".join(slack.posts)
        assert [n for n in names if n not in received] == []  # every alert reached Slack at least once
    finally:
        slack.stop()
