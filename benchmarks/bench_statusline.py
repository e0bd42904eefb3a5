"""Status line cost against bare interpreter start-up: Claude Code runs it after every assistant message.

    python3 benchmarks/bench_statusline.py [--quick]

Target: at most 1.5x `python -c pass`. The installed command is `python -S …/run_statusline.py` (see
`tokens install --statusline`); the hook's compiled config cache is warm, as it is inside a session.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from common import PYTHON, ROOT, baseline, header, hook_env, row, time_process
from fixtures import fill_ledger

LAUNCHER = ROOT / "token_budget" / "claude" / "run_statusline.py"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller ledger and fewer runs")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work")
    args = parser.parse_args()
    runs = 10 if args.quick else 30
    requests = 20_000 if args.quick else 100_000
    args.work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=args.work))
    try:
        data = tmp / "data"
        fill_ledger(data, requests)
        env = hook_env(data)
        stdin = json.dumps(
            {
                "session_id": "bench",
                "cwd": "/tmp/bench",
                "model": {"id": "claude-sonnet-4-5-20250929", "display_name": "Sonnet 4.5"},
                "context_window": {"used_percentage": 42.0, "context_window_size": 200000},
            }
        ).encode()
        argv = [PYTHON, "-S", str(LAUNCHER)]
        time_process(argv, stdin=stdin, env=env, runs=1)  # builds the config cache, as the first hook does
        base = baseline(runs)
        fast = time_process(argv, stdin=stdin, env=env, runs=runs)
        via_entry = time_process(
            [PYTHON, "-m", "token_budget", "statusline"],
            stdin=stdin,
            env={**env, "PYTHONPATH": str(ROOT)},
            runs=runs,
        )
        print(
            header(
                f"Status line ({requests:,}-request ledger; baseline `python -c pass` = {base * 1000:.1f} ms)"
            )
        )
        print(row("python -S run_statusline.py (installed status line)", fast, base, "<= 1.5x"))
        print(row("tokens statusline (console script path, site-packages on)", via_entry, base))
        print(f"\nstatus line / bare start-up: {fast / base:.2f}x (target <= 1.5)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
