"""Real processes: parallel hooks over growing transcripts, and hooks killed mid-ingest, converge to exact totals."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from builders import hook_payload, response, transcript_path, write_lines

from token_budget.ledger import Ledger

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "token_budget" / "claude" / "run_hook.py"


def start_hook(event: str, path: Path, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-S", str(LAUNCHER), event], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(hook_payload(event, path, session_id=path.stem)).encode())
    proc.stdin.close()
    proc.stdin = None  # already sent and closed: communicate() must not touch it again
    return proc


def expected_totals(paths: list[Path]) -> dict[str, int]:
    """Ground truth from the files: the largest usage per message id, summed."""
    best: dict[str, tuple[int, int, int]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            usage = entry["message"]["usage"]
            key = entry["message"]["id"]
            value = (usage["input_tokens"] + usage["output_tokens"], usage["input_tokens"], usage["output_tokens"])
            best[key] = max(best.get(key, value), value)
    return {"requests": len(best), "input": sum(v[1] for v in best.values()),
            "output": sum(v[2] for v in best.values())}


def ledger_totals(data_dir: Path) -> dict[str, int]:
    with Ledger.open(data_dir) as ledger:
        t = ledger.totals()[None]
        return {"requests": t["requests"], "input": t["input"], "output": t["output"]}


def test_many_parallel_hooks_over_growing_transcripts_count_each_request_once(
        data_dir: Path, claude_dir: Path, subprocess_env: dict) -> None:
    subprocess_env.pop("PYTHONPATH")
    rng = random.Random(7)
    paths = [transcript_path(claude_dir, f"sess-{i}") for i in range(4)]
    running: list[subprocess.Popen] = []
    launched = 0
    for wave in range(8):
        for path in paths:  # each session's transcript grows, with partial lines first, while hooks read it
            for _ in range(rng.randint(1, 3)):
                write_lines(path, response(session_id=path.stem, blocks=rng.randint(1, 3), partial_output=1,
                                           input_tokens=rng.randint(1, 10_000), output_tokens=rng.randint(2, 5_000)))
        for _ in range(5):
            running.append(start_hook("PostToolUse", rng.choice(paths), subprocess_env))
            launched += 1
        time.sleep(0.01 * wave)
    assert launched >= 32
    for proc in running:
        out, err = proc.communicate(timeout=120)
        # Budget messages may appear once these tokens cross the packaged limits; a hook error may not.
        assert proc.returncode == 0 and b"enforcement skipped" not in out, (out + err).decode()
    for path in paths:  # the next hook of each session catches up with whatever was written last
        proc = start_hook("Stop", path, subprocess_env)
        proc.communicate(timeout=60)
    assert ledger_totals(data_dir) == expected_totals(paths)


def test_a_hook_killed_mid_ingest_leaves_a_consistent_ledger_that_converges(
        data_dir: Path, claude_dir: Path, subprocess_env: dict) -> None:
    subprocess_env.pop("PYTHONPATH")
    path = transcript_path(claude_dir, "big")
    for _ in range(40):  # ~8 MB of transcript: ingest takes long enough to be interrupted
        write_lines(path, [line for _ in range(100) for line in response(session_id="big", blocks=2,
                                                                            partial_output=1, output_tokens=9)])
    rng = random.Random(11)
    killed = 0
    for trial in range(12):
        proc = start_hook("Stop", path, subprocess_env)
        time.sleep(rng.uniform(0.02, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.communicate(timeout=60)
        if trial % 4 == 3:
            write_lines(path, response(session_id="big", output_tokens=9))
        with Ledger.open(data_dir) as ledger:
            assert ledger.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert killed > 0
    proc = start_hook("Stop", path, subprocess_env)
    assert proc.communicate(timeout=120)[0].strip() == b"{}"
    assert ledger_totals(data_dir) == expected_totals([path])
