"""Stress: 64 real hook processes over 8 sessions whose transcripts grow (torn last lines included) while other
processes run `tokens budget daily N`, `tokens budget <model> N` and `tokens status`. Totals are exact, no write is
lost, and "database is locked" never reaches a user: not on any stdout or stderr, not in hook.log."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

from builders import response, transcript_path
from test_concurrency import expected_totals, ledger_totals

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "token_budget" / "claude" / "run_hook.py"
EVENTS = ("PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop")
BIG = 10**12  # budgets no test total reaches: every hook allows, so any message would be an error


def hook(event: str, path: Path, env: dict) -> subprocess.Popen:
    payload = {"session_id": path.stem, "transcript_path": str(path), "cwd": "/tmp/proj", "hook_event_name": event,
               "tool_name": "Bash", "tool_input": {"command": "true"}, "tool_use_id": "toolu_x", "prompt": "go on"}
    proc = subprocess.Popen([sys.executable, "-S", str(LAUNCHER), event], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(payload).encode())
    proc.stdin.close()
    proc.stdin = None
    return proc


def tokens(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "token_budget", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)


class Growing:
    """A transcript written the way Claude Code writes it: whole responses, the last line sometimes torn."""

    def __init__(self, path: Path, rng: random.Random) -> None:
        self.path, self.rng, self.pending = path, rng, b""
        path.parent.mkdir(parents=True, exist_ok=True)

    def grow(self) -> None:
        data = self.pending
        for _ in range(self.rng.randint(1, 3)):
            lines = response(session_id=self.path.stem, blocks=self.rng.randint(1, 3), partial_output=1,
                             input_tokens=self.rng.randint(1, 9_000), output_tokens=self.rng.randint(2, 4_000))
            data += b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)
        cut = len(data) - self.rng.randint(1, 60) if self.rng.random() < 0.5 else len(data)
        with open(self.path, "ab") as handle:
            handle.write(data[:cut])
        self.pending = data[cut:]

    def finish(self) -> None:
        with open(self.path, "ab") as handle:
            handle.write(self.pending)
        self.pending = b""


def test_64_hooks_8_sessions_with_budget_and_status_processes_exact_and_never_locked(
        data_dir: Path, claude_dir: Path, subprocess_env: dict) -> None:
    cli_env = dict(subprocess_env)
    hook_env = {k: v for k, v in subprocess_env.items() if k != "PYTHONPATH"}
    config = data_dir.parent / "stress.yaml"
    config.write_text(f"budgets:\n  global:\n    daily_limit: {BIG}\n    monthly_limit: {BIG}\n  per_model:\n"
                      f"    claude-opus: {BIG}\n    claude-sonnet: {BIG}\n    claude-haiku: {BIG}\n")
    cli_env["TOKEN_BUDGET_CONFIG"] = hook_env["TOKEN_BUDGET_CONFIG"] = str(config)
    rng = random.Random(64)
    files = [Growing(transcript_path(claude_dir, f"stress-{i}"), rng) for i in range(8)]
    hooks: list[subprocess.Popen] = []
    others: list[tuple[list[str], subprocess.Popen]] = []
    for wave in range(8):
        for f in files:
            f.grow()
        for f in files:  # one hook per session per wave: 64 in all, overlapping the writers and each other
            hooks.append(hook(rng.choice(EVENTS), f.path, hook_env))
        for args in (["budget", "daily", str(BIG - wave)], ["budget", f"model:claude-stress-{wave}", "5000000"],
                     ["status", "--color", "never"]):
            others.append((args, tokens(args, cli_env)))
    assert len(hooks) == 64
    outputs: list[tuple[str, bytes, bytes, int]] = []
    for proc in hooks:
        out, err = proc.communicate(timeout=240)
        outputs.append(("hook", out, err, proc.returncode))
    for args, proc in others:
        out, err = proc.communicate(timeout=240)
        outputs.append((" ".join(args), out, err, proc.returncode))
    for f in files:  # the last torn lines complete; the next hook of each session catches up
        f.finish()
        out, err = hook("Stop", f.path, hook_env).communicate(timeout=120)
        outputs.append(("final hook", out, err, 0))

    shown: list[str] = []
    for who, out, err, code in outputs:
        text = (out + err).decode(errors="replace")
        assert "locked" not in text.lower() and "busy" not in text.lower(), f"{who}: {text}"
        assert code == 0, f"{who} exited {code}: {text}"
        if who in ("hook", "final hook"):
            answer = json.loads(out)
            # The only message: a budget change (made by the `tokens budget` processes) shown once.
            notices = answer.get("systemMessage", "").splitlines()
            assert all(n.startswith("token-budget: the ") and " budget changed from " in n for n in notices), text
            assert "enforcement skipped" not in text, f"{who}: {text}"
            shown += notices
    # Every recorded change was shown once, by exactly one of the concurrent hooks (or is still to be shown).
    with sqlite3.connect(data_dir / "ledger.db") as db:
        changes = db.execute("SELECT COUNT(*), COUNT(shown_at) FROM events WHERE kind = 'limit_change'").fetchone()
    assert len(shown) == len(set(shown)) == changes[1] and changes[0] >= 16, (changes, shown)
    log = data_dir / "hook.log"
    assert not log.exists() or "locked" not in log.read_text().lower(), log.read_text()
    assert ledger_totals(data_dir) == expected_totals([f.path for f in files])
    # No lost update among the concurrent `tokens budget` writers: every model key each one set is there.
    overrides = json.loads((data_dir / "overrides.json").read_text())
    assert set(overrides["budgets"]["per_model"]) == {f"claude-stress-{w}" for w in range(8)}
    assert overrides["budgets"]["global"]["daily_limit"] in {BIG - w for w in range(8)}


def test_concurrent_config_changes_lose_no_update(data_dir: Path, subprocess_env: dict) -> None:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    code = ("import sys, time; from pathlib import Path; from token_budget.config import save_override; "
            "t = float(sys.argv[2]); time.sleep(max(t - time.time(), 0)); "
            "[save_override(Path(sys.argv[3]), ['budgets', 'per_model', f'claude-k{sys.argv[1]}-{j}'], 1000 + j) "
            "for j in range(5)]")
    import time

    start = str(time.time() + 1.5)  # all start writing at the same moment, after their imports
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i), start, str(data_dir)], env=subprocess_env,
                              stderr=subprocess.PIPE) for i in range(10)]
    for proc in procs:
        err = proc.communicate(timeout=60)[1]
        assert proc.returncode == 0, err.decode()
    overrides = json.loads((data_dir / "overrides.json").read_text())
    assert len(overrides["budgets"]["per_model"]) == 50


def test_an_override_saved_from_a_hook_process_run_with_dash_s_takes_the_file_lock(data_dir: Path,
                                                                                    subprocess_env: dict) -> None:
    """Hooks run with -S (no site-packages): the slash command saves an override from inside one, so
    save_override must load site before it imports filelock; a lock left by a killed writer never blocks it."""
    import signal
    import time

    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from filelock import FileLock; "
         "lock = FileLock(sys.argv[1]); lock.acquire(); print('held', flush=True); time.sleep(600)",
         str(data_dir / ".overrides.lock")], env=subprocess_env, stdout=subprocess.PIPE)
    assert holder.stdout.readline() == b"held\n"
    code = ("import sys; from pathlib import Path; from token_budget.config import save_override; "
            "save_override(Path(sys.argv[1]), ['budgets', 'global', 'daily_limit'], 4242)")
    writer = subprocess.Popen([sys.executable, "-S", "-c", code, str(data_dir)], env=subprocess_env,
                              stderr=subprocess.PIPE)
    time.sleep(0.5)
    assert writer.poll() is None  # waits for the holder: one read-modify-write at a time
    holder.send_signal(signal.SIGKILL)  # the kernel drops a dead holder's lock
    holder.communicate()
    err = writer.communicate(timeout=60)[1]
    assert writer.returncode == 0, err.decode()
    assert json.loads((data_dir / "overrides.json").read_text())["budgets"]["global"]["daily_limit"] == 4242
